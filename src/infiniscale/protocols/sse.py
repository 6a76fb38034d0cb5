"""`GET /ocs/v2.php/apps/notifications/api/v1/notifications/sse`: live updates as server-sent events,
framed as oCIS frames them (`id:`, `data:` JSON, `event:` type, blank line). A comment line every
`keepalive_s` keeps proxies from closing an idle stream (oCIS sends none by default)."""

from __future__ import annotations

import asyncio
import contextlib

import orjson

from infiniscale.core.clientlog import END, ClientLog
from infiniscale.core.model.identity import User
from infiniscale.protocols.http import Request, respond

PATH = "apps/notifications/api/v1/notifications/sse"
HEADERS = [("content-type", "text/event-stream"), ("cache-control", "no-cache"), ("x-accel-buffering", "no")]


def frame(kind: str, data: dict) -> bytes:
    return b"id: \ndata: " + orjson.dumps(data) + b"\nevent: " + kind.encode() + b"\n\n"


async def stream(req: Request, user: User, clientlog: ClientLog, keepalive_s: float = 30.0) -> None:
    last = req.header("last-event-id")
    if last is not None and last.strip() and not last.strip().isdigit():
        await respond(req.send, 400, [("content-type", "text/plain; charset=utf-8")],
                      b"Last-Event-ID must be a number!")
        return
    gone = asyncio.Event()

    async def watch_disconnect() -> None:
        while True:
            message = await req.receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    watcher = asyncio.create_task(watch_disconnect())
    try:
        async with clientlog.connect(user) as queue:
            await req.send({"type": "http.response.start", "status": 200,
                            "headers": [(k.encode(), v.encode()) for k, v in HEADERS]})
            await req.send({"type": "http.response.body", "body": b": connected\n\n", "more_body": True})
            while not gone.is_set():
                waiting = asyncio.create_task(queue.get())
                ended = asyncio.create_task(gone.wait())
                done, _ = await asyncio.wait({waiting, ended}, timeout=keepalive_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                ended.cancel()
                if waiting in done:
                    message = waiting.result()
                    if message is END:  # the user was deleted
                        break
                    body = frame(message.type, message.data)
                else:
                    waiting.cancel()
                    if gone.is_set():
                        break
                    body = b": keepalive\n\n"
                try:
                    await req.send({"type": "http.response.body", "body": body, "more_body": True})
                except OSError:
                    break
    finally:
        watcher.cancel()
        with contextlib.suppress(Exception):
            await req.send({"type": "http.response.body", "body": b""})
