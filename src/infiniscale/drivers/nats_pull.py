"""A durable JetStream consumer's messages over one standing pull request.

nats-py's `fetch` makes two requests to the server for every batch it returns (a `no_wait` probe,
then a waiting pull), and under a trickle of events every batch is one event: each consumer group
then cost the server and the client two request round trips per event, besides the delivery and
the acknowledgement. Here one pull request asks for up to `batch` messages and stays open for
`expires_s`; messages arrive on a private inbox as they are published, and a new request goes out
only when the server has delivered the whole batch or ended the request (408 when it expired).
A request lost with the connection (a crashed server says nothing) is replaced once `expires_s`
and a grace second have passed without word from it.

The JetStream pull protocol: a request on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` with
`{"batch": n, "expires": ns}` and the inbox as reply subject; messages come to the inbox with their
acknowledgement subject as reply; a message with a `Status` header ends the request (404, 408,
409) or is a heartbeat (100); any other status (503: no consumer to answer) is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import orjson

REQUEST_OVER = frozenset({"404", "408"})  # no messages (for no_wait), the request expired
REQUEST_CUT = "409"  # ended early: server shutdown, leadership change, consumer deleted, ...
RETRY_S = 0.5
HEARTBEAT = "100"
GRACE_S = 1.0  # beyond `expires_s`: the request is taken as lost (the connection dropped meanwhile)


class PullError(RuntimeError):
    """The server answered the pull request with a status we cannot wait out (503: no consumer)."""


class PullFeed:
    def __init__(self, nc, stream: str, durable: str, batch: int = 256, expires_s: float = 5.0) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._batch = batch
        self._expires_s = expires_s
        self._inbox = ""
        self._sub = None
        self._arrived: deque = deque()
        self._waiter: asyncio.Future[None] | None = None  # next_batch waiting for a message
        self._owed = 0  # messages the open request may still deliver; 0: none is open
        self._request_ends = 0.0  # loop time after which the open request is taken as lost
        self._renew_at = 0.0  # no new request before this loop time

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._take)

    async def stop(self) -> None:
        """Ends the inbox subscription; the connection may be closed already (a drained bus)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _take(self, message) -> None:
        self._arrived.append(message)
        _wake(self._waiter)

    async def next_batch(self, max_batch: int, linger_s: float = 0.0) -> list:
        """Waits for at least one message, then takes what has arrived (and, with `linger_s`, what
        arrives that long after the first), up to `max_batch`."""
        loop = asyncio.get_running_loop()
        batch: list = []
        until = None
        while len(batch) < max_batch:
            self._collect(batch, max_batch, loop)
            now = loop.time()
            if batch and until is None:
                until = now + linger_s
            if len(batch) >= max_batch or (until is not None and now >= until):
                break
            if now > self._request_ends:
                self._owed = 0  # lost with the connection: the server will not end it
            # (a message of an earlier request taken as lost can make the count go below zero)
            if self._owed <= 0 and now >= self._renew_at:
                await self._request(loop)
            wake_at = self._request_ends if self._owed > 0 else self._renew_at
            if until is not None:
                wake_at = min(wake_at, until)
            if self._arrived:
                continue
            # a bare future and a timer: wait_for made a task and a timeout per message
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(wake_at, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return batch

    def _collect(self, batch: list, max_batch: int, loop: asyncio.AbstractEventLoop) -> None:
        while self._arrived and len(batch) < max_batch:
            message = self._arrived.popleft()
            status = message.headers.get("Status") if message.headers else None
            if status is None:
                self._owed -= 1
                batch.append(message)
            elif status in REQUEST_OVER:
                self._owed = 0
            elif status == REQUEST_CUT:  # the server is going away, the consumer changed, ...
                self._owed = 0
                self._renew_at = loop.time() + RETRY_S  # the next request may well meet the same
            elif status != HEARTBEAT:
                self._owed = 0
                raise PullError(f"pull request refused: {status} {message.headers.get('Description', '')}")

    async def _request(self, loop: asyncio.AbstractEventLoop) -> None:
        self._owed = self._batch
        self._request_ends = loop.time() + self._expires_s + GRACE_S
        await self._nc.publish(self._subject, orjson.dumps({"batch": self._batch,
                                                            "expires": int(self._expires_s * 1e9)}),
                               reply=self._inbox)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
