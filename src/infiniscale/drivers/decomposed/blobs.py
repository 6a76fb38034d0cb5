"""Blob stores of the decomposed driver: where file content lives, apart from the tree.

`LocalBlobs` keeps blobs as files under each space (`blobs/<b[:2]>/<b>`); `S3Blobs` (in s3blobs.py)
keeps them as objects in a bucket. Both have the same interface, so the tree code never asks where
content is. Blobs are immutable: new content is always a new blob, and a blob is deleted only when
no node refers to it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from infiniscale.core.files import write_parts
from infiniscale.core.model.ids import new_id
from infiniscale.core.writeback import WritebackPacer
from infiniscale.drivers.decomposed.fsutil import fsync_dir, makedirs, write_all
from infiniscale.drivers.decomposed.layout import SpaceLayout

# just under memory.LARGE_BLOCK: the buffers of a long read reuse heap memory, not a new mapping each
READ_CHUNK = (1 << 20) - (4 << 10)
INLINE_READ = 64 * 1024
# content this large is flushed on its own when finished: left to the commit's group flush, its
# writeback would hold up every small upload that shares that flush
FLUSH_ALONE = 8 << 20


class BlobStore(Protocol):
    def sink(self, space_id: str) -> BlobSinkBase: ...
    def store_file(self, space_id: str, path: str) -> str:
        """Makes the complete local file `path` a blob (the file is consumed); returns its id."""
    def local_path(self, space_id: str, blob_id: str) -> str | None:
        """The blob's file when it is one on this machine (lets COPY hard-link it)."""
    def open(self, space_id: str, blob_id: str, size: int) -> LocalSource | AsyncSource: ...
    def copy(self, space_id: str, blob_id: str, size: int) -> str: ...
    def delete(self, space_id: str, blob_id: str) -> None: ...
    def sizes(self, space_id: str) -> dict[str, int]:
        """Every blob the store holds for the space, with its size (for `storage check`)."""
    def purge_space(self, space_id: str) -> None: ...


class BlobSinkBase:
    """What every sink shares: the id, and whether a commit made it a node's content."""

    def __init__(self, blob_id: str) -> None:
        self.blob_id = blob_id
        self.committed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError

    def write_parts(self, parts: list[bytes]) -> None:
        for part in parts:
            self.write(part)


class LocalSink(BlobSinkBase):
    """Writes new content straight to its final blob path: until a commit refers to it, the file is
    unreferenced garbage, so no rename is needed to make it safe."""

    def __init__(self, path: str) -> None:
        super().__init__(os.path.basename(path))
        self.path = path
        self.fd: int | None = None
        self.size = 0
        self._writeback: WritebackPacer | None = None

    def _open(self) -> int:
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError:
                makedirs(os.path.dirname(self.path))
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._writeback = WritebackPacer(self.fd)
        return self.fd

    def write(self, data: bytes | bytearray | memoryview) -> None:
        fd = self._open()
        if data:
            write_all(fd, data)
            self._wrote(len(data))

    def write_parts(self, parts: list[bytes]) -> None:
        write_parts(self._open(), parts)
        self._wrote(sum(len(p) for p in parts))

    def _wrote(self, count: int) -> None:
        self.size += count
        assert self._writeback is not None
        self._writeback.written_to(self.size)  # a large blob goes to the disk as it comes

    def finish(self) -> None:
        # small content is not fsynced here: the commit's group flush makes it durable before any
        # link refers to it
        fd = self._open()
        if self.size >= FLUSH_ALONE:
            os.fsync(fd)
        os.close(fd)
        self.fd = None

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if not self.committed:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _copy_durably(source: str, target: str) -> None:
    with open(source, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, READ_CHUNK)
        dst.flush()
        os.fsync(dst.fileno())


_READERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="blob-read")


class LocalSource:
    """An open blob file. Holding the descriptor keeps the content readable even if an overwrite
    removes the blob meanwhile."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self._reading: Future[bytes] | None = None  # the latest read, maybe ahead of use

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        if end - start < INLINE_READ:
            # a small read from the page cache costs less than the hop to a thread and back
            yield os.pread(self.fd, end - start + 1, start)
            return
        def read_from(offset: int) -> asyncio.Future[bytes]:
            self._reading = _READERS.submit(os.pread, self.fd, min(READ_CHUNK, end - offset + 1), offset)
            return asyncio.wrap_future(self._reading)

        # one read ahead: the next chunk comes from the disk while this one is sent
        offset, reading = start, read_from(start)
        while True:
            chunk = await reading
            offset += len(chunk)
            if not chunk:
                return
            reading = read_from(offset) if offset <= end else None
            yield chunk
            if reading is None:
                return

    def close(self) -> None:
        """Closes the descriptor, once a read still running on it (one ahead of a download that
        stopped) has ended: never under a read, and never a number reused meanwhile."""
        reading = self._reading
        if reading is not None and not reading.done():
            reading.add_done_callback(lambda _: os.close(self.fd))
        else:
            os.close(self.fd)


class AsyncSource(Protocol):
    size: int

    def chunks(self, start: int, end: int) -> AsyncIterator[bytes]: ...
    def close(self) -> None: ...


class LocalBlobs:
    def __init__(self, layout: Callable[[str], SpaceLayout]) -> None:
        self.layout = layout

    def path(self, space_id: str, blob_id: str) -> str:
        return self.layout(space_id).blob_path(blob_id)

    def new_path(self, space_id: str) -> str:
        return self.path(space_id, new_id())  # its folder is made on first write

    def sink(self, space_id: str) -> LocalSink:
        return LocalSink(self.new_path(space_id))

    def store_file(self, space_id: str, path: str) -> str:
        blob_id = os.path.basename(path)
        target = self.path(space_id, blob_id)
        if target != path:  # content assembled elsewhere (a resumable upload): move it in
            makedirs(os.path.dirname(target))
            try:
                os.rename(path, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_durably(path, target)  # the upload area is on another filesystem
                os.unlink(path)
        return blob_id

    def local_path(self, space_id: str, blob_id: str) -> str | None:
        return self.path(space_id, blob_id)

    def open(self, space_id: str, blob_id: str, size: int) -> LocalSource:
        return LocalSource(os.open(self.path(space_id, blob_id), os.O_RDONLY))

    def copy(self, space_id: str, blob_id: str, size: int) -> str:
        """A hard link: no bytes copied, and the blobs stay independent (either can be deleted)."""
        copy_id = new_id()
        target = self.path(space_id, copy_id)
        makedirs(os.path.dirname(target))
        os.link(self.path(space_id, blob_id), target)
        fsync_dir(os.path.dirname(target))
        return copy_id

    def delete(self, space_id: str, blob_id: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path(space_id, blob_id))

    def sizes(self, space_id: str) -> dict[str, int]:
        found = {}
        for dirpath, _dirs, files in os.walk(self.layout(space_id).blobs):
            for name in files:
                with contextlib.suppress(OSError):
                    found[name] = os.stat(os.path.join(dirpath, name)).st_size
        return found

    def purge_space(self, space_id: str) -> None:
        """Nothing to do: the blobs go with the space's folder."""
