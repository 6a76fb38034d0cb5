"""Upload sessions on disk, beside the spaces: resumable (TUS) and chunked uploads survive a
restart of the server, and any worker process can continue what another one started.

Layout under `<storage root>/uploads/`:
- `<id>.mpk`         the session record (who, where to, how long, when it expires);
- `data/<blob id>`   the bytes of a TUS upload so far; its size is the upload offset. It is named
                     like a blob so that finishing the upload is a rename into the space;
- `chunks/<id>/`     the chunks of a chunked upload, one file each, written atomically;
- `locks/<id>`       one writer per session at a time, across processes.

The store keeps records and bytes only; what a session means is the core's business.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import msgpack

from infiniscale.core.model.errors import Locked
from infiniscale.drivers.decomposed.fsutil import lock_fd, makedirs, write_atomic
from infiniscale.drivers.decomposed.layout import check_id


class SessionStore:
    def __init__(self, storage_root: str) -> None:
        self.dir = os.path.join(storage_root, "uploads")
        self.data_dir = os.path.join(self.dir, "data")
        self.chunks_dir = os.path.join(self.dir, "chunks")
        self.locks_dir = os.path.join(self.dir, "locks")
        for path in (self.data_dir, self.chunks_dir, self.locks_dir):
            makedirs(path)

    def _record_path(self, session_id: str) -> str:
        return os.path.join(self.dir, check_id(session_id) + ".mpk")

    def save(self, record: dict) -> None:
        write_atomic(self._record_path(record["id"]), msgpack.packb(record))

    def touch(self, record: dict) -> None:
        """Saves a record whose change is not worth a disk flush (a later expiry time)."""
        write_atomic(self._record_path(record["id"]), msgpack.packb(record), durable=False)

    def load(self, session_id: str) -> dict | None:
        try:
            with open(self._record_path(session_id), "rb") as fh:
                return msgpack.unpackb(fh.read())
        except FileNotFoundError:
            return None

    def records(self) -> Iterator[dict]:
        for entry in os.scandir(self.dir):
            if not (entry.name.endswith(".mpk") and entry.is_file()):
                continue
            try:
                with open(entry.path, "rb") as fh:
                    record = msgpack.unpackb(fh.read())
            except (FileNotFoundError, ValueError, msgpack.UnpackException):
                continue  # removed meanwhile, or a record a crash cut short
            yield record

    def data_path(self, record: dict) -> str:
        return os.path.join(self.data_dir, check_id(record["blob_id"]))

    def create_data(self, record: dict) -> None:
        fd = os.open(self.data_path(record), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)

    def offset(self, record: dict) -> int:
        """Bytes received so far: the size of the data file (bytes a killed process wrote are in
        the page cache and count; a client re-sends from here)."""
        if not record.get("blob_id"):
            return 0  # a chunked upload: its bytes are in chunk files
        try:
            return os.stat(self.data_path(record)).st_size
        except FileNotFoundError:
            return 0

    def chunk_dir(self, session_id: str) -> str:
        return os.path.join(self.chunks_dir, check_id(session_id))

    def remove(self, record: dict, keep_data: bool = False) -> None:
        """Forgets a session: the record first (so nobody resumes it), then its bytes."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._record_path(record["id"]))
        if not keep_data and record.get("blob_id"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.data_path(record))
        shutil.rmtree(self.chunk_dir(record["id"]), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._lock_path(record["id"]))

    def garbage(self) -> Iterator[str]:
        """Bytes no session refers to any more (left by a crash between the steps of `remove`)."""
        known_blobs, known_chunks = set(), set()
        for record in self.records():
            if record.get("blob_id"):
                known_blobs.add(record["blob_id"])
            known_chunks.add(record["id"])
        for name in os.listdir(self.data_dir):
            if name not in known_blobs:
                yield os.path.join(self.data_dir, name)
        for name in os.listdir(self.chunks_dir):
            if name not in known_chunks:
                yield os.path.join(self.chunks_dir, name)
        for name in os.listdir(self.locks_dir):
            if name not in known_chunks:
                yield os.path.join(self.locks_dir, name)

    def _lock_path(self, session_id: str) -> str:
        return os.path.join(self.locks_dir, check_id(session_id))

    @contextlib.contextmanager
    def locked(self, session_id: str, wait: bool = False) -> Iterator[None]:
        """One writer per session. Without `wait` a second one gets Locked at once instead of
        waiting (TUS clients must not write the same upload twice at the same time). The lock
        file lives as long as the session: callers re-read the record once they hold it."""
        fd = os.open(self._lock_path(session_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if not lock_fd(fd, wait=wait):
                raise Locked("the upload is being written by another request")
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def reaper_turn(self) -> Iterator[bool]:
        """True for the one process that may clean up now; every other one gets False at once."""
        fd = os.open(os.path.join(self.dir, "reaper.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            yield lock_fd(fd, wait=False)
        finally:
            os.close(fd)
