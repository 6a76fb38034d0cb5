"""Blobs as objects in an S3 bucket (oCIS's s3ng layout: the tree stays on the filesystem, content
goes to S3 under `<space id>/<blob id>`).

aiobotocore is asynchronous while the tree code runs in worker threads, so each process runs one
event loop of its own in a background thread for all S3 traffic. Worker threads block on its
futures; the server's event loop awaits them. Large content goes up as a multipart upload with
several parts in flight at once, streamed as the client sends it; downloads stream ranged GETs.

A crash during a multipart upload leaves an incomplete upload in the bucket, invisible to readers;
`abort_stale_uploads` (run at start and by `storage check --repair`) aborts them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from infiniscale.core.model.ids import new_id
from infiniscale.drivers.decomposed.blobs import BlobSinkBase
from infiniscale.drivers.decomposed.layout import SpaceLayout, check_id

T = TypeVar("T")
log = logging.getLogger("infiniscale.s3")
MIN_PART = 5 << 20  # S3's smallest allowed part (but the last)
READ_BLOCK = 1 << 20
COPY_LIMIT = 5 << 30  # CopyObject's limit; larger objects are copied in parts
COPY_PART = 1 << 30


@dataclass(frozen=True)
class S3Config:
    endpoint: str
    region: str
    access_key: str
    secret_key: str
    bucket: str
    part_size: int = 16 << 20
    parallel_parts: int = 4
    insecure: bool = False
    prefix: str = ""  # lets several installations or providers share one bucket


class _Loop:
    """One event loop in a daemon thread, made on first use in each process (a forked worker must
    not share its parent's loop or connections)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    loop = asyncio.new_event_loop()
                    threading.Thread(target=loop.run_forever, name="s3", daemon=True).start()
                    self.loop, self._pid = loop, os.getpid()
        assert self.loop is not None
        return self.loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.get())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """From a worker thread: blocks until the coroutine is done on the S3 loop."""
        return self.submit(coro).result()

    def wait(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """From another event loop: an awaitable of the coroutine's result."""
        return asyncio.wrap_future(self.submit(coro))


class S3Blobs:
    def __init__(self, config: S3Config, layout: Callable[[str], SpaceLayout]) -> None:
        self.config = config
        self.layout = layout
        self.loop = _Loop()
        self._client: Any = None
        self._client_pid = 0
        self._client_lock: asyncio.Lock | None = None

    # ---------------------------------------------------------------- the client

    async def client(self) -> Any:
        """The process's S3 client (on the S3 loop); the bucket is made if it does not exist."""
        if self._client is not None and self._client_pid == os.getpid():
            return self._client
        if self._client_lock is None or self._client_pid != os.getpid():
            self._client_lock, self._client, self._client_pid = asyncio.Lock(), None, os.getpid()
        async with self._client_lock:
            if self._client is None:
                # imported here: botocore costs tens of MiB, only servers that use S3 pay it
                from aiobotocore.session import get_session
                from botocore.config import Config

                config = Config(request_checksum_calculation="when_required",
                                response_checksum_validation="when_required",
                                max_pool_connections=max(16, 4 * self.config.parallel_parts),
                                s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"})
                client = await get_session().create_client(
                    "s3", endpoint_url=self.config.endpoint or None, region_name=self.config.region,
                    aws_access_key_id=self.config.access_key, aws_secret_access_key=self.config.secret_key,
                    config=config, verify=not self.config.insecure).__aenter__()
                await self._ensure_bucket(client)
                self._client = client
        return self._client

    def close(self) -> None:
        """Closes the connections and stops the S3 loop of this process."""
        if self.loop.loop is None or self._client_pid != os.getpid():
            return
        if self._client is not None:
            with contextlib.suppress(Exception):
                self.loop.run(self._client.__aexit__(None, None, None))
            self._client = None
        self.loop.loop.call_soon_threadsafe(self.loop.loop.stop)

    async def _ensure_bucket(self, client: Any) -> None:
        from botocore.exceptions import ClientError

        try:
            await client.head_bucket(Bucket=self.config.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            with contextlib.suppress(ClientError):  # somebody else may make it at the same moment
                await client.create_bucket(Bucket=self.config.bucket)

    def key(self, space_id: str, blob_id: str) -> str:
        return f"{self.config.prefix}{check_id(space_id)}/{check_id(blob_id)}"

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        client = await self.client()
        return await getattr(client, operation)(Bucket=self.config.bucket, **kwargs)

    # ---------------------------------------------------------------- writing

    def sink(self, space_id: str) -> S3Sink:
        return S3Sink(self, space_id)

    def store_file(self, space_id: str, path: str) -> str:
        """Uploads the local file (in parallel parts when large), then removes it."""
        blob_id = new_id()
        size = os.path.getsize(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.loop.run(self._upload_file(self.key(space_id, blob_id), fd, size))
        finally:
            os.close(fd)
        os.unlink(path)
        return blob_id

    async def _upload_file(self, key: str, fd: int, size: int) -> None:
        loop = asyncio.get_running_loop()
        part_size = max(MIN_PART, self.config.part_size)
        if size <= part_size:
            data = await loop.run_in_executor(None, os.pread, fd, size, 0)
            await self._call("put_object", Key=key, Body=data)
            return
        gate = asyncio.Semaphore(self.config.parallel_parts)

        async def part(upload_id: str, number: int, offset: int) -> dict:
            async with gate:
                data = await loop.run_in_executor(None, os.pread, fd, min(part_size, size - offset), offset)
                reply = await self._call("upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=data)
                return {"PartNumber": number, "ETag": reply["ETag"]}

        async with self._multipart(key) as upload:
            upload.parts = await asyncio.gather(*(part(upload.id, i + 1, offset)
                                                  for i, offset in enumerate(range(0, size, part_size))))

    @contextlib.asynccontextmanager
    async def _multipart(self, key: str) -> AsyncIterator[_Multipart]:
        """A multipart upload: completed with the parts the body collects, aborted if it fails."""
        upload = _Multipart((await self._call("create_multipart_upload", Key=key))["UploadId"])
        try:
            yield upload
            await self._call("complete_multipart_upload", Key=key, UploadId=upload.id,
                             MultipartUpload={"Parts": upload.parts})
        except BaseException:
            with contextlib.suppress(Exception):
                await self._call("abort_multipart_upload", Key=key, UploadId=upload.id)
            raise

    # ---------------------------------------------------------------- reading

    def local_path(self, space_id: str, blob_id: str) -> str | None:
        return None

    def open(self, space_id: str, blob_id: str, size: int) -> S3Source:
        """Checks that the object is there (an overwrite may have removed it since the node was
        read): a GET must fail before its headers go out, not halfway through the body."""
        key = self.key(space_id, blob_id)
        try:
            head = self.loop.run(self._call("head_object", Key=key))
        except Exception as exc:
            if _is_missing(exc):
                raise FileNotFoundError(key) from None
            raise
        return S3Source(self, key, head["ContentLength"])

    # ---------------------------------------------------------------- other changes

    def copy(self, space_id: str, blob_id: str, size: int) -> str:
        """A copy made by the S3 server itself: no bytes pass through this process."""
        copy_id = new_id()
        self.loop.run(self._copy(self.key(space_id, blob_id), self.key(space_id, copy_id), size))
        return copy_id

    async def _copy(self, source: str, target: str, size: int) -> None:
        origin = {"Bucket": self.config.bucket, "Key": source}
        if size <= COPY_LIMIT:
            await self._call("copy_object", Key=target, CopySource=origin)
            return
        async with self._multipart(target) as upload:
            for number, offset in enumerate(range(0, size, COPY_PART), start=1):
                reply = await self._call("upload_part_copy", Key=target, UploadId=upload.id, PartNumber=number,
                                         CopySource=origin,
                                         CopySourceRange=f"bytes={offset}-{min(size, offset + COPY_PART) - 1}")
                upload.parts.append({"PartNumber": number, "ETag": reply["CopyPartResult"]["ETag"]})

    def delete(self, space_id: str, blob_id: str) -> None:
        try:
            self.loop.run(self._call("delete_object", Key=self.key(space_id, blob_id)))
        except Exception:  # an unreferenced object is garbage for `storage check`, not an error
            log.warning("could not delete blob %s/%s", space_id, blob_id, exc_info=True)

    def sizes(self, space_id: str) -> dict[str, int]:
        return self.loop.run(self._sizes(f"{self.config.prefix}{check_id(space_id)}/"))

    async def _sizes(self, prefix: str) -> dict[str, int]:
        client = await self.client()
        found = {}
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.config.bucket,
                                                                           Prefix=prefix):
            for item in page.get("Contents", ()):
                found[item["Key"][len(prefix):]] = item["Size"]
        return found

    def purge_space(self, space_id: str) -> None:
        self.loop.run(self._purge(f"{self.config.prefix}{check_id(space_id)}/"))

    async def _purge(self, prefix: str) -> None:
        keys = list(await self._sizes(prefix))
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": prefix + name} for name in keys[start:start + 1000]]
            await self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})

    def abort_stale_uploads(self, older_than_s: float) -> int:
        """Aborts multipart uploads begun more than `older_than_s` ago (0: all of them), which
        only a crash leaves behind. Returns how many."""
        return self.loop.run(self._abort_stale(older_than_s))

    async def _abort_stale(self, older_than_s: float) -> int:
        client = await self.client()
        cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=older_than_s)
        aborted = 0
        async for page in client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.config.bucket, Prefix=self.config.prefix):
            for upload in page.get("Uploads", ()):
                if older_than_s and upload["Initiated"] > cutoff:
                    continue
                with contextlib.suppress(Exception):
                    await self._call("abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"])
                    aborted += 1
        return aborted


