"""Request bodies are written as the chunks came, with writev: every byte in its place, whatever the
number of chunks and however few bytes a call takes."""

from __future__ import annotations

import os
from pathlib import Path

from infiniscale.core import files
from infiniscale.core.checksums import MultiHasher
from infiniscale.core.files import write_parts


def _chunks(count: int) -> list[bytes]:
    return [bytes([i % 251]) * (i % 97) for i in range(count)]  # sizes 0..96, some empty


def test_every_chunk_lands_in_order_beyond_one_writev(tmp_path: Path):
    parts = _chunks(3 * files.IOV_MAX + 5)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    write_parts(fd, parts)
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(parts)


def test_at_an_offset_the_bytes_before_stay(tmp_path: Path):
    (tmp_path / "f").write_bytes(b"x" * 10)
    parts = _chunks(50)
    fd = os.open(tmp_path / "f", os.O_WRONLY)
    write_parts(fd, parts, 10)
    write_parts(fd, [b"tail"], 10 + sum(map(len, parts)))
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"x" * 10 + b"".join(parts) + b"tail"


def test_short_writes_go_on_where_they_stopped(tmp_path: Path, monkeypatch):
    # a regular file takes all it is given; a short write, which POSIX allows, is stood in for
    real_writev, real_pwritev = os.writev, os.pwritev
    monkeypatch.setattr(os, "writev", lambda fd, bufs: real_writev(fd, _first_bytes(bufs, 7)))
    monkeypatch.setattr(os, "pwritev", lambda fd, bufs, at: real_pwritev(fd, _first_bytes(bufs, 5), at))
    parts = _chunks(120)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    write_parts(fd, parts)
    write_parts(fd, parts, sum(map(len, parts)))
    os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(parts) * 2


def _first_bytes(bufs: list, limit: int) -> list[bytes]:
    out = []
    for buf in bufs:
        take = bytes(buf[:limit])
        out.append(take)
        limit -= len(take)
        if not limit:
            break
    return out


def test_hashing_the_parts_equals_hashing_them_joined():
    parts = [os.urandom(size) for size in (0, 1, 4096, 300_000, 65_537, 1 << 20)]
    for chosen in (parts[:3], parts):  # under and over the size hashed by three threads
        apart, joined = MultiHasher(), MultiHasher()
        apart.update_parts(chosen)
        joined.update(b"".join(chosen))
        assert apart.hexdigests() == joined.hexdigests()
