"""Group commit of durability: who waits for which flush, and what a failed flush tells them."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from infiniscale.drivers.decomposed import groupsync
from infiniscale.drivers.decomposed.groupsync import GroupSync


class GatedFlush:
    """Stands in for syncfs(2) so a test can hold a flush open: the timing of a real flush cannot
    be controlled. Counts flushes; each waits until the test opens the gate."""

    def __init__(self) -> None:
        self.started = 0
        self.gate = threading.Semaphore(0)
        self.running = threading.Event()

    def __call__(self, fd: int) -> None:
        self.started += 1
        self.running.set()
        self.gate.acquire()


def test_a_real_flush_returns(tmp_path: Path):
    sync = GroupSync(str(tmp_path))
    (tmp_path / "f").write_bytes(b"data")
    sync.sync()
    asyncio.run(sync.sync_async())
    sync.close()


def test_one_flush_serves_every_thread_waiting_when_it_starts(tmp_path: Path, monkeypatch):
    flush = GatedFlush()
    monkeypatch.setattr(groupsync, "_flush", flush)
    sync = GroupSync(str(tmp_path))
    first = threading.Thread(target=sync.sync)
    first.start()
    assert flush.running.wait(5)
    # these arrive while the first flush runs: it may have missed their writes
    waiters = [threading.Thread(target=sync.sync) for _ in range(8)]
    for t in waiters:
        t.start()
    flush.gate.release()  # the first flush ends: the first caller returns, the others do not
    first.join(5)
    assert not first.is_alive()
    for t in waiters:
        t.join(0.2)
        assert t.is_alive()
    flush.gate.release()  # one more flush serves all eight
    for t in waiters:
        t.join(5)
        assert not t.is_alive()
    assert flush.started == 2


def test_coroutines_share_a_flush_and_the_loop_goes_on(tmp_path: Path, monkeypatch):
    flush = GatedFlush()
    monkeypatch.setattr(groupsync, "_flush", flush)
    sync = GroupSync(str(tmp_path))

    async def main() -> None:
        waiting = [asyncio.ensure_future(sync.sync_async()) for _ in range(16)]
        await asyncio.sleep(0.05)  # the loop is free while the flush is held open
        assert not any(w.done() for w in waiting)
        flush.gate.release()
        flush.gate.release()  # (in case the flush started before all sixteen had asked)
        await asyncio.wait_for(asyncio.gather(*waiting), 5)

    asyncio.run(main())
    assert flush.started <= 2


def test_coroutines_that_ask_in_one_turn_of_the_loop_share_one_flush(tmp_path: Path, monkeypatch):
    """Sixteen uploads resumed in one turn each write for a while, then ask: the first must not
    start a flush that the other fifteen then wait behind."""
    flush = GatedFlush()
    monkeypatch.setattr(groupsync, "_flush", flush)
    sync = GroupSync(str(tmp_path))

    async def upload() -> None:
        time.sleep(0.002)  # the writes before the flush, done on the loop
        await sync.sync_async()

    async def main() -> None:
        warm = asyncio.ensure_future(sync.sync_async())  # the flushing thread is up and idle
        await asyncio.sleep(0.05)
        flush.gate.release()
        await asyncio.wait_for(warm, 5)
        uploads = [asyncio.ensure_future(upload()) for _ in range(16)]
        await asyncio.sleep(0.1)
        for _ in range(2):  # (a second flush, should one start)
            flush.gate.release()
        await asyncio.wait_for(asyncio.gather(*uploads), 5)

    asyncio.run(main())
    assert flush.started == 2  # the warm-up's and the one for all sixteen


def test_a_failed_flush_fails_its_waiters_and_the_next_one_may_succeed(tmp_path: Path, monkeypatch):
    outcomes = [OSError(5, "Input/output error"), None]

    def flaky(fd: int) -> None:
        if (error := outcomes.pop(0)) is not None:
            raise error

    monkeypatch.setattr(groupsync, "_flush", flaky)
    sync = GroupSync(str(tmp_path))
    with pytest.raises(OSError, match="Input/output"):
        sync.sync()
    sync.sync()

    outcomes[:] = [OSError(28, "No space left on device")]

    async def main() -> None:
        with pytest.raises(OSError, match="No space"):
            await sync.sync_async()

    asyncio.run(main())


def test_a_flusher_that_cannot_start_fails_the_askers_instead_of_leaving_them_waiting(tmp_path: Path, monkeypatch):
    def refuse(self) -> None:  # what a process out of threads gets; cannot be caused reliably
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    sync = GroupSync(str(tmp_path))

    async def main() -> None:
        with pytest.raises(RuntimeError, match="can't start"):
            await asyncio.wait_for(sync.sync_async(), 5)

    asyncio.run(main())
