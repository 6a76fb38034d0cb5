"""Opaque resource ids as oCIS spells them: `<storageid>$<spaceid>!<nodeid>`."""

from __future__ import annotations

import os
import random
import threading
import uuid
from dataclasses import dataclass

from infiniscale.core.model.errors import InvalidArgument

_rng = random.Random()
_rng_pid = -1
_rng_lock = threading.Lock()


def new_id() -> str:
    """A random UUIDv4. Ids are identifiers, not secrets: a generator seeded once per process from
    os.urandom is enough, and much cheaper than a urandom call per id on a hot path."""
    global _rng_pid
    with _rng_lock:
        if _rng_pid != os.getpid():  # reseed after a fork, so processes never share a sequence
            _rng.seed(os.urandom(32))
            _rng_pid = os.getpid()
        bits = _rng.getrandbits(128)
    return str(uuid.UUID(int=bits, version=4))


def unique_suffix() -> str:
    """A name part unique on this machine for temp files."""
    return new_id().replace("-", "")


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
