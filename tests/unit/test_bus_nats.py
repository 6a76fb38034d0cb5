"""The EventBus on a real NATS JetStream server: every event reaches each group once, shared by
the group's subscribers; a group that was away gets what was published meanwhile; events travel
with their fields (tuples included); filters by type hold; the stream keeps only what a group has
yet to acknowledge."""

from __future__ import annotations

import asyncio
import uuid

import orjson

from infiniscale.core.model.events import ContainerCreated, FileUploaded, ItemPurged, TagsAdded
from infiniscale.drivers import bus_nats
from infiniscale.drivers.bus_nats import NatsEventBus, decode


def encode(event) -> bytes:
    """A message as earlier versions published it: one event, not a list."""
    return orjson.dumps(event.to_dict())


def uploaded(i: int) -> FileUploaded:
    return FileUploaded(executant="u", space_id="s", node_id=f"n{i}", parent_id="p", name=f"f{i}", size=i, new=True)


async def collect(bus: NatsEventBus, group: str, into: list, who: str, types: frozenset[str] | None = None) -> None:
    async for event in bus.subscribe(group, types):
        into.append((who, event))


async def settle(got: list, count: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while len(got) < count:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # room for a duplicate to show up


def test_each_group_gets_each_event_once(nats_server):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        buses = [NatsEventBus(nats_server, stream) for _ in range(3)]
        buses.append(NatsEventBus(nats_server, stream, groups={"index": None, "audit": None}))
        indexer: list = []
        auditor: list = []
        tasks = [asyncio.create_task(collect(buses[0], "index", indexer, "a")),
                 asyncio.create_task(collect(buses[1], "index", indexer, "b")),
                 asyncio.create_task(collect(buses[2], "audit", auditor, "c"))]
        for i in range(100):
            await buses[3].publish(uploaded(i))
        await settle(indexer, 100)
        await settle(auditor, 100)
        for task in tasks:
            task.cancel()
        assert sorted(e.node_id for _, e in indexer) == sorted(f"n{i}" for i in range(100))
        assert sorted(e.node_id for _, e in auditor) == sorted(f"n{i}" for i in range(100))
        for bus in buses:
            if isinstance(bus, NatsEventBus):
                await bus.close()

    asyncio.run(run())


def test_a_group_that_was_away_catches_up(nats_server):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        publisher = NatsEventBus(nats_server, stream, groups={"late": None})
        got: list = []
        first = NatsEventBus(nats_server, stream)
        task = asyncio.create_task(collect(first, "late", got, "first"))
        await publisher.publish(uploaded(0))
        await settle(got, 1)
        task.cancel()
        await first.close()
        for i in range(1, 6):  # nobody of the group is there
            await publisher.publish(uploaded(i))
        second = NatsEventBus(nats_server, stream)
        task = asyncio.create_task(collect(second, "late", got, "second"))
        await settle(got, 6)
        task.cancel()
        assert [e.node_id for _, e in got] == [f"n{i}" for i in range(6)]
        assert [who for who, _ in got[1:]] == ["second"] * 5
        await second.close()
        await publisher.close()

    asyncio.run(run())


def test_type_filters_and_round_trip_of_fields(nats_server):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        types = frozenset({"TagsAdded", "ContainerCreated"})
        bus = NatsEventBus(nats_server, stream, groups={"tags": types})
        got: list = []
        task = asyncio.create_task(collect(bus, "tags", got, "x", types))
        await bus.publish(uploaded(1))
        tagged = TagsAdded(executant="u", space_id="s", node_id="n", tags=("red", "blue"))
        await bus.publish(tagged)
        await bus.publish(ContainerCreated(executant="u", space_id="s", node_id="d", parent_id="p", name="dir"))
        await settle(got, 2)
        task.cancel()
        assert [e for _, e in got] == [tagged, got[1][1]] and got[1][1].type == "ContainerCreated"
        assert isinstance(got[0][1].tags, tuple)
        await bus.close()

    asyncio.run(run())


def test_unknown_event_types_are_skipped():
    assert decode(b'{"type": "FromTheFuture", "executant": "u", "space_id": "s"}') == ()
    event = uploaded(7)
    assert decode(encode(event)) == (event,)  # one event per message, as earlier versions stored them
    future = b'{"type": "FromTheFuture", "executant": "u", "space_id": "s"}'
    assert decode(b"[" + future + b"," + encode(event) + b"]") == (event,)


def test_the_groups_of_a_process_share_the_decoded_events(nats_server):
    """Decoding is a large part of what consuming costs: a message is decoded once per process,
    not once per group, and what is kept stays bounded."""
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = NatsEventBus(nats_server, stream, groups={"index": None, "audit": None})
        indexer: list = []
        auditor: list = []
        tasks = [asyncio.create_task(collect(bus, "index", indexer, "i")),
                 asyncio.create_task(collect(bus, "audit", auditor, "a"))]
        for i in range(20):
            await bus.publish(uploaded(i))
        await settle(indexer, 20)
        await settle(auditor, 20)
        for task in tasks:
            task.cancel()
        by_node = {e.node_id: e for _, e in indexer}
        assert all(by_node[e.node_id] is e for _, e in auditor)
        await bus.close()

    asyncio.run(run())
    for i in range(bus_nats.DECODED_KEPT + 10):
        decode(orjson.dumps([uploaded(i).to_dict()]))
    assert bus_nats._decoded_count <= bus_nats.DECODED_KEPT


def test_concurrent_publications_share_messages_and_all_arrive_in_order(nats_server):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus, reader = NatsEventBus(nats_server, stream), NatsEventBus(nats_server, stream)
        got: list = []
        task = asyncio.create_task(collect(reader, "all", got, "r"))
        await asyncio.sleep(0.3)
        folder = ContainerCreated(executant="u", space_id="s", node_id="d", parent_id="p", name="d")
        await asyncio.gather(*(bus.publish(uploaded(i)) for i in range(300)), bus.publish(folder))
        await settle(got, 301)
        task.cancel()
        js = await bus._jetstream()
        messages = (await js.stream_info(stream)).state.last_seq  # stored ever, acknowledged ones too
        assert messages < 50  # published while others awaited their acknowledgement: batched
        uploads = [e.node_id for _, e in got if isinstance(e, FileUploaded)]
        assert uploads == [f"n{i}" for i in range(300)]  # in the order published
        assert [e for _, e in got if isinstance(e, ContainerCreated)] == [folder]
        await bus.close()
        await reader.close()

    asyncio.run(run())


def test_the_stream_keeps_events_until_every_group_acknowledged_them(nats_server):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = NatsEventBus(nats_server, stream, groups={"fast": None, "slow": None})
        for i in range(10):  # before any subscriber: kept for both declared groups
            await bus.publish(uploaded(i))
        js = await bus._jetstream()

        async def stored() -> int:
            return (await js.stream_info(stream)).state.messages

        assert await stored() > 0
        fast: list = []
        task = asyncio.create_task(collect(bus, "fast", fast, "f"))
        await settle(fast, 10)
        assert await stored() > 0  # "slow" has not had them yet
        slow: list = []
        task2 = asyncio.create_task(collect(bus, "slow", slow, "s"))
        await settle(slow, 10)
        await bus.publish(uploaded(10))  # asking for the next one acknowledges the last
        await settle(slow, 11)
        await settle(fast, 11)
        task.cancel()
        task2.cancel()
        assert [e.node_id for _, e in slow] == [f"n{i}" for i in range(11)]
        async with asyncio.timeout(10):
            while await stored() > 1:  # all but the newest acknowledged by both: gone
                await asyncio.sleep(0.05)
        await bus.close()

    asyncio.run(run())


def test_a_group_made_by_an_earlier_version_takes_the_types_of_this_one(nats_server):
    """A group whose event types changed (thumbnails no longer takes uploads) is updated in place:
    it keeps its position, and what it no longer takes is not delivered to it."""
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        earlier = NatsEventBus(nats_server, stream, groups={"thumbs": frozenset({"FileUploaded", "ItemPurged"})})
        await earlier.publish(ItemPurged(executant="u", space_id="s", node_id="before", name="a"))
        await earlier.close()
        bus = NatsEventBus(nats_server, stream, groups={"thumbs": frozenset({"ItemPurged"})})
        js = await bus._jetstream()
        config = (await js.consumer_info(stream, "thumbs")).config
        assert (config.filter_subjects or [config.filter_subject]) == [bus.prefix + "ItemPurged"]
        await bus.publish(uploaded(1))
        await bus.publish(ItemPurged(executant="u", space_id="s", node_id="after", name="b"))
        got: list = []
        task = asyncio.create_task(collect(bus, "thumbs", got, "t", frozenset({"ItemPurged"})))
        await settle(got, 2)
        task.cancel()
        assert [e.node_id for _, e in got] == ["before", "after"]
        await bus.close()

    asyncio.run(run())


def test_stored_events_carry_no_headers(nats_server):
    """Each group parses a message's headers at every delivery: events are stored without any."""
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = NatsEventBus(nats_server, stream, groups={"search": None})
        event = uploaded(1)
        await bus.publish(event)
        js = await bus._jetstream()
        stored = await js.get_msg(stream, seq=1)
        assert decode(stored.data) == (event,)
        assert not stored.headers
        await bus.close()

    asyncio.run(run())


def test_a_stream_of_an_earlier_version_keeps_only_what_groups_need(nats_server):
    """Streams used to keep every event for a week; they are switched over, keeping the events a
    group of the deployment has yet to get."""
    from infiniscale.drivers.nats_import import RetentionPolicy, StorageType, StreamConfig, nats

    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        nc = await nats.connect(nats_server)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.events.>"],
                                         storage=StorageType.FILE, max_age=3600))
        await js.publish(f"{stream.lower()}.events.FileUploaded", b"[]")
        bus = NatsEventBus(nats_server, stream, groups={"search": None})
        await bus._jetstream()
        info = await js.stream_info(stream)
        assert info.config.retention == RetentionPolicy.INTEREST
        assert info.state.messages == 1
        await bus.close()
        await nc.close()

    asyncio.run(run())


