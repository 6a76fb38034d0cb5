"""Lock and write primitives of the decomposed driver."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from infiniscale.drivers.decomposed.fsutil import flocked, lock_fd, unlock_fd, write_atomic, write_new


def _held_elsewhere(path: Path) -> bool:
    """Whether another open file description holds a lock on `path` (probed without blocking)."""
    fd = os.open(path, os.O_RDWR)
    try:
        return not lock_fd(fd, wait=False)
    finally:
        os.close(fd)


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
            assert lock_fd(fd, exclusive=False, wait=False)  # another shared holder is fine
            unlock_fd(fd)
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


def test_locks_are_fcntl_locks_that_other_processes_see(tmp_path: Path):
    """fcntl locks are what NFS carries to the server; a classic POSIX lock attempt from another
    process (lockf) must see ours, which it would not for a flock."""
    path = tmp_path / "ns.lock"
    probe = ("import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n    sys.exit(3)\n")
    with flocked(str(path)):
        held = subprocess.run([sys.executable, "-c", probe, str(path)], check=False)
    free = subprocess.run([sys.executable, "-c", probe, str(path)], check=False)
    assert (held.returncode, free.returncode) == (3, 0)


def test_a_rewrite_with_newer_mtime_never_looks_like_the_one_before(tmp_path):
    path = str(tmp_path / "record")
    write_atomic(path, b"one", newer_mtime=True)
    ahead = os.stat(path).st_mtime_ns + 10**12  # as if written by a clock 1000 s ahead
    os.utime(path, ns=(ahead, ahead))
    stamps = [ahead]
    for i in range(20):  # quicker than the filesystem's clock ticks, each the same size
        write_atomic(path, b"%03d" % i, newer_mtime=True)
        stamps.append(os.stat(path).st_mtime_ns)
    assert all(a < b for a, b in itertools.pairwise(stamps))
