"""SearchIndex port: documents describing nodes, and queries over them (core.search builds both)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class IndexDoc:
    """What search knows of one node. `ancestors` holds the ids from the space root down to the
    node itself, so a subtree is one term (that is how shares scope a query and how a moved folder
    finds its descendants). Everything is stored, so a move or a restore rewrites documents
    without reading the content again."""

    space_id: str
    node_id: str
    parent_id: str
    ancestors: tuple[str, ...]
    name: str
    kind: str  # "file" | "folder"
    media_type: str
    media_groups: tuple[str, ...]
    mtime_ns: int
    size: int
    tags: tuple[str, ...] = ()
    content: str = ""
    content_key: str = ""  # which content `content` was read from (the blob id)
    live: bool = True  # False while in the trash bin


@dataclass(frozen=True, slots=True)
class Visibility:
    """What a caller may see: whole spaces, and subtrees (shares) given as (space id, node id)."""

    spaces: tuple[str, ...]
    subtrees: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    space_id: str
    node_id: str
    score: float
    highlights: str = ""


class SearchIndex(Protocol):
    def upsert(self, docs: list[IndexDoc]) -> None: ...

    def subtree(self, space_id: str, node_id: str) -> Iterator[IndexDoc]:
        """The stored documents of the node and everything below it, trashed ones included."""
        ...

    def get(self, space_id: str, node_id: str) -> IndexDoc | None: ...

    def remove_subtree(self, space_id: str, node_id: str) -> None: ...

    def remove_space(self, space_id: str) -> None: ...

    def commit(self) -> None: ...

    def search(self, query: object, visible: Visibility, limit: int, offset: int = 0) -> tuple[list[Hit], int]:
        """Hits (live documents only, best first) and how many there are in all. `query` is a tree
        from core.search (And / Or / Not over its leaves)."""
        ...

    def count(self) -> int: ...
