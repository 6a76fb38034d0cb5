"""A consumer group's standing pull request on a real NATS server: one request serves a trickle of
events (nats-py's fetch made two per event), it is renewed when the server ends it, and a request
lost with a restarted server is replaced."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from infiniscale.core.model.events import FileUploaded
from infiniscale.drivers import bus_nats
from infiniscale.drivers.bus_nats import NatsEventBus, subscriptions_in_place
from infiniscale.drivers.nats_import import nats
from infiniscale.drivers.nats_pull import PullFeed


def uploaded(i: int) -> FileUploaded:
    return FileUploaded(executant="u", space_id="s", node_id=f"n{i}", parent_id="p", name=f"f{i}", size=i, new=True)


async def pull_requests_seen(url: str, stream: str, group: str) -> tuple[list[bytes], object]:
    """Every pull request for the group's consumer, as a second client sees it on the wire."""
    spy = await nats.connect(url)
    seen: list[bytes] = []

    async def note(message) -> None:
        seen.append(message.data)

    await spy.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{group}", cb=note)
    await subscriptions_in_place(spy)
    return seen, spy


def test_one_standing_request_serves_a_trickle_of_events(nats_server):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = NatsEventBus(nats_server, stream, groups={"g": None})
        await bus._jetstream()
        requests, spy = await pull_requests_seen(nats_server, stream, "g")
        got: list[int] = []

        async def consume() -> None:
            async for batch in bus.subscribe_batches("g"):
                got.extend(int(e.node_id[1:]) for e in batch)

        task = asyncio.create_task(consume())
        for i in range(20):  # one at a time: each event finds the group idle
            await bus.publish(uploaded(i))
            await asyncio.sleep(0.02)
        async with asyncio.timeout(10):
            while len(got) < 20:
                await asyncio.sleep(0.02)
        task.cancel()
        assert got == list(range(20))
        assert 1 <= len(requests) <= 2, requests  # not one or two per event
        await spy.close()
        await bus.close()

    asyncio.run(run())


def test_a_request_the_server_ended_is_renewed_at_once(nats_server):
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = NatsEventBus(nats_server, stream, groups={"g": None})
        await bus._jetstream()
        feed = PullFeed(bus._nc, stream, "g", batch=16, expires_s=0.3)
        await feed.start()
        waiting = asyncio.create_task(feed.next_batch(16))
        await asyncio.sleep(2.0)  # the server ended six requests meanwhile (408)
        published = time.monotonic()
        await bus.publish(uploaded(1))
        messages = await asyncio.wait_for(waiting, 5)
        # renewed when the server said so, not only once the lost-request grace (1 s) ran out
        assert time.monotonic() - published < 0.5
        assert [m.data for m in messages] and b"n1" in messages[0].data
        await feed.stop()
        await bus.close()

    asyncio.run(run())


@pytest.mark.parametrize("crash", [False, True], ids=["shutdown", "crash"])
def test_a_request_lost_with_a_restarted_server_is_replaced(restartable_nats, monkeypatch, crash: bool):
    """A server shutting down ends the request (409); one that crashed says nothing, and the
    request is replaced once its time is up."""
    nats = restartable_nats
    monkeypatch.setattr(bus_nats, "PULL_EXPIRES_S", 0.5)
    stream = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        bus = NatsEventBus(nats.url, stream, groups={"g": None})
        got: list[str] = []

        async def consume() -> None:
            async for batch in bus.subscribe_batches("g"):
                got.extend(e.node_id for e in batch)

        task = asyncio.create_task(consume())
        await bus.publish(uploaded(1))
        async with asyncio.timeout(10):
            while not got:
                await asyncio.sleep(0.02)
        nats.stop(crash)  # the open pull request goes with the server
        nats.start()
        async with asyncio.timeout(30):
            while True:  # once the client has reconnected and JetStream is back
                try:
                    await bus.publish(uploaded(2))
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            while "n2" not in got:
                await asyncio.sleep(0.05)
        task.cancel()
        assert got[0] == "n1" and set(got) == {"n1", "n2"}  # a publication that timed out may have landed too
        await bus.close()

    asyncio.run(run())
