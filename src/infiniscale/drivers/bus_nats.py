"""EventBus on NATS JetStream: events are durable, and each consumer group gets each event once
however many processes run it.

One file-backed stream holds every event under `infiniscale.events.<type>`. A group is a durable
pull consumer of that stream: every process of the group keeps a standing pull request open on the
same consumer (`nats_pull.PullFeed`), so an event goes to one of them; it is acknowledged once the
subscriber asks for the next one, so an event whose process died before finishing it is delivered
again (events delivered while a batch is handled wait in the process, at most one batch more, and
their ACK_WAIT_S runs from delivery), and a group that was down catches up on what was published
meanwhile. Publishing waits for the stream's acknowledgement: an event the caller published is
stored when `publish` returns. (The server publishes through `outbox.OutboxBus`, which answers a
request once its event is in the process's outbox and sends the outbox on with `publish_encoded`.)

The stream keeps an event only while a group has yet to acknowledge it (interest retention), for
a week at most. Kept for good, events made the NATS server grow with their number: about 36 MiB
more per 100 000. The groups a deployment runs are created when the bus first connects, so an
event published before a group's first process subscribes is kept for it; a group whose
processes have not asked for events for a week is removed, and with it its claim on events.

Publishing is group-committed: events published while a publication is awaiting its
acknowledgement go out together in the next one, one message per event type holding a list of
events. Sixteen concurrent uploads cost each consumer group one or two messages, not sixteen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping

import orjson

from infiniscale.core.model.events import Event
from infiniscale.drivers.nats_import import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    NotFoundError,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    nats,
)
from infiniscale.drivers.nats_pull import PullFeed

log = logging.getLogger("infiniscale.events")

STREAM = "INFINISCALE_EVENTS"
SUBJECT_PREFIX = "infiniscale.events."
RETENTION_S = 7 * 24 * 3600.0  # how long the stream keeps events for a group that is down
ACK_WAIT_S = 60.0  # an event unacknowledged this long is given to another process of the group
DRAIN_S = 2
PULL_EXPIRES_S = 5.0  # a group's standing pull request is renewed this often when idle


@functools.cache
def _event_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    pending = list(Event.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.type] = cls
        pending += cls.__subclasses__()
    return found


MAX_EVENTS_PER_MESSAGE = 256


def encode_many(events: list[Event]) -> bytes:
    return orjson.dumps([event.to_dict() for event in events])


DECODED_KEPT = 4096  # events a process keeps decoded (about 2 MiB), for its other groups


_decoded: dict[bytes, tuple[Event, ...]] = {}  # message -> its events, oldest first
_decoded_count = 0


def decode(raw: bytes) -> tuple[Event, ...]:
    """The events of a message: a list of them, or one (as stored by earlier versions). Types this
    version does not know (sent by a newer one) are left out. Every consumer group of a process
    receives the same messages, at about the same pace: the first to come decodes them, the
    others get the same events (frozen values)."""
    global _decoded_count
    events = _decoded.get(raw)
    if events is None:
        data = orjson.loads(raw)
        found = (_from_dict(item) for item in (data if isinstance(data, list) else [data]))
        events = _decoded[raw] = tuple(event for event in found if event is not None)
        _decoded_count += len(events)
        while _decoded_count > DECODED_KEPT and len(_decoded) > 1:
            _decoded_count -= len(_decoded.pop(next(iter(_decoded))))
    return events


def _from_dict(data: dict) -> Event | None:
    cls = _event_types().get(data.pop("type", ""))
    if cls is None:
        return None
    names, tuples = _shape(cls)
    values = {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in data.items() if k in names}
    return cls(**values)


@functools.cache
def _shape(cls: type[Event]) -> tuple[frozenset[str], frozenset[str]]:
    """The event type's field names, and those that hold tuples (JSON gives lists): worked out once
    per type instead of for every event of every message each group decodes."""
    fields = dataclasses.fields(cls)
    return frozenset(f.name for f in fields), frozenset(f.name for f in fields if "tuple" in str(f.type))


SETTLE_TIMEOUT_S = 10.0


async def subscriptions_in_place(nc: nats.NATS) -> None:
    """Returns once the server has every subscription made on `nc` so far: a message to ourselves
    travels behind them. nats-py's flush() cannot promise that: it writes its PING straight to
    the socket, ahead of the commands still queued for its writer, so the server could answer it
    before it knew of the subscriptions, and a message published just after went unseen (3 to 10
    times in a hundred, for a new connection)."""
    inbox = nc.new_inbox()
    echo = await nc.subscribe(inbox, max_msgs=1)
    await nc.publish(inbox, b"")
    await echo.next_msg(timeout=SETTLE_TIMEOUT_S)


class NatsEventBus:
    def __init__(self, url: str, stream: str = STREAM,
                 groups: Mapping[str, frozenset[str] | None] | None = None) -> None:
        """`groups`: the consumer groups of this deployment (name -> event types, None for all),
        created on the first connection if they do not exist yet."""
        self.url = url
        self.stream = stream
        self.groups = dict(groups or {})
        # another stream (tests keep apart this way) needs subjects of its own
        self.prefix = SUBJECT_PREFIX if stream == STREAM else f"{stream.lower()}.events."
        self._nc: nats.NATS | None = None
        self._js = None
        self._connecting: asyncio.Lock | None = None
        self._unsent: list[tuple[Event, asyncio.Future[None]]] = []
        self._sender: asyncio.Future[None] | None = None

    async def _jetstream(self):
        if self._js is not None:
            return self._js
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._js is None:
                self._nc = await nats.connect(self.url, name="infiniscale", max_reconnect_attempts=-1,
                                              reconnect_time_wait=0.5, drain_timeout=DRAIN_S)
                js = self._nc.jetstream()
                config = StreamConfig(name=self.stream, subjects=[self.prefix + ">"], storage=StorageType.FILE,
                                      max_age=RETENTION_S, retention=RetentionPolicy.INTEREST)
                try:
                    info = await js.stream_info(self.stream)
                except NotFoundError:
                    info = None
                    await js.add_stream(config)
                for group, types in self.groups.items():
                    await self._ensure_consumer(js, group, types)
                if info is not None and info.config.retention != RetentionPolicy.INTEREST:
                    # made by an earlier version: switched once the groups exist, as the switch
                    # drops every event no group still has to get
                    await js.update_stream(config)
                self._js = js
        return self._js

    async def publish(self, event: Event) -> None:
        """Returns once the stream has stored the event."""
        js = await self._jetstream()
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsent.append((event, stored))
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send(js))
        await asyncio.shield(stored)  # a cancelled request does not take its batch's outcome away

    async def _send(self, js) -> None:
        """Sends what is unsent until nothing is: what arrives while a message awaits its
        acknowledgement goes in the next one."""
        try:
            while self._unsent:
                batch, self._unsent = self._unsent[:MAX_EVENTS_PER_MESSAGE], self._unsent[MAX_EVENTS_PER_MESSAGE:]
                by_type: dict[str, list[tuple[Event, asyncio.Future[None]]]] = {}
                for item in batch:
                    by_type.setdefault(item[0].type, []).append(item)
                await asyncio.gather(*(self._send_one(js, event_type, items)
                                       for event_type, items in by_type.items()))
        finally:
            self._sender = None

    async def _send_one(self, js, event_type: str, items: list[tuple[Event, asyncio.Future[None]]]) -> None:
        try:
            # no expected-stream header: only our stream can hold these subjects (NATS refuses
            # overlapping streams), and a header is parsed again at each group's every delivery
            await js.publish(self.prefix + event_type, encode_many([event for event, _ in items]))
        except Exception as exc:  # every publisher of the message hears of it
            for _, stored in items:
                if not stored.done():
                    stored.set_exception(exc)
            return
        for _, stored in items:
            if not stored.done():
                stored.set_result(None)

    async def publish_encoded(self, event_type: str, events: list[bytes]) -> None:
        """Publishes events of one type, each already a JSON object, as one message; returns
        once the stream has stored it."""
        js = await self._jetstream()
        await js.publish(self.prefix + event_type, b"[" + b",".join(events) + b"]")

    def subscribe(self, group: str, types: frozenset[str] | None = None) -> AsyncIterator[Event]:
        """Events for `group` (of `types`, or all), from the first one the group has not
        acknowledged. A group named in `groups` exists from the bus's first connection, so events
        published before its first process came up are kept for it; any other group starts with
        what the stream still holds for the groups that exist."""
        return self._consume(group, types)

    def subscribe_batches(self, group: str, types: frozenset[str] | None = None,
                          max_batch: int = 256, linger_s: float = 0.0) -> AsyncIterator[list[Event]]:
        """What the group's consumer has waiting, up to `max_batch` events at a time (gathered for up
        to `linger_s` after the first); the batch is acknowledged when the subscriber asks for the
        next one."""
        return self._consume_batches(group, types, max_batch, linger_s)

    async def _consume_batches(self, group: str, types: frozenset[str] | None,
                               max_batch: int, linger_s: float) -> AsyncIterator[list[Event]]:
        feed = await self._feed(group, types, max_batch)
        try:
            while True:
                messages = await feed.next_batch(max_batch, linger_s)
                events = [event for message in messages for event in decode(message.data)]
                if events:
                    yield events
                for message in messages:
                    await message.ack()
        finally:
            await feed.stop()

    async def _feed(self, group: str, types: frozenset[str] | None, batch: int) -> PullFeed:
        js = await self._jetstream()
        await self._ensure_consumer(js, group, types)
        feed = PullFeed(self._nc, self.stream, group, batch=batch, expires_s=PULL_EXPIRES_S)
        await feed.start()
        return feed

    async def _ensure_consumer(self, js, group: str, types: frozenset[str] | None) -> None:
        subjects = sorted(self.prefix + t for t in types) if types else [self.prefix + ">"]
        config = ConsumerConfig(durable_name=group, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                ack_wait=ACK_WAIT_S, filter_subjects=subjects, max_ack_pending=1000,
                                inactive_threshold=RETENTION_S)
        try:
            info = await js.consumer_info(self.stream, group)
        except NotFoundError:
            await js.add_consumer(self.stream, config)  # the same config from another process: no change
            return
        taken = info.config.filter_subjects or ([info.config.filter_subject] if info.config.filter_subject else [])
        if sorted(taken) != subjects:  # made by a version whose group took other event types
            await js.add_consumer(self.stream, config)  # an update: its position and pending events stay

    async def _consume(self, group: str, types: frozenset[str] | None) -> AsyncIterator[Event]:
        feed = await self._feed(group, types, 64)
        try:
            while True:
                for message in await feed.next_batch(64):
                    for event in decode(message.data):
                        yield event  # the subscriber handles it before asking for the next one
                    await message.ack()
        finally:
            await feed.stop()

    def listen(self, types: frozenset[str] | None = None,
               subscribed: Callable[[], None] | None = None) -> AsyncIterator[Event]:
        """A plain NATS subscription: the stream's messages reach every listening process too."""
        return self._listen(types, subscribed)

    async def _listen(self, types: frozenset[str] | None,
                      subscribed: Callable[[], None] | None) -> AsyncIterator[Event]:
        await self._jetstream()
        assert self._nc is not None
        subjects = sorted(self.prefix + t for t in types) if types else [self.prefix + ">"]
        queue: asyncio.Queue = asyncio.Queue(10_000)

        async def take(message) -> None:
            if not queue.full():
                queue.put_nowait(message.data)

        subscriptions = [await self._nc.subscribe(subject, cb=take) for subject in subjects]
        try:
            if subscribed is not None:
                await subscriptions_in_place(self._nc)
                subscribed()
            while True:
                for event in decode(await queue.get()):
                    yield event
        finally:
            for sub in subscriptions:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def close(self) -> None:
        """Drains: unsubscribes, sends what was published, then closes. A closed subscriber's
        fetched but unhandled events are delivered again after ACK_WAIT_S, as after a crash, so
        the drain waits for them only DRAIN_S (nats-py would wait 30 s per connection)."""
        if self._nc is not None:
            await self._nc.drain()
            self._nc, self._js = None, None