async def first_batches(bus, group: str, publish, linger_s: float) -> list[int]:
    """Sizes of the batches a lingering subscriber gets while `publish` trickles events in."""
    sizes: list[int] = []

    async def take() -> None:
        async for batch in bus.subscribe_batches(group, linger_s=linger_s):
            sizes.append(len(batch))

    task = asyncio.create_task(take())
    await asyncio.sleep(0.3)  # subscribed
    await publish()
    await asyncio.sleep(linger_s + 0.5)
    task.cancel()
    return sizes


def test_a_lingering_batch_gathers_a_trickle_of_events(nats_server):
    from infiniscale.drivers.bus_local import LocalEventBus

    async def run(bus, linger_s: float) -> list[int]:
        async def trickle() -> None:
            for i in range(5):  # one event every 50 ms
                await bus.publish(uploaded(i))
                await asyncio.sleep(0.05)

        return await first_batches(bus, "group", trickle, linger_s)

    for make in (lambda: NatsEventBus(nats_server, f"T{uuid.uuid4().hex}"), LocalEventBus):
        eager = asyncio.run(run(make(), 0.0))
        assert sum(eager) == 5 and max(eager) < 5, eager  # batches as the events come
        assert asyncio.run(run(make(), 0.6)) == [5]  # the whole trickle in one batch


