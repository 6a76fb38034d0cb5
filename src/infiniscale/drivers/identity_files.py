"""App tokens and failed-login records as small files beside the user directory:
`app-tokens/<user id>.mpk` (a list of hashed tokens) and `login-failures/<account key>` (times of
recent failures). Each file is rewritten atomically under a lock; readers keep a copy per file that
is refreshed when the file changes, so checking a token costs a stat, not a read."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

import msgpack

from infiniscale.drivers.decomposed.fsutil import flocked, makedirs, write_atomic
from infiniscale.drivers.decomposed.layout import check_id


class CachedFiles:
    """msgpack files read through a cache validated by (mtime, inode, size), so every process sees
    the others' changes at the cost of a stat. `durable` fsyncs each rewrite."""

    def __init__(self, folder: str, durable: bool = False, empty: Callable[[], Any] = list) -> None:
        self.folder = folder
        self.durable = durable
        self.empty = empty
        makedirs(folder)
        self._cache: dict[str, tuple[tuple[int, int, int], list]] = {}
        self._lock = threading.Lock()

    def path(self, key: str) -> str:
        return os.path.join(self.folder, key)

    def read(self, key: str) -> Any:
        path = self.path(key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return self.empty()
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        try:
            with open(path, "rb") as fh:
                value = msgpack.unpackb(fh.read())
        except (FileNotFoundError, ValueError, msgpack.UnpackException):
            return self.empty()
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (stamp, value)
        return value

    @contextlib.contextmanager
    def updating(self, key: str):
        """Read-modify-write of one file under its lock; the block gets a copy of the content (a list
        or a dict) and may change it in place."""
        path = self.path(key)
        makedirs(os.path.dirname(path))
        with flocked(path + ".lock"):
            with self._lock:
                self._cache.pop(key, None)
            current = self.read(key)
            items = dict(current) if isinstance(current, dict) else list(current)
            yield items
            write_atomic(path, msgpack.packb(items), durable=self.durable, newer_mtime=True)
            with self._lock:
                self._cache.pop(key, None)


class FileAppTokenStore:
    def __init__(self, idm_dir: str) -> None:
        self.files = CachedFiles(os.path.join(idm_dir, "app-tokens"))

    def tokens(self, user_id: str) -> list[dict]:
        return self.files.read(check_id(user_id) + ".mpk")

    def add(self, user_id: str, record: dict) -> None:
        with self.files.updating(check_id(user_id) + ".mpk") as items:
            items.append(record)

    def remove(self, user_id: str, token_id: str) -> bool:
        with self.files.updating(check_id(user_id) + ".mpk") as items:
            before = len(items)
            items[:] = [r for r in items if r["id"] != token_id]
            return len(items) != before


class FileFailureLog:
    def __init__(self, idm_dir: str) -> None:
        self.files = CachedFiles(os.path.join(idm_dir, "login-failures"))

    def recent(self, account: str, since: float) -> int:
        return sum(1 for when in self.files.read(check_id(account)) if when >= since)

    def record(self, account: str, when: float, keep_since: float) -> None:
        with self.files.updating(check_id(account)) as items:
            items[:] = [*[t for t in items if t >= keep_since][-100:], when]

    def clear(self, account: str) -> None:
        path = self.files.path(check_id(account))
        if os.path.exists(path):
            with self.files.updating(check_id(account)) as items:
                items.clear()
