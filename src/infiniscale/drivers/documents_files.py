"""Documents as msgpack files under one folder (`<folder>/<name>.mpk`): atomic, durable rewrites
under a per-document lock, reads cached until the file changes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from infiniscale.drivers.decomposed.layout import check_id
from infiniscale.drivers.identity_files import CachedFiles


class FileDocumentStore:
    def __init__(self, folder: str) -> None:
        self.files = CachedFiles(folder, durable=True, empty=dict)

    @staticmethod
    def _key(name: str) -> str:
        parts = name.split("/")
        for part in parts:
            if len(part) > 1 and part.isalpha():
                continue  # a plain word: a kind of document
            check_id(part)  # anything else is an id: never a path that could traverse
        return "/".join(parts) + ".mpk"

    def read(self, name: str) -> dict:
        return self.files.read(self._key(name))

    @contextlib.contextmanager
    def updating(self, name: str) -> Iterator[dict]:
        with self.files.updating(self._key(name)) as doc:
            yield doc
