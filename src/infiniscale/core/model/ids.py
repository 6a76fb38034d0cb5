"""Opaque resource ids as oCIS spells them: `<storageid>$<spaceid>!<nodeid>`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from infiniscale.core.model.errors import InvalidArgument


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class ResourceId:
    storage_id: str
    space_id: str
    node_id: str

    def __str__(self) -> str:
        return f"{self.storage_id}${self.space_id}!{self.node_id}"

    @property
    def space_ref(self) -> str:
        return f"{self.storage_id}${self.space_id}"

    @classmethod
    def parse(cls, text: str) -> ResourceId:
        """Parses `storage$space!node`; `storage$space` alone addresses the space root."""
        storage, sep, rest = text.partition("$")
        if not sep or not storage or not rest:
            raise InvalidArgument(f"invalid resource id {text!r}")
        space, sep, node = rest.partition("!")
        if not space or (sep and not node):
            raise InvalidArgument(f"invalid resource id {text!r}")
        return cls(storage, space, node or space)