def test_the_nats_client_leaves_aiohttp_unloaded_but_importable():
    """aiohttp (20 MiB a process) comes only with S3, not with the event bus."""
    import subprocess
    import sys

    code = ("import sys, infiniscale.drivers.bus_nats; assert 'aiohttp' not in sys.modules, 'loaded'; "
            "import aiohttp, aiobotocore.session")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_listener_hears_whatever_is_published_once_it_says_it_listens(nats_server):
    """`listen` reports itself subscribed only once the server has its subscriptions: a message
    published from another connection right after always arrives. Each round opens a fresh
    listener, as a process does when its first live-update stream opens."""
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        publisher = NatsEventBus(nats_server, stream)
        await publisher.publish(uploaded(0))  # makes the stream
        missed = []
        for i in range(1, 201):
            listener = NatsEventBus(nats_server, stream)
            subscribed = asyncio.Event()
            feed = listener.listen(subscribed=subscribed.set)
            first = asyncio.ensure_future(anext(feed))
            await subscribed.wait()
            await publisher.publish(uploaded(i))
            try:
                async with asyncio.timeout(3):
                    assert (await first).node_id == f"n{i}"
            except TimeoutError:
                missed.append(i)
            await feed.aclose()
            await listener.close()
        await publisher.close()
        assert missed == []

    asyncio.run(run())
