"""A minimal request/response layer over plain ASGI, for the hot WebDAV paths."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from infiniscale.core.model.identity import User

Headers = list[tuple[bytes, bytes]]


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    pass


class Request:
    __slots__ = ("_consumed", "headers", "method", "raw_path", "receive", "scope", "send", "user")

    def __init__(self, scope: dict, receive: Any, send: Any) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"].upper()
        self.raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        self.headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[name] = f"{self.headers[name]}, {text}" if name in self.headers else text
        self.user: User | None = scope.get("user")
        self._consumed = False

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def query_string(self) -> str:
        return self.scope.get("query_string", b"").decode("latin-1")

    async def stream(self) -> AsyncIterator[bytes]:
        """The request body as it arrives."""
        if self._consumed:
            return
        self._consumed = True
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def body(self, limit: int) -> bytes:
        declared = self.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge()
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            parts.append(chunk)
        return b"".join(parts)

    def has_body(self) -> bool:
        length = self.headers.get("content-length")
        if length is not None:
            return length.strip() not in ("", "0")
        return "transfer-encoding" in self.headers

    async def drain(self, limit: int = 8 << 20) -> None:
        """Reads and drops a small unread body, so the connection stays usable and the client, still
        sending, reads the answer instead of a reset (an oversized XML body of a few MiB). A large
        one is left unread: the server closes the connection instead of receiving data nobody wants."""
        if self._consumed:
            return
        declared = self.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > limit:
            return
        try:
            async for _ in self.stream():
                pass
        except ClientDisconnected:
            pass


def encode_headers(headers: Iterable[tuple[str, str]]) -> Headers:
    return [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers]


async def respond(send: Any, status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                  head_only: bool = False) -> None:
    hdrs = encode_headers(headers)
    if not any(k == b"content-length" for k, _ in hdrs):
        hdrs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": b"" if head_only else body})


async def respond_stream(send: Any, status: int, headers: Iterable[tuple[str, str]],
                         chunks: AsyncIterator[bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": encode_headers(headers)})
    held = b""  # each chunk waits for the next, so the last one ends the body: one send fewer
    async for chunk in chunks:
        if chunk:
            if held:
                await send({"type": "http.response.body", "body": held, "more_body": True})
            held = chunk
    await send({"type": "http.response.body", "body": held})
