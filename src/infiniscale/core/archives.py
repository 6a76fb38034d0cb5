"""Zip and tar archives of files and folders, streamed: each file's content is read in chunks and
handed on as archive bytes at once, so memory stays flat whatever the total size.

Entry names are built from node names, which can hold neither `/` nor `..` (validated on every
write), below the name of the item the archive was asked for: an archive never names anything
outside the folder it is unpacked into.
"""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.ports.storage import BlobSource

ZIP64_FROM = 0xFFFFFFFF - (1 << 20)  # entries this large need zip64 sizes
OpenContent = Callable[[NodeInfo], Awaitable[BlobSource]]


@dataclass(frozen=True)
class Entry:
    path: str  # inside the archive, "/"-separated, without a leading slash
    node: NodeInfo


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def _zip_time(mtime_ns: int) -> tuple[int, int, int, int, int, int]:
    moment = time.gmtime(max(mtime_ns // 1_000_000_000, 315532800))  # zip cannot date before 1980
    return moment[:6]


async def _content(node: NodeInfo, open_content: OpenContent) -> AsyncIterator[bytes]:
    if node.size == 0:
        return
    source = await open_content(node)
    try:
        async for chunk in source.chunks(0, node.size - 1):
            yield chunk
    finally:
        source.close()


async def stream_zip(entries: list[Entry], open_content: OpenContent) -> AsyncIterator[bytes]:
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True)  # type: ignore[arg-type]
    for entry in entries:
        node = entry.node
        if node.is_folder:
            archive.writestr(zipfile.ZipInfo(entry.path + "/", _zip_time(node.mtime_ns)), b"")
        else:
            info = zipfile.ZipInfo(entry.path, _zip_time(node.mtime_ns))
            info.file_size = node.size
            with archive.open(info, "w", force_zip64=node.size > ZIP64_FROM) as member:
                async for chunk in _content(node, open_content):
                    member.write(chunk)
                    yield sink.take()
        yield sink.take()
    archive.close()
    yield sink.take()


async def stream_tar(entries: list[Entry], open_content: OpenContent) -> AsyncIterator[bytes]:
    for entry in entries:
        node = entry.node
        info = tarfile.TarInfo(entry.path)
        info.mtime = node.mtime_ns // 1_000_000_000
        info.mode = 0o755 if node.is_folder else 0o644
        info.type = tarfile.DIRTYPE if node.is_folder else tarfile.REGTYPE
        info.size = 0 if node.is_folder else node.size
        yield info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
        if node.is_folder:
            continue
        async for chunk in _content(node, open_content):
            yield chunk
        if node.size % tarfile.BLOCKSIZE:
            yield bytes(tarfile.BLOCKSIZE - node.size % tarfile.BLOCKSIZE)
    yield bytes(tarfile.RECORDSIZE)  # end of archive: two zero blocks, padded to a record
