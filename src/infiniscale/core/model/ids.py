"""Opaque resource ids as oCIS spells them: `<storageid>$<spaceid>!<nodeid>`."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from infiniscale.core.model.errors import InvalidArgument

_rng = random.Random(os.urandom(32))
# a forked process draws a sequence of its own (a pid check per id cost a system call each time)
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))
_KEEP = ~((0xF000 << 64) | (0xC000 << 48))  # all but the version nibble and the two variant bits
_V4 = (4 << 76) | (0x8000 << 48)  # version 4, RFC 4122 variant


def new_id() -> str:
    """A random UUIDv4. Ids are identifiers, not secrets: a generator seeded once per process from
    os.urandom is enough, and much cheaper than a urandom call per id on a hot path. Formatted
    here rather than through uuid.UUID, whose checks cost more than the drawing (getrandbits
    holds the GIL throughout: no lock needed)."""
    digits = f"{(_rng.getrandbits(128) & _KEEP) | _V4:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def unique_suffix() -> str:
    """A name part unique on this machine for temp files, request ids and the like: 32 hex digits."""
    return f"{_rng.getrandbits(128):032x}"


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
