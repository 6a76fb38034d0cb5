"""ActivityStore port: the activity log of every resource. One event is stored once and linked to
each resource it concerns, at a depth (0: the resource itself, 1: its parent, ...). Methods block;
callers run them in worker threads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MAX_PER_RESOURCE = 6000  # as in oCIS: older activities of a resource are dropped


@dataclass(frozen=True)
class ActivityQuery:
    node_id: str
    max_depth: int = -1  # -1: every depth
    limit: int = 0  # 0: no limit
    descending: bool = False
    after_ns: int | None = None  # exclusive bounds on the time the activity was recorded
    before_ns: int | None = None


# (event id, recorded at, record, links: (node id, depth) of each resource it concerns)
Entry = tuple[str, int, dict, list[tuple[str, int]]]


class ActivityStore(Protocol):
    def add_many(self, entries: list[Entry]) -> None:
        """Stores each record under its event id and links it to each (node id, depth), all in one
        transaction; storing the same event again changes nothing."""
    def forget_space(self, space_id: str) -> None:
        """Drops every activity recorded in a space (which is gone for good)."""
    def query(self, query: ActivityQuery) -> list[tuple[str, int, dict]]:
        """(event id, recorded at, record) of the activities linked to the node, oldest first
        unless descending; at most the MAX_PER_RESOURCE newest."""
