"""Large content is handed to the disk while it is written, in order and all of it, so the final
fsync of an upload finds little left. The system call is a hint whose effect the kernel does not
show per file; the tests record the ranges asked for at that boundary, and check once that the
real call is accepted on a real file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infiniscale.core import uploads, writeback
from infiniscale.core.writeback import STEP, WritebackPacer
from infiniscale.drivers.decomposed.blobs import LocalSink

MIB = 1 << 20


@pytest.fixture
def asked(monkeypatch) -> list[tuple[int, int, int]]:
    """The (fd, offset, length) ranges whose writeback was started."""
    ranges: list[tuple[int, int, int]] = []

    def record(fd: int, offset: int, length: int) -> bool:
        ranges.append((fd, offset, length))
        return True

    monkeypatch.setattr(writeback, "start_writeback", record)
    return ranges


def _contiguous(ranges: list[tuple[int, int, int]], start: int) -> int:
    """Checks the ranges follow each other from `start`; returns where they end."""
    position = start
    for _fd, offset, length in ranges:
        assert offset == position and length > 0
        position += length
    return position


def test_the_pacer_starts_each_stretch_once_it_is_written(asked):
    pacer = WritebackPacer(7, offset=5)
    for end in range(5 + MIB, 5 + 20 * MIB + 1, MIB):
        pacer.written_to(end)
    assert [fd for fd, _, _ in asked] == [7, 7]
    assert all(length >= STEP for _, _, length in asked)
    assert _contiguous(asked, 5) == 5 + 16 * MIB  # the last 4 MiB wait for more or for the end
    pacer.ended_at(5 + 20 * MIB)
    assert _contiguous(asked, 5) == 5 + 20 * MIB
    pacer.ended_at(5 + 20 * MIB)  # nothing new: nothing asked
    assert len(asked) == 3


def test_small_content_asks_for_nothing(asked, tmp_path: Path):
    sink = LocalSink(str(tmp_path / "blobs" / "ab" / "small"))
    sink.write_parts([b"x" * 4096, b"y" * 100])
    sink.finish()
    assert asked == []
    assert (tmp_path / "blobs" / "ab" / "small").read_bytes() == b"x" * 4096 + b"y" * 100


def test_a_large_blob_goes_to_the_disk_as_it_is_written(asked, tmp_path: Path):
    sink = LocalSink(str(tmp_path / "big"))
    parts = [bytes([i]) * MIB for i in range(3 * STEP // MIB + 3)]
    for part in parts:
        sink.write_parts([part[: MIB // 2], part[MIB // 2:]])
    assert _contiguous(asked, 0) == 3 * STEP
    sink.finish()
    assert (tmp_path / "big").read_bytes() == b"".join(parts)


def test_a_resumable_upload_request_hands_over_its_tail_too(asked, tmp_path: Path):
    path = tmp_path / "upload"
    path.write_bytes(b"z" * 1000)  # what earlier requests wrote
    chunks = [bytes([i]) * (MIB - 1) for i in range(STEP // MIB + 5)]

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def in_thread(function, *args):
        return await asyncio.to_thread(function, *args)

    fd = os.open(path, os.O_WRONLY)
    try:
        written = asyncio.run(uploads._stream_into(fd, 1000, body(), None, None, None, in_thread))
    finally:
        os.close(fd)
    assert written == sum(map(len, chunks))
    assert _contiguous(asked, 1000) == 1000 + written  # the request's last bytes included
    assert path.read_bytes() == b"z" * 1000 + b"".join(chunks)


def test_the_kernel_accepts_the_request_on_a_real_file(tmp_path: Path):
    assert writeback.start_writeback is not None  # glibc on Linux has it
    with open(tmp_path / "f", "wb") as fh:
        fh.write(os.urandom(2 * MIB))
        fh.flush()
        assert writeback.start_writeback(fh.fileno(), 0, 2 * MIB)
        os.fsync(fh.fileno())
    assert (tmp_path / "f").stat().st_size == 2 * MIB
