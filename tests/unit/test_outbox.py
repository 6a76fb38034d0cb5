"""The outbox between a process and NATS, on real NATS servers: events arrive once and in order;
publishing returns at once while NATS is frozen and the events follow when it thaws; what a
crashed process left unsent (and only that) is sent by the next one, while the outbox of a live
process is left alone; a fully sent outbox starts over instead of growing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from infiniscale.core.model.events import FileUploaded
from infiniscale.drivers import outbox as outbox_module
from infiniscale.drivers.bus_nats import NatsEventBus
from infiniscale.drivers.outbox import HEADER, RECORD, START_OVER_BYTES, SUFFIX, Outbox, OutboxBus


def uploaded(i: int) -> FileUploaded:
    return FileUploaded(executant="u", space_id="s", node_id=f"n{i}", parent_id="p", name=f"f{i}", size=i, new=True)


async def received(bus: NatsEventBus, count: int, timeout: float = 15.0) -> list[int]:
    """What group `g` gets: `count` events, and whatever else comes within half a second after."""
    got: list[int] = []

    async def consume() -> None:
        async for event in bus.subscribe("g"):
            got.append(int(event.node_id[1:]))

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(timeout):
            while len(got) < count:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # room for a duplicate to show up
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return got


def outboxes(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}"))


def test_events_arrive_once_and_in_order(nats_server, tmp_path: Path):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = OutboxBus(NatsEventBus(nats_server, stream, groups={"g": None}), str(tmp_path))
        sender = asyncio.create_task(bus.run())
        for i in range(700):  # several batches
            await bus.publish(uploaded(i))
        assert await received(bus.inner, 700) == list(range(700))
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        assert outboxes(tmp_path) == []  # all sent: a clean stop leaves nothing behind
        await bus.close()

    asyncio.run(run())


def test_publishing_goes_on_while_nats_is_frozen(restartable_nats, tmp_path: Path):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = OutboxBus(NatsEventBus(restartable_nats.url, stream, groups={"g": None}), str(tmp_path))
        sender = asyncio.create_task(bus.run())
        await bus.publish(uploaded(0))
        assert await received(bus.inner, 1) == [0]
        os.kill(restartable_nats.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            for i in range(1, 51):
                await bus.publish(uploaded(i))
            assert time.monotonic() - started < 1.0  # a NATS publication would have waited seconds
            await asyncio.sleep(1.5)  # the sender tries, and waits
            assert bus.own().pending()
        finally:
            os.kill(restartable_nats.pid, signal.SIGCONT)
        assert await received(bus.inner, 50, timeout=30) == list(range(1, 51))
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await bus.close()

    asyncio.run(run())


CRASHING_PUBLISHER = """
import asyncio, os, sys
from infiniscale.core.model.events import FileUploaded
from infiniscale.drivers import outbox as outbox_module
from infiniscale.drivers.bus_nats import NatsEventBus
from infiniscale.drivers.outbox import RECORD, OutboxBus

bus = OutboxBus(NatsEventBus("nats://127.0.0.1:1"), sys.argv[1])
for i in range(5):
    asyncio.run(bus.publish(FileUploaded(executant="u", space_id="s", node_id=f"n{i}", parent_id="p",
                                         name=f"f{i}", size=i, new=True)))
outbox = bus.own()
records, upto = outbox.read(max_events=2)
outbox.mark_sent(upto)  # the first two reached the stream
os.pwrite(outbox._fd, RECORD.pack(500, 12) + b"FileUploaded" + b'{"type":', outbox.end)  # cut short by the crash
print("ready", flush=True)
if sys.argv[2] == "live":
    sys.stdin.read()  # holds its outbox until the test closes our stdin
os.kill(os.getpid(), 9)
"""


def test_the_next_process_sends_what_a_crashed_one_left(nats_server, tmp_path: Path):
    stream = f"T{uuid.uuid4().hex}"
    subprocess.run([sys.executable, "-c", CRASHING_PUBLISHER, str(tmp_path), "crash"], check=False, timeout=60)
    assert len(outboxes(tmp_path)) == 1

    async def run() -> None:
        bus = OutboxBus(NatsEventBus(nats_server, stream, groups={"g": None}), str(tmp_path))
        assert await bus.send_orphans() == 1
        assert await received(bus.inner, 3) == [2, 3, 4]  # not the two already sent, nor the cut record
        assert outboxes(tmp_path) == []
        await bus.close()

    asyncio.run(run())


def test_a_running_process_takes_over_the_outbox_of_one_that_crashed_later(nats_server, tmp_path: Path,
                                                                           monkeypatch):
    """As a server sharing the storage with one that crashed: it looks for orphans now and then."""
    monkeypatch.setattr(outbox_module, "ORPHAN_SCAN_S", 0.3)
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = OutboxBus(NatsEventBus(nats_server, stream, groups={"g": None}), str(tmp_path))
        sender = asyncio.create_task(bus.run())
        await asyncio.sleep(0.2)
        crashed = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASHING_PUBLISHER, str(tmp_path),
                                                       "crash", stdout=subprocess.DEVNULL)
        await crashed.wait()
        assert await received(bus.inner, 3) == [2, 3, 4]
        assert [p.name for p in outboxes(tmp_path)] == [os.path.basename(bus.own().path)]
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await bus.close()

    asyncio.run(run())


def test_the_outbox_of_a_live_process_is_left_alone(nats_server, tmp_path: Path):
    stream = f"T{uuid.uuid4().hex}"
    live = subprocess.Popen([sys.executable, "-c", CRASHING_PUBLISHER, str(tmp_path), "live"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "ready"

        async def run() -> None:
            bus = OutboxBus(NatsEventBus(nats_server, stream, groups={"g": None}), str(tmp_path))
            assert await bus.send_orphans() == 0
            assert len(outboxes(tmp_path)) == 1
            live.stdin.close()  # type: ignore[union-attr] - it ends now
            live.wait(30)
            assert await bus.send_orphans() == 1
            assert await received(bus.inner, 3) == [2, 3, 4]
            await bus.close()

        asyncio.run(run())
    finally:
        with contextlib.suppress(ProcessLookupError):
            live.kill()
        live.wait(30)


def test_a_fully_sent_outbox_starts_over(tmp_path: Path):
    outbox = Outbox.create(str(tmp_path))
    payload = b'{"pad":"' + b"x" * 1000 + b'"}'
    count = START_OVER_BYTES // len(payload) + 10
    for _ in range(count):
        outbox.append("FileUploaded", payload)
    sent = 0
    while outbox.pending():
        records, upto = outbox.read()
        sent += len(records)
        outbox.mark_sent(upto)
    assert sent == count
    assert os.path.getsize(outbox.path) == HEADER.size
    outbox.append("FileUploaded", b"{}")
    assert outbox.read() == ([("FileUploaded", b"{}")], HEADER.size + RECORD.size + len("FileUploaded") + 2)
    outbox.remove()


def test_a_header_beyond_the_end_reads_as_all_sent(tmp_path: Path):
    """A crash between emptying the file and rewriting its header: nothing is sent again."""
    path = tmp_path / f"gone{SUFFIX}"
    path.write_bytes(HEADER.pack(5_000_000))
    orphan = Outbox.claim(str(path))
    assert orphan is not None and not orphan.pending()
    orphan.remove()
