"""A per-folder listing cache: the metadata of all children in one file, read in one go.

It is derived data and never the truth. It is valid only while the folder's tree mtime equals the one
recorded when it was built: every change to a child moves that mtime forward (propagation), so a stale
cache is never served. The one change that does not propagate (a user's favorite flag) drops the cache
instead and leaves a mark (`.idx-dropped`), so that a cache being built meanwhile from the old flag is
not published. A crash cannot leave a stale cache that looks valid either, because unclean start-up
deletes every cache. Locks are not propagated, so listings that must show locks bypass it.

Format: msgpack stream of [format, tmtime] followed by one positional entry per child; read with a streaming
unpacker so memory stays flat for huge folders.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import msgpack

from infiniscale.core.model.ids import unique_suffix
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.drivers.decomposed.layout import SpaceLayout

FORMAT = 2
DROPPED = "-dropped"  # suffix of the mark drop() leaves beside the cache
MIN_ENTRIES = 64  # small folders list fast without a cache
READ_SIZE = 256 * 1024


def cache_path(layout: SpaceLayout, folder_id: str) -> str:
    return layout.node_base(folder_id) + ".idx"


def read(layout: SpaceLayout, folder: NodeInfo) -> Iterator[NodeInfo] | None:
    """The cached children, or None when there is no valid cache."""
    try:
        fh = open(cache_path(layout, folder.id), "rb")  # noqa: SIM115 - closed by the generator
    except FileNotFoundError:
        return None
    unpacker = msgpack.Unpacker(fh, raw=False, read_size=READ_SIZE, max_buffer_size=64 << 20)
    try:
        header = next(unpacker)
    except (StopIteration, ValueError, msgpack.UnpackException):
        fh.close()
        return None
    if header != [FORMAT, folder.tmtime_ns]:
        fh.close()
        return None

    space_id, parent_id = layout.space_id, folder.id

    def entries() -> Iterator[NodeInfo]:
        with fh:
            for e in unpacker:
                yield NodeInfo(space_id, e[0], parent_id, e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], (), e[9])

    return entries()


class Writer:
    """Streams a fresh cache to a temp file while the folder is scanned; publishes it on `commit`."""

    def __init__(self, layout: SpaceLayout, folder: NodeInfo) -> None:
        self.path = cache_path(layout, folder.id)
        self.dropped = _dropped_at(self.path)
        self.tmp = f"{self.path}.{unique_suffix()}.tmp"
        self.fh = open(self.tmp, "wb")  # noqa: SIM115
        self.fh.write(msgpack.packb([FORMAT, folder.tmtime_ns]))
        self.count = 0

    def add(self, node: NodeInfo) -> None:
        # positional, without what every entry shares (space, parent) and without locks (not cached)
        self.fh.write(msgpack.packb([node.id, node.name, node.type, node.mtime_ns, node.tmtime_ns, node.size,
                                     node.blob_id, node.checksums, node.props, node.owner_id]))
        self.count += 1

    def commit(self) -> None:
        self.fh.close()
        if self.count < MIN_ENTRIES or _dropped_at(self.path) != self.dropped:  # small, or dropped while built
            self.discard()
            return
        os.rename(self.tmp, self.path)

    def discard(self) -> None:
        self.fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def drop(layout: SpaceLayout, folder_id: str) -> None:
    """Removes the folder's cache, and marks when: a cache whose building began before is not published."""
    path = cache_path(layout, folder_id)
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError):
        os.close(os.open(path + DROPPED, os.O_WRONLY | os.O_CREAT, 0o600))
        now = time.time_ns()
        os.utime(path + DROPPED, ns=(now, now))


def _dropped_at(path: str) -> int:
    try:
        return os.stat(path + DROPPED).st_mtime_ns
    except OSError:
        return 0
