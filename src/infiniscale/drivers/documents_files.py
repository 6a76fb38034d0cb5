"""Documents as msgpack files under one folder (`<folder>/<name>.mpk`): atomic, durable rewrites
under a per-document lock, reads cached until the file changes."""

from __future__ import annotations

import contextlib
import os
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

    def names(self, folder: str) -> list[str]:
        path = self.files.path(self._key(folder)[:-len(".mpk")])
        try:
            entries = os.listdir(path)
        except FileNotFoundError:
            return []
        return sorted(e[:-4] for e in entries if e.endswith(".mpk"))

    def read(self, name: str) -> dict:
        return self.files.read(self._key(name))

    @contextlib.contextmanager
    def updating(self, name: str) -> Iterator[dict]:
        with self.files.updating(self._key(name)) as doc:
            yield doc