@dataclass
class _Multipart:
    id: str
    parts: list[dict] = field(default_factory=list)


def _is_missing(exc: BaseException) -> bool:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3Sink(BlobSinkBase):
    """Streams new content to S3 while it arrives: a small body becomes one PUT, a large one a
    multipart upload whose parts go up as soon as they are full, a few at a time."""

    def __init__(self, store: S3Blobs, space_id: str) -> None:
        super().__init__(new_id())
        self.store = store
        self.key = store.key(space_id, self.blob_id)
        self.part_size = max(MIN_PART, store.config.part_size)
        self.pending = bytearray()
        self.upload_id = ""
        self.parts: list[dict] = []
        self.in_flight: deque[concurrent.futures.Future] = deque()
        self.stored = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.pending += data
        if len(self.pending) >= self.part_size:
            part, self.pending = self.pending, bytearray()
            self._send(part)  # handed over whole: no copy

    def _send(self, part: bytes | bytearray) -> None:
        store = self.store
        if not self.upload_id:
            self.upload_id = store.loop.run(store._call("create_multipart_upload", Key=self.key))["UploadId"]
        while len(self.in_flight) >= store.config.parallel_parts:
            self.parts.append(self.in_flight.popleft().result())
        number = len(self.parts) + len(self.in_flight) + 1
        self.in_flight.append(store.loop.submit(self._upload_part(number, part)))

    async def _upload_part(self, number: int, data: bytes | bytearray) -> dict:
        reply = await self.store._call("upload_part", Key=self.key, UploadId=self.upload_id, PartNumber=number,
                                       Body=data)
        return {"PartNumber": number, "ETag": reply["ETag"]}

    def finish(self) -> None:
        store = self.store
        if not self.upload_id:
            store.loop.run(store._call("put_object", Key=self.key, Body=bytes(self.pending)))
        else:
            if self.pending:
                self._send(bytes(self.pending))
            while self.in_flight:
                self.parts.append(self.in_flight.popleft().result())
            store.loop.run(store._call("complete_multipart_upload", Key=self.key, UploadId=self.upload_id,
                                       MultipartUpload={"Parts": self.parts}))
        self.pending = bytearray()
        self.stored = True

    def discard(self) -> None:
        if self.committed:
            return
        store = self.store
        for future in self.in_flight:
            with contextlib.suppress(Exception):
                future.result()
        self.in_flight.clear()
        self.pending = bytearray()
        with contextlib.suppress(Exception):
            if self.stored:
                store.loop.run(store._call("delete_object", Key=self.key))
            elif self.upload_id:
                store.loop.run(store._call("abort_multipart_upload", Key=self.key, UploadId=self.upload_id))


class S3Source:
    def __init__(self, store: S3Blobs, key: str, size: int) -> None:
        self.store = store
        self.key = key
        self.size = size

    async def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        if end < start:
            return
        loop = self.store.loop
        reply = await loop.wait(self.store._call("get_object", Key=self.key, Range=f"bytes={start}-{end}"))
        body = reply["Body"]
        try:
            remaining = end - start + 1
            while remaining > 0:
                block = await loop.wait(_read_block(body, min(READ_BLOCK, remaining)))
                if not block:
                    raise OSError(f"the S3 object {self.key} ended early")
                remaining -= len(block)
                yield block
        finally:
            loop.get().call_soon_threadsafe(body.close)

    def close(self) -> None:
        """Nothing to close: each stream closes its own response."""


async def _read_block(body: Any, amount: int) -> bytes:
    """Up to `amount` bytes in one hop between the loops (the response arrives in small pieces)."""
    pieces, got = [], 0
    while got < amount:
        piece = await body.read(amount - got)
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)
