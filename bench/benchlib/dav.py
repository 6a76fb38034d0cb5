"""Thin WebDAV client on httpx: identical request paths for every server, low per-request overhead."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import xml.etree.ElementTree as ET
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import httpx

from benchlib.measure import Stopwatch

TIMEOUT = httpx.Timeout(600.0, connect=30.0)
PUT_OK = frozenset({200, 201, 204})
MOVE_OK = frozenset({201, 204})
DELETE_OK = frozenset({200, 204})
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getcontentlength/>'
    b"<d:getlastmodified/><d:getetag/></d:prop></d:propfind>"
)
T = TypeVar("T")


def basic_auth(user: str, password: str) -> dict[str, str]:
    """A fixed Authorization header: cheaper than httpx's auth flow on every request."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Dav:
    """Synchronous client bound to one WebDAV root, reusing one keep-alive connection."""

    def __init__(self, root: str, headers: dict[str, str]) -> None:
        self.root = root
        self.headers = headers
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.client = httpx.Client(headers=headers, timeout=TIMEOUT, limits=limits)

    def url(self, path: str) -> str:
        return self.root + quote(path)

    def close(self) -> None:
        self.client.close()

    def mkcol(self, path: str) -> None:
        r = self.client.request("MKCOL", self.url(path))
        if r.status_code != 201:
            raise DavError(f"MKCOL {path}: HTTP {r.status_code}")

    def propfind(self, path: str, depth: str) -> httpx.Response:
        headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
        return self.client.request("PROPFIND", self.url(path), content=PROPFIND_BODY, headers=headers)

    def move(self, src: str, dst: str) -> httpx.Response:
        headers = {"Destination": self.url(dst), "Overwrite": "F"}
        return self.client.request("MOVE", self.url(src), headers=headers)

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(self.url(path))


class DavError(RuntimeError):
    """A server answered wrongly; the figure it would have produced is reported as FAILED."""


@dataclass(frozen=True)
class Job:
    """PUT sends body; GET expects body back byte for byte."""

    method: str
    path: str
    body: bytes


def run_sync(dav: Dav, jobs: Sequence[Job]) -> list[str]:
    """Run jobs one after another on the keep-alive connection; returns failure descriptions."""
    failures: list[str] = []
    for job in jobs:
        if job.method == "PUT":
            r = dav.client.put(dav.url(job.path), content=job.body)
        else:
            r = dav.client.get(dav.url(job.path))
        failures.extend(_check(job, r))
    return failures


def _check(job: Job, r: httpx.Response) -> list[str]:
    if job.method == "PUT":
        return [] if r.status_code in PUT_OK else [f"PUT {job.path}: HTTP {r.status_code}"]
    if r.status_code != 200:
        return [f"GET {job.path}: HTTP {r.status_code}"]
    if r.content != job.body:
        return [f"GET {job.path}: {len(r.content)} bytes differ from the {len(job.body)} sent"]
    return []


async def run_pool(root: str, headers: dict[str, str], jobs: Sequence[Job], conc: int,
                   watch: Stopwatch | None = None) -> list[str]:
    """Run jobs over `conc` keep-alive connections, timing only the transfers if watch is given."""
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(headers=headers, timeout=TIMEOUT, limits=limits) as client:
        # open every connection before the clock starts, so TCP setup is not part of the figure
        await asyncio.gather(*(client.request("OPTIONS", root) for _ in range(conc)))
        if watch:
            watch.start()
        pending = iter(jobs)  # shared by all workers: each job is taken exactly once
        failures: list[str] = []
        await asyncio.gather(*(_worker(client, root, pending, failures) for _ in range(conc)))
        if watch:
            watch.stop()
        return failures


async def _worker(client: httpx.AsyncClient, root: str, pending: Iterator[Job], failures: list[str]) -> None:
    for job in pending:
        url = root + quote(job.path)
        r = await (client.put(url, content=job.body) if job.method == "PUT" else client.get(url))
        failures.extend(_check(job, r))


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when available (it is a project dependency): less client overhead."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def response_names(body: bytes) -> list[str]:
    """Last path segment of every <d:response>'s href in a multistatus body."""
    root = ET.fromstring(body)
    names = []
    for resp in root.iter("{DAV:}response"):
        href = unquote(resp.findtext("{DAV:}href") or "")
        names.append(href.rstrip("/").rsplit("/", 1)[-1])
    return names


def check_listing(r: httpx.Response, folder: str, expected: Sequence[str]) -> None:
    """Depth-1 PROPFIND must list the folder itself plus exactly the expected members."""
    if r.status_code != 207:
        raise DavError(f"PROPFIND {folder}: HTTP {r.status_code}")
    names = response_names(r.content)
    if len(names) != len(expected) + 1:
        raise DavError(f"PROPFIND {folder}: {len(names)} responses, expected {len(expected) + 1}")
    missing = set(expected) - set(names)
    if missing:
        raise DavError(f"PROPFIND {folder}: {len(missing)} members missing, e.g. {sorted(missing)[:3]}")


def random_blobs(n: int, size: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(size) for _ in range(n)]


class Pattern:
    """Deterministic pseudo-random byte stream of a given size, regenerated on demand in 1 MiB chunks.

    Each chunk is a random block from a small pool prefixed with its index, so no two chunks repeat
    and neither side needs the whole payload in memory.
    """

    CHUNK = 1 << 20
    POOL = 8

    def __init__(self, size: int, seed: int = 42) -> None:
        self.size = size
        rnd = random.Random(seed)
        self._pool = [rnd.randbytes(self.CHUNK) for _ in range(self.POOL)]

    def chunks(self) -> Iterator[bytes]:
        full, rest = divmod(self.size, self.CHUNK)
        for i in range(full + (1 if rest else 0)):
            chunk = i.to_bytes(8, "little") + self._pool[i % self.POOL][8:]
            yield chunk if i < full else chunk[:rest]

    def sha1(self) -> str:
        h = hashlib.sha1()
        for chunk in self.chunks():
            h.update(chunk)
        return h.hexdigest()
