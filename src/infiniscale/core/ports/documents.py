"""DocumentStore port: small named documents (dicts), each read-modify-written atomically under
its own lock, readable by every process at the cost of a stat (what shares are kept in). Names
are paths of ids (`spaces/<id>`); methods block, callers run them in worker threads."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class DocumentStore(Protocol):
    def read(self, name: str) -> dict: ...
    def names(self, folder: str) -> list[str]:
        """The documents directly in a folder of names (`spaces` -> the space ids)."""
    def updating(self, name: str) -> AbstractContextManager[dict]:
        """The block gets a copy of the document and changes it in place; it is written on exit."""
