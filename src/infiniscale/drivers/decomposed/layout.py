"""Where things live on disk, and how node metadata is encoded.

    <root>/spaces/<sp[0:2]>/<sp[2:]>/
        nodes/<id[0:2]>/<id>        folders only: a directory of links, one per child, named by the
                                    child's name, whose target is the child's id
        nodes/<id[0:2]>/<id>.mpk    the node's metadata (msgpack), the truth about it
        blobs/<b[0:2]>/<b>          file content; never changed once written

One level of 256 shard folders: enough to keep folders small (a million nodes make 4 000 entries
each, which ext4's and XFS's hashed directories handle in a lookup or two), and few enough that a
new space stops making shard folders after its first thousand or so files.
        trash/<id>                             links to trashed nodes
        revisions/<id[0:2]>/<id>/<key>.mpk     earlier contents of a file (its blob, size, checksums)
        journal/<op>.mpk                       intents of multi-step operations, replayed after a crash
        tmp/                                   uploads in progress
    <root>/locks/<sp[0:2]>/<sp[2:]>/ns.lock, <n>   cross-process locks (namespace, node stripes)
"""

from __future__ import annotations

import os
import re
import zlib

import msgpack

from infiniscale.core.model.errors import InvalidArgument
from infiniscale.core.model.nodes import LockInfo, NodeInfo

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{3,127}$")
LOCK_STRIPES = 64


def check_id(value: str) -> str:
    """Ids reach paths on disk: only plain ids pass, never anything that could traverse."""
    if not SAFE_ID.match(value) or ".." in value:
        raise InvalidArgument(f"invalid id {value!r}")
    return value


class SpaceLayout:
    def __init__(self, root: str, space_id: str) -> None:
        check_id(space_id)
        self.space_id = space_id
        self.dir = os.path.join(root, "spaces", space_id[:2], space_id[2:])
        self.nodes = os.path.join(self.dir, "nodes")
        self.blobs = os.path.join(self.dir, "blobs")
        self.trash = os.path.join(self.dir, "trash")
        self.revisions = os.path.join(self.dir, "revisions")
        self.journal = os.path.join(self.dir, "journal")
        self.tmp = os.path.join(self.dir, "tmp")
        # lock files live outside the space folder: they must stay the same files for as long as
        # any process may hold them open, even across a purge and re-creation of the space
        self.locks = os.path.join(root, "locks", space_id[:2], space_id[2:])
        self.ns_lock = os.path.join(self.locks, "ns.lock")
        self.marker = os.path.join(self.dir, "space.mpk")

    def all_dirs(self) -> tuple[str, ...]:
        return (self.nodes, self.blobs, self.trash, self.revisions, self.journal, self.tmp, self.locks)

    def node_base(self, node_id: str) -> str:
        return os.path.join(self.nodes, node_id[:2], node_id)

    def node_dir(self, node_id: str) -> str:
        return self.node_base(node_id)

    def meta_path(self, node_id: str) -> str:
        return self.node_base(node_id) + ".mpk"

    def blob_path(self, blob_id: str) -> str:
        return os.path.join(self.blobs, blob_id[:2], blob_id)

    def revision_dir(self, node_id: str) -> str:
        return os.path.join(self.revisions, node_id[:2], node_id)

    def stripe(self, node_id: str) -> str:
        return os.path.join(self.locks, str(zlib.crc32(node_id.encode()) % LOCK_STRIPES))


# Metadata keys are short: a sidecar is read for every entry of every listing.
def encode_node(node: NodeInfo, trashed: dict | None = None) -> bytes:
    data: dict = {
        "i": node.id,
        "p": node.parent_id,
        "n": node.name,
        "t": node.type,
        "m": node.mtime_ns,
        "tm": node.tmtime_ns,
        "s": node.size,
    }
    if node.blob_id:
        data["b"] = node.blob_id
    if node.checksums:
        data["cs"] = node.checksums
    if node.props:
        data["pr"] = node.props
    if node.locks:
        data["lk"] = [
            [lk.token, lk.scope, lk.depth, lk.owner_xml, lk.timeout_s, lk.expires_ns, lk.user_id,
             lk.root_node_id]
            for lk in node.locks
        ]
    if node.owner_id:
        data["o"] = node.owner_id
    if trashed:
        data["tr"] = trashed
    return msgpack.packb(data, use_bin_type=True)


def decode_node(space_id: str, raw: bytes) -> tuple[NodeInfo, dict | None]:
    return decode_fields(space_id, msgpack.unpackb(raw, raw=False))


def decode_fields(space_id: str, data: dict) -> tuple[NodeInfo, dict | None]:
    locks = tuple(LockInfo(*entry) for entry in data.get("lk", ()))
    node = NodeInfo(
        space_id=space_id,
        id=data["i"],
        parent_id=data["p"],
        name=data["n"],
        type=data["t"],
        mtime_ns=data["m"],
        tmtime_ns=data["tm"],
        size=data["s"],
        blob_id=data.get("b", ""),
        checksums=data.get("cs") or {},
        props=data.get("pr") or {},
        locks=locks,
        owner_id=data.get("o", ""),
    )
    return node, data.get("tr")
