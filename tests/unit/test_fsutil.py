"""Lock and write primitives of the decomposed driver."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from infiniscale.drivers.decomposed.fsutil import flocked, write_new


def _held_elsewhere(path: Path) -> bool:
    """Whether another open file description holds a lock on `path` (probed without blocking)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_reused_lock_file_still_excludes_other_threads(tmp_path: Path):
    path = tmp_path / "stripe"
    for _ in range(3):  # the second and third acquisitions reuse the cached descriptor
        with flocked(str(path)):
            assert _held_elsewhere(path)
        assert not _held_elsewhere(path), "leaving the block must release the lock"

    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with flocked(str(path)):
            inside.set()
            release.wait(10)
            order.append("holder leaves")

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(10)
    release.set()
    with flocked(str(path)):  # blocks until the holder has left
        order.append("main enters")
    thread.join(10)
    assert order == ["holder leaves", "main enters"]


def test_shared_holders_coexist_and_block_an_exclusive_one(tmp_path: Path):
    path = tmp_path / "ns.lock"
    with flocked(str(path), shared=True):
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # another shared holder is fine
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        assert _held_elsewhere(path)
    assert not _held_elsewhere(path)


def test_an_exception_inside_releases_the_lock(tmp_path: Path):
    path = tmp_path / "stripe"
    with pytest.raises(RuntimeError), flocked(str(path)):
        raise RuntimeError("boom")
    assert not _held_elsewhere(path)


def test_write_new_refuses_to_replace(tmp_path: Path):
    path = tmp_path / "node.mpk"
    write_new(str(path), b"first")
    with pytest.raises(FileExistsError):
        write_new(str(path), b"second")
    assert path.read_bytes() == b"first"
