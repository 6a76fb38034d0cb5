"""Minimal WebDAV client on the stdlib's http.client: identical for every server, low overhead.

httpx was measured first and capped the small-file figures (about 1 700 req/s sequential, 600-1 100 req/s
with 16 connections, against Apache on this 2-core box), far below what the servers can do; http.client
with one thread per connection reached 3 500 and 6 500 req/s, so the client is rarely the bottleneck.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from benchlib.measure import Stopwatch

TIMEOUT = 600.0
PUT_OK = frozenset({200, 201, 204})
MOVE_OK = frozenset({201, 204})
DELETE_OK = frozenset({200, 204})
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getcontentlength/>'
    b"<d:getlastmodified/><d:getetag/></d:prop></d:propfind>"
)
# the server dropped an idle keep-alive connection: safe to resend once on a fresh one
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class DavError(RuntimeError):
    """A server answered wrongly; the figure it would have produced is reported as FAILED."""


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Conn:
    """One HTTP/1.1 keep-alive connection to a WebDAV root; paths are relative to that root."""

    def __init__(self, root: str, headers: dict[str, str]) -> None:
        u = urlsplit(root)
        self.root, self.prefix, self.headers = root, u.path, headers
        self.http = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=TIMEOUT)

    def url(self, path: str) -> str:
        return self.root + quote(path)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, body: bytes | Iterable[bytes] | None = None,
                headers: dict[str, str] | None = None) -> Response:
        return self.raw(method, self.prefix + quote(path), body, headers or {})

    def raw(self, method: str, path: str, body: bytes | Iterable[bytes] | None,
            headers: dict[str, str]) -> Response:
        """A request to an absolute URL path (outside the WebDAV root too, e.g. a TUS upload URL)."""
        try:
            return self._send(method, path, body, headers)
        except STALE:
            if not isinstance(body, bytes | None):
                raise  # a generator is half consumed: cannot resend
            self.http.close()
            return self._send(method, path, body, headers)

    def _send(self, method: str, path: str, body: bytes | Iterable[bytes] | None,
              headers: dict[str, str]) -> Response:
        self.http.request(method, path, body=body, headers=self.headers | headers)
        r = self.http.getresponse()
        return Response(r.status, r.headers, r.read())  # read fully, or keep-alive breaks

    def ping(self) -> None:
        """Make sure the connection is open and alive before a timed request."""
        self.request("OPTIONS", "")

    def get_into(self, path: str, sink: Callable[[memoryview], None], bufsize: int = 1 << 20
                 ) -> tuple[int, int]:
        """Stream a GET body through sink in buffer-sized pieces; returns (status, bytes received)."""
        self.http.request("GET", self.prefix + quote(path), headers=self.headers)
        r = self.http.getresponse()
        if r.status != 200:
            r.read()
            return r.status, 0
        buf = memoryview(bytearray(bufsize))
        total = 0
        while n := r.readinto(buf):
            sink(buf[:n])
            total += n
        return r.status, total

    def mkcol(self, path: str) -> None:
        if (r := self.request("MKCOL", path)).status != 201:
            raise DavError(f"MKCOL {path}: HTTP {r.status}")

    def propfind(self, path: str, depth: str) -> Response:
        headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
        return self.request("PROPFIND", path, PROPFIND_BODY, headers)

    def move(self, src: str, dst: str) -> Response:
        return self.request("MOVE", src, headers={"Destination": self.url(dst), "Overwrite": "F"})

    def delete(self, path: str) -> Response:
        return self.request("DELETE", path)


@dataclass(frozen=True)
class Job:
    """PUT sends body; GET expects body back byte for byte."""

    method: str
    path: str
    body: bytes


def check_job(job: Job, r: Response) -> str | None:
    """What is wrong with the answer to job, or None."""
    if job.method == "PUT":
        return None if r.status in PUT_OK else f"PUT {job.path}: HTTP {r.status}"
    if r.status != 200:
        return f"GET {job.path}: HTTP {r.status}"
    if r.body != job.body:
        return f"GET {job.path}: {len(r.body)} bytes differ from the {len(job.body)} sent"
    return None


def run_jobs(root: str, headers: dict[str, str], jobs: Sequence[Job], conc: int,
             watch: Stopwatch | None = None) -> list[str]:
    """Run jobs over `conc` keep-alive connections, one thread each; returns failure descriptions.

    Connections are opened (and the watch started) before the first job, so TCP setup is not timed.
    """
    conns = [Conn(root, headers) for _ in range(conc)]
    for c in conns:
        c.ping()
    pending = iter(jobs)  # shared: each job is taken exactly once
    lock = threading.Lock()
    failures: list[str] = []
    gate = threading.Barrier(conc + 1)

    def work(conn: Conn) -> None:
        gate.wait()
        while True:
            with lock:
                job = next(pending, None)
            if job is None:
                return
            body = job.body if job.method == "PUT" else None
            try:
                err = check_job(job, conn.request(job.method, job.path, body))
            except Exception as e:  # any exception: this job failed, the others go on
                err = f"{job.method} {job.path}: {e!r}"
            if err:
                failures.append(err)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in conns]
    for th in threads:
        th.start()
    if watch:
        watch.start()
    gate.wait()
    for th in threads:
        th.join()
    if watch:
        watch.stop()
    for c in conns:
        c.close()
    return failures


def response_names(body: bytes) -> list[str]:
    """Last path segment of every <d:response>'s href in a multistatus body."""
    root = ET.fromstring(body)
    names = []
    for resp in root.iter("{DAV:}response"):
        href = unquote(resp.findtext("{DAV:}href") or "")
        names.append(href.rstrip("/").rsplit("/", 1)[-1])
    return names


def check_listing(r: Response, folder: str, expected: Sequence[str]) -> None:
    """Depth-1 PROPFIND must list the folder itself plus exactly the expected members."""
    if r.status != 207:
        raise DavError(f"PROPFIND {folder}: HTTP {r.status}")
    names = response_names(r.body)
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
