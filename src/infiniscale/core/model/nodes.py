"""Value types for nodes and spaces, and the rules for names and etags."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from infiniscale.core.model.errors import InvalidName

FILE = "file"
FOLDER = "folder"
# Keys of NodeInfo.props: WebDAV dead properties use Clark notation (`{namespace}name`); other keys
# are the server's own per-user flags, never shown as properties.
FAVORITE_PREFIX = "fav:"
TAGS_KEY = "tags"  # comma-separated, as oCIS keeps them


def is_dead_property(key: str) -> bool:
    return key.startswith("{")


@dataclass(frozen=True, slots=True)
class LockInfo:
    """A WebDAV write lock held on a node."""

    token: str
    scope: str  # "exclusive" | "shared"
    depth: str  # "0" | "infinity"
    owner_xml: str
    timeout_s: int  # 0 = infinite
    expires_ns: int  # 0 = never
    user_id: str
    root_node_id: str


@dataclass(slots=True, eq=False)
class NodeInfo:
    """Everything known about one node, as stored in its metadata sidecar. Treat as immutable
    (change with dataclasses.replace); not frozen only because frozen construction costs 3x, and
    listings build one per entry."""

    space_id: str
    id: str
    parent_id: str
    name: str
    type: str
    mtime_ns: int
    tmtime_ns: int
    size: int = 0  # file: content length; folder: tree size
    blob_id: str = ""
    checksums: dict[str, str] = field(default_factory=dict)
    props: dict[str, str] = field(default_factory=dict)
    locks: tuple[LockInfo, ...] = ()
    owner_id: str = ""

    @property
    def is_folder(self) -> bool:
        return self.type == FOLDER

    @property
    def is_root(self) -> bool:
        return self.id == self.space_id

    @property
    def etag(self) -> str:
        """Quoted etag; changes whenever the node or anything below it changes."""
        return '"' + etag_hash(self.id, self.tmtime_ns) + '"'


def etag_hash(node_id: str, tmtime_ns: int) -> str:
    return hashlib.md5(f"{node_id}:{tmtime_ns}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Revision:
    """An earlier content of a file, kept when it was replaced. `key` is unique per file and
    orders the revisions (it starts from the content's mtime in nanoseconds)."""

    node_id: str
    key: str
    size: int
    mtime_ns: int
    blob_id: str
    checksums: dict[str, str] = field(default_factory=dict)
    created_ns: int = 0  # when it was replaced, which starts its retention


@dataclass(frozen=True, slots=True)
class TrashItem:
    """A deleted file or folder (with everything below it), restorable until purged."""

    node: NodeInfo
    origin_parent_id: str
    origin_name: str
    origin_path: str  # below the space root, without a leading slash, as it was when deleted
    deleted_ns: int


@dataclass(frozen=True, slots=True)
class SpaceInfo:
    id: str
    type: str  # "personal" | "project"
    name: str
    owner_id: str
    root: NodeInfo
    quota: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


RESERVED_NAMES = frozenset({"", ".", ".."})


def validate_name(name: str, max_length: int = 255) -> str:
    """Returns the name if it may name a file or folder, else raises InvalidName."""
    if name in RESERVED_NAMES:
        raise InvalidName(f"name {name!r} is reserved")
    if "/" in name or "\\" in name:
        raise InvalidName("name must not contain / or \\")
    if "\x00" in name:
        raise InvalidName("name must not contain NUL")
    if name != name.strip() and name.strip() == "":
        raise InvalidName("name must not be blank")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName("name is not valid UTF-8") from None
    if len(encoded) > max_length:
        raise InvalidName(f"name is longer than {max_length} bytes")
    return name


def etag_matches(header_value: str, node: NodeInfo | None) -> bool:
    """If-Match / If-None-Match semantics: `*` matches any existing resource; weak and quoted forms
    compare by their value."""
    if node is None:
        return False
    for candidate in header_value.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/").strip('"') == node.etag.strip('"'):
            return True
    return False
