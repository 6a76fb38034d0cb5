"""Live updates subscribe to the events only while somebody follows them: a process without open
streams has no events sent to it, a stream misses nothing published once it is open, and the
subscription ends some time after the last stream closed (and comes back with the next one)."""

from __future__ import annotations

import asyncio
import json
import uuid

from infiniscale.core.clientlog import END, ClientLog, Message
from infiniscale.core.model.events import UserNotified
from infiniscale.core.model.identity import User
from infiniscale.drivers.bus_nats import NatsEventBus

EINSTEIN = User(id="u-einstein", username="einstein", display_name="Albert Einstein")
LINGER_S = 0.5


def note(subject: str) -> UserNotified:
    return UserNotified(executant="u-marie", space_id="", user_ids=(EINSTEIN.id,),
                        notification=json.dumps({"subject": subject}))


def received(bus: NatsEventBus) -> int:
    """Messages the NATS server sent to this bus's connection (none before it connected)."""
    return bus._nc.stats["in_msgs"] if bus._nc is not None else 0


async def next_subject(stream: asyncio.Queue) -> str:
    message = await asyncio.wait_for(stream.get(), 5)
    return message.data["subject"]


def test_events_reach_a_process_only_while_it_has_streams(nats_server):
    stream_name = f"T{uuid.uuid4().hex}"

    async def run() -> None:
        publisher, listener = NatsEventBus(nats_server, stream_name), NatsEventBus(nats_server, stream_name)
        clientlog = ClientLog(None, None, linger_s=LINGER_S)  # type: ignore[arg-type] - notifications need no spaces
        task = asyncio.create_task(clientlog.run(listener))
        try:
            for i in range(5):
                await publisher.publish(note(f"unheard {i}"))
            await asyncio.sleep(0.3)
            assert received(listener) == 0  # nobody follows: nothing is sent here

            async with clientlog.connect(EINSTEIN) as stream:
                await publisher.publish(note("first"))  # published right after the stream opened
                assert await next_subject(stream) == "first"
            await publisher.publish(note("within the linger"))
            await asyncio.sleep(LINGER_S + 0.1)
            await publisher.publish(note("after the linger"))  # tells the listener it is alone
            await asyncio.sleep(0.3)
            before = received(listener)
            for i in range(5):
                await publisher.publish(note(f"unheard again {i}"))
            await asyncio.sleep(0.3)
            assert received(listener) == before  # unsubscribed

            async with clientlog.connect(EINSTEIN) as stream:  # and back with the next stream
                await publisher.publish(note("second"))
                assert await next_subject(stream) == "second"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await publisher.close()
            await listener.close()

    asyncio.run(run())


def test_a_stopping_server_ends_every_stream_even_one_nobody_reads():
    async def run() -> None:
        clientlog = ClientLog(None, None)  # type: ignore[arg-type] - streams alone need no spaces
        clientlog._live = asyncio.get_running_loop().create_future()
        clientlog._live.set_result(None)  # as if subscribed: no bus in this test
        async with clientlog.connect(EINSTEIN) as read, clientlog.connect(EINSTEIN) as unread:
            while not unread.full():
                unread.put_nowait(Message("item-added", {}))
            clientlog.end_all()
            assert await asyncio.wait_for(read.get(), 1) is END
            drained = [unread.get_nowait() for _ in range(unread.qsize())]
            assert drained[-1] is END and len(drained) == unread.maxsize
            clientlog.end_all()  # a second stop adds nothing
            assert read.empty()

    asyncio.run(run())
