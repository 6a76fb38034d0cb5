"""Events leave a process through a file of its own, its outbox, on their way to NATS.

`OutboxBus.publish` appends the event to this process's outbox and returns: the request that made
the change is answered without a round trip to NATS, it is answered even while NATS is away, and
an event outlives a crash of the process that published it (before, an event not yet acknowledged
by the stream was lost with the process, and a request whose event could not be published failed
after its change was made). One sender task per process publishes the outbox in order, in batches
(one message per event type), and records in the file's header how far the stream has acknowledged
it. A process sends on the outboxes of processes that are gone (their lock is free) when it starts
and every minute. An event may then reach the stream twice, which consumers absorb as they absorb
a redelivery.

The outbox is written like the page cache holds it, without an fsync: it survives the process,
and a power loss may take its last events, as it may take those the NATS server has not synced yet.

File layout: an 8-byte header (how far the stream has acknowledged, little-endian), then records of
u32 payload length, u8 type length, the type, the payload (the event as a JSON object). The header
is rewritten in place and records are appended; a record cut short ends the file for its reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import uuid
import weakref
from collections.abc import AsyncIterator, Callable

import orjson

from infiniscale.core.model.events import Event
from infiniscale.drivers.bus_nats import MAX_EVENTS_PER_MESSAGE, NatsEventBus

log = logging.getLogger("infiniscale.events")

HEADER = struct.Struct("<Q")
RECORD = struct.Struct("<IB")
SUFFIX = ".outbox"
BATCH_BYTES = 256 * 1024  # read from the outbox per batch
START_OVER_BYTES = 1 << 20  # a fully sent outbox larger than this is emptied
RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # waits between attempts while NATS is away
DRAIN_S = 3.0  # a stopping process sends what is left for this long; the rest waits for the next start
ORPHAN_SCAN_S = 60.0


class Outbox:
    """One process's outbox file, locked while the process lives."""

    def __init__(self, path: str, fd: int, sent: int, end: int) -> None:
        self.path = path
        self._fd = fd
        self.sent = sent  # offset up to which the stream has acknowledged the records
        self.end = end  # offset after the last record

    @classmethod
    def create(cls, folder: str) -> Outbox:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, HEADER.pack(HEADER.size), 0)
        return cls(path, fd, HEADER.size, HEADER.size)

    @classmethod
    def claim(cls, path: str) -> Outbox | None:
        """The outbox at `path` if its process is gone and no other process took it meanwhile."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                raise FileNotFoundError(path)  # sent and removed by another process before our lock
        except (BlockingIOError, FileNotFoundError):  # alive, or already taken care of
            os.close(fd)
            return None
        header = os.pread(fd, HEADER.size, 0)
        sent = HEADER.unpack(header)[0] if len(header) == HEADER.size else HEADER.size
        return cls(path, fd, max(sent, HEADER.size), os.fstat(fd).st_size)

    def append(self, event_type: str, payload: bytes) -> None:
        kind = event_type.encode()
        record = RECORD.pack(len(payload), len(kind)) + kind + payload
        written = os.pwrite(self._fd, record, self.end)
        if written != len(record):
            raise OSError(f"outbox {self.path}: {written} of {len(record)} bytes written")
        self.end += written

    def pending(self) -> bool:
        return self.sent < self.end

    def read(self, max_events: int = MAX_EVENTS_PER_MESSAGE) -> tuple[list[tuple[str, bytes]], int]:
        """The next unsent records (type, payload), and the offset after the last of them."""
        data = os.pread(self._fd, min(BATCH_BYTES, self.end - self.sent), self.sent)
        records: list[tuple[str, bytes]] = []
        at = 0
        while len(records) < max_events and at + RECORD.size <= len(data):
            size, kind_size = RECORD.unpack_from(data, at)
            start = at + RECORD.size + kind_size
            if start + size > len(data):
                if not records and self.sent + start + size <= self.end:  # one record above BATCH_BYTES
                    data = os.pread(self._fd, start + size, self.sent)
                    continue
                break  # the rest comes with the next read, or was cut short by a crash
            records.append((data[at + RECORD.size:start].decode(), data[start:start + size]))
            at = start + size
        if not records:
            self.end = self.sent  # what is left is a record cut short: nothing more to send
        return records, self.sent + at

    def mark_sent(self, offset: int) -> None:
        self.sent = offset
        if self.sent == self.end and self.end > START_OVER_BYTES:
            # emptied before the header says so: a crash in between leaves a header beyond the
            # end, which reads as "all sent", never as "send again"
            os.ftruncate(self._fd, HEADER.size)
            self.sent = self.end = HEADER.size
        os.pwrite(self._fd, HEADER.pack(self.sent), 0)

    def remove(self) -> None:
        """Deletes the file, then gives up the lock: nobody can claim it in between."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OutboxBus:
    """An EventBus on NATS whose `publish` returns once the event is in this process's outbox;
    `run` (a background job of every process that publishes) sends it on."""

    def __init__(self, inner: NatsEventBus, folder: str) -> None:
        self.inner = inner
        self.folder = folder
        self._outbox: Outbox | None = None
        self._wake = asyncio.Event()
        # a forked process makes an outbox of its own; told at the fork, publishing need not ask
        # the kernel for its pid each time
        bus = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget_outbox(bus()))

    def own(self) -> Outbox:
        """This process's outbox, made on first use."""
        if self._outbox is None:
            self._outbox = Outbox.create(self.folder)
        return self._outbox

    async def publish(self, event: Event) -> None:
        self.own().append(event.type, orjson.dumps(event.to_dict()))
        self._wake.set()

    async def run(self) -> None:
        """Sends this process's outbox as it fills, until cancelled, then what is left (DRAIN_S
        at most); and what processes that are gone left in theirs, at the start and every
        ORPHAN_SCAN_S (a server sharing the storage with one that crashed takes over its events)."""
        outbox = self.own()
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self.send_orphans()
                scan_at = loop.time() + ORPHAN_SCAN_S
                while loop.time() < scan_at:
                    if not outbox.pending():
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), scan_at - loop.time())
                    await self._send_batch(outbox)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._send_all(outbox), DRAIN_S)
            if not outbox.pending():  # all sent: nothing for the next start to look at
                outbox.remove()
                self._outbox = None
            raise

    async def send_orphans(self) -> int:
        """Sends and removes the outboxes whose processes are gone; returns how many there were."""
        try:
            names = sorted(n for n in os.listdir(self.folder) if n.endswith(SUFFIX))
        except FileNotFoundError:
            return 0
        own = self._outbox.path if self._outbox is not None else ""
        count = 0
        for name in names:
            path = os.path.join(self.folder, name)
            if path == own or (orphan := Outbox.claim(path)) is None:
                continue
            try:
                if orphan.pending():
                    log.info("sending the events a stopped process left in %s", name)
                await self._send_all(orphan)
                orphan.remove()
                count += 1
            finally:
                orphan.close()
        return count

    async def _send_all(self, outbox: Outbox) -> None:
        while outbox.pending():
            await self._send_batch(outbox)

    async def _send_batch(self, outbox: Outbox) -> None:
        """Publishes the next batch, trying again (after a growing wait) until the stream has it."""
        attempt = 0
        while True:
            records, upto = outbox.read()
            if not records:
                return
            by_type: dict[str, list[bytes]] = {}
            for event_type, payload in records:
                by_type.setdefault(event_type, []).append(payload)
            try:
                await asyncio.gather(*(self.inner.publish_encoded(event_type, payloads)
                                       for event_type, payloads in by_type.items()))
            except Exception as exc:  # NATS away or slow: the events wait in the outbox
                if attempt == 0:
                    log.warning("events wait in the outbox until NATS takes them: %s", exc or type(exc).__name__)
                await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                attempt += 1
                continue
            outbox.mark_sent(upto)
            if attempt:
                log.info("NATS takes the events again")
            return

    def subscribe(self, group: str, types: frozenset[str] | None = None) -> AsyncIterator[Event]:
        return self.inner.subscribe(group, types)

    def subscribe_batches(self, group: str, types: frozenset[str] | None = None,
                          max_batch: int = 256, linger_s: float = 0.0) -> AsyncIterator[list[Event]]:
        return self.inner.subscribe_batches(group, types, max_batch, linger_s)

    def listen(self, types: frozenset[str] | None = None,
               subscribed: Callable[[], None] | None = None) -> AsyncIterator[Event]:
        return self.inner.listen(types, subscribed)

    async def close(self) -> None:
        await self.inner.close()


def _forget_outbox(bus: OutboxBus | None) -> None:
    if bus is not None:
        bus._outbox = None  # the parent's: its lock and file stay the parent's
