"""Revisions (file versions) of the decomposed driver.

When a file's content is replaced, a record of the old content is written to
`revisions/<id[0:2]>/<id>/<key>.mpk` before the node is updated, and the old blob stays. The record
comes first: a crash in between leaves a revision equal to the current content (which `storage
check` reclaims), never a lost one. Keys start from the replaced content's mtime in nanoseconds and
are bumped when taken, so they are unique per file and sort by age.

Callers hold the file's lock stripe while they write or remove records of that file.
"""

from __future__ import annotations

import contextlib
import os
import time

import msgpack

from infiniscale.core.model.errors import NotFound
from infiniscale.core.model.nodes import NodeInfo, Revision
from infiniscale.drivers.decomposed.blobs import BlobStore
from infiniscale.drivers.decomposed.fsutil import fsync_dir, makedirs, write_atomic
from infiniscale.drivers.decomposed.layout import SpaceLayout

SUFFIX = ".mpk"


def _encode(rev: Revision) -> bytes:
    return msgpack.packb({"b": rev.blob_id, "s": rev.size, "m": rev.mtime_ns, "cs": rev.checksums,
                          "c": rev.created_ns}, use_bin_type=True)


def _decode(node_id: str, key: str, raw: bytes) -> Revision:
    data = msgpack.unpackb(raw, raw=False)
    return Revision(node_id=node_id, key=key, size=data["s"], mtime_ns=data["m"], blob_id=data["b"],
                    checksums=data.get("cs") or {}, created_ns=data.get("c", 0))


def valid_key(key: str) -> bool:
    return key.isdigit() and len(key) < 24


def keep(layout: SpaceLayout, node: NodeInfo, durable: bool = True) -> Revision:
    """Records the node's current content as a revision (durably, or for the caller to sync)."""
    folder = layout.revision_dir(node.id)
    makedirs(folder)
    key_ns = node.mtime_ns
    while os.path.exists(os.path.join(folder, f"{key_ns}{SUFFIX}")):
        key_ns += 1  # the same mtime twice (clients may set it): the next free key
    rev = Revision(node_id=node.id, key=str(key_ns), size=node.size, mtime_ns=node.mtime_ns,
                   blob_id=node.blob_id, checksums=dict(node.checksums), created_ns=time.time_ns())
    write_atomic(os.path.join(folder, rev.key + SUFFIX), _encode(rev), durable=durable)
    return rev


def listing(layout: SpaceLayout, node_id: str) -> list[Revision]:
    """The file's revisions, oldest first."""
    folder = layout.revision_dir(node_id)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        key = name.removesuffix(SUFFIX)
        if name.endswith(SUFFIX) and valid_key(key):
            with contextlib.suppress(NotFound):
                found.append(read(layout, node_id, key))
    found.sort(key=lambda rev: int(rev.key))
    return found


def read(layout: SpaceLayout, node_id: str, key: str) -> Revision:
    if not valid_key(key):
        raise NotFound("version not found")
    try:
        with open(os.path.join(layout.revision_dir(node_id), key + SUFFIX), "rb") as fh:
            return _decode(node_id, key, fh.read())
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound("version not found") from None


def remove(layout: SpaceLayout, blobs: BlobStore, rev: Revision, keep_blob: bool = False) -> None:
    """Drops the record, then its blob (unless the caller took the blob over)."""
    folder = layout.revision_dir(rev.node_id)
    try:
        os.unlink(os.path.join(folder, rev.key + SUFFIX))
    except FileNotFoundError:
        return
    fsync_dir(folder)
    if not keep_blob:
        blobs.delete(layout.space_id, rev.blob_id)


def remove_all(layout: SpaceLayout, blobs: BlobStore, node_id: str) -> int:
    """Drops every revision of a file (when the file itself is purged). Returns the bytes freed."""
    freed = 0
    for rev in listing(layout, node_id):
        remove(layout, blobs, rev)
        freed += rev.size
    with contextlib.suppress(OSError):
        os.rmdir(layout.revision_dir(node_id))
    return freed


def node_ids(layout: SpaceLayout) -> list[str]:
    """Every file of the space that has revisions."""
    found = []
    try:
        shards = os.listdir(layout.revisions)
    except FileNotFoundError:
        return found
    for shard in shards:
        with contextlib.suppress(NotADirectoryError, FileNotFoundError):
            found += os.listdir(os.path.join(layout.revisions, shard))
    return found
