"""The identity provider's grants as small files, one per record, so that every worker process
sees the same codes, refresh tokens and sessions: `<idp dir>/<kind>/<key>` (msgpack). Keys are
hashes or random ids, never user input. Taking a record renames it first, so only one process
can ever use a code or a refresh token."""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid

import msgpack

from infiniscale.drivers.decomposed.fsutil import makedirs, write_atomic

_KEY = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
KINDS = ("codes", "refresh", "sessions", "sids")


class FileIdpStore:
    def __init__(self, root: str) -> None:
        self.root = root
        for kind in KINDS:
            makedirs(os.path.join(root, kind))

    def _path(self, kind: str, key: str) -> str:
        if kind not in KINDS or not _KEY.match(key):
            raise ValueError(f"invalid {kind} key")
        return os.path.join(self.root, kind, key)

    def put(self, kind: str, key: str, record: dict) -> None:
        write_atomic(self._path(kind, key), msgpack.packb(record), durable=False)

    def get(self, kind: str, key: str) -> dict | None:
        try:
            with open(self._path(kind, key), "rb") as fh:
                return msgpack.unpackb(fh.read())
        except (FileNotFoundError, ValueError, msgpack.UnpackException):
            return None

    def take(self, kind: str, key: str) -> dict | None:
        path = self._path(kind, key)
        claimed = f"{path}.{uuid.uuid4().hex}.taken"
        try:
            os.rename(path, claimed)  # atomic: of two processes, one wins
        except FileNotFoundError:
            return None
        try:
            with open(claimed, "rb") as fh:
                return msgpack.unpackb(fh.read())
        except (ValueError, msgpack.UnpackException):
            return None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(claimed)

    def delete(self, kind: str, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(kind, key))

    def delete_where(self, kind: str, field_name: str, value: str) -> int:
        removed = 0
        folder = os.path.join(self.root, kind)
        for entry in os.scandir(folder):
            if not _KEY.match(entry.name):
                continue
            record = self.get(kind, entry.name)
            if record is not None and record.get(field_name) == value:
                self.delete(kind, entry.name)
                removed += 1
        return removed

    def purge_expired(self) -> int:
        """Removes records whose time is up (and leftovers of interrupted takes)."""
        now, removed = time.time(), 0
        for kind in KINDS:
            for entry in os.scandir(os.path.join(self.root, kind)):
                stale = not _KEY.match(entry.name) and entry.name.endswith((".taken", ".tmp"))
                if not stale:
                    record = self.get(kind, entry.name) if _KEY.match(entry.name) else None
                    stale = record is not None and record.get("expires", now + 1) < now
                if stale:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
        return removed
