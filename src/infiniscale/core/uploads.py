"""Uploads that span requests: TUS (resumable), chunking NG (a folder of chunks, then MOVE) and
legacy chunking v1 (`name-chunking-<id>-<n>-<i>`). A session is a record plus bytes in the upload
store; any worker process can continue it, and it survives a restart. Bytes in flight are not part
of any space until the upload is finished, and unfinished sessions expire.
It knows nothing of HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial

from infiniscale.core.checksums import ChunkHasher, MultiHasher
from infiniscale.core.files import Chain, FileService, ancestor_ids, verify_checksum, write_all, write_parts
from infiniscale.core.model import events
from infiniscale.core.model.errors import (
    AlreadyExists,
    ChecksumMismatch,
    Conflict,
    InvalidArgument,
    NotFound,
    PreconditionFailed,
    StorageError,
)
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo, etag_matches
from infiniscale.core.ports.storage import Precondition
from infiniscale.core.ports.uploads import UploadStore
from infiniscale.core.writeback import STEP, WritebackPacer

log = logging.getLogger("infiniscale.uploads")
BUFFER = 1 << 20
COPY_BLOCK = 4 << 20
CHUNK_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
# chunk and session ids derived from what the client names them: stable across requests and workers
_NAMESPACE = uuid.UUID("5b1f8f3e-4c55-4a8e-9a55-6f0c1c7e2d11")


@dataclass
class UploadSession:
    id: str
    kind: str  # "tus" | "ng" | "v1"
    user_id: str
    expires_ns: int
    space_id: str = ""
    parent_id: str = ""
    name: str = ""
    length: int | None = None
    mtime_ns: int | None = None
    checksum: tuple[str, str] | None = None  # the whole file's, as the client announced it
    if_match: str | None = None
    blob_id: str = ""
    created_ns: int = field(default_factory=time.time_ns)
    offset: int = 0  # not stored: the size of the data written so far

    @classmethod
    def from_record(cls, record: dict) -> UploadSession:
        fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        if fields.get("checksum") is not None:
            fields["checksum"] = tuple(fields["checksum"])
        return cls(**fields)

    def to_record(self) -> dict:
        record = asdict(self)
        record.pop("offset")
        return record

    @property
    def expired(self) -> bool:
        return time.time_ns() > self.expires_ns


def _sort_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


class UploadService:
    def __init__(self, files: FileService, store: UploadStore, expiration_s: int) -> None:
        self.files = files
        self.store = store
        self.expiration_ns = expiration_s * 1_000_000_000
        # whole-file hash state of TUS uploads this process is receiving: (offset, hasher)
        self._hashers: OrderedDict[str, tuple[int, HashLane]] = OrderedDict()

    async def _run(self, fn: Callable, *args):
        return await self.files._run(fn, *args)

    def _new_expiry(self) -> int:
        return time.time_ns() + self.expiration_ns

    # ------------------------------------------------------------------ TUS

    async def create(self, user: User, parent_chain: Chain, name: str, length: int, *,
                     mtime_ns: int | None = None, expected: tuple[str, str] | None = None,
                     if_match: str | None = None, existing: Chain | None = None) -> UploadSession:
        """Opens a TUS upload of `length` bytes into `parent/name`. Fails early on what would make
        the final commit fail: a missing parent, a lock, a folder in the way, a stale If-Match."""
        name = self.files.name(name)
        parent = parent_chain[-1]
        if not parent.is_folder:
            raise Conflict("the parent is not a folder")
        if length < 0:
            raise InvalidArgument("invalid upload length")
        if existing is not None and existing[-1].is_folder:
            raise Conflict("a folder exists with this name")
        await self.files.require_write(user, existing or parent_chain, frozenset(),
                                       length - (existing[-1].size if existing else 0))
        if if_match is not None:
            _require_etag(if_match, existing[-1] if existing else None)
        session = UploadSession(id=str(uuid.uuid4()), kind="tus", user_id=user.id, expires_ns=self._new_expiry(),
                                space_id=parent.space_id, parent_id=parent.id, name=name, length=length,
                                mtime_ns=mtime_ns, checksum=expected, if_match=if_match,
                                blob_id=str(uuid.uuid4()))

        def create() -> None:
            self.store.create_data(session.to_record())
            self.store.save(session.to_record())

        await self._run(create)
        return session

    async def get(self, session_id: str, kind: str = "tus") -> UploadSession:
        """A live session with its current offset; NotFound for unknown, finished or expired ones."""
        try:
            record = await self._run(self.store.load, session_id)
        except InvalidArgument:
            raise NotFound("upload not found") from None
        if record is None or record.get("kind") != kind:
            raise NotFound("upload not found")
        session = UploadSession.from_record(record)
        if session.expired:
            raise NotFound("upload expired")
        session.offset = await self._run(self.store.offset, record)
        return session

    async def write(self, session_id: str, offset: int, body: AsyncIterator[bytes],
                    chunk_checksum: tuple[str, bytes] | None = None) -> tuple[UploadSession, NodeInfo | None, bool]:
        """Appends `body` at `offset` (which must be the current one). `chunk_checksum` (algorithm,
        raw digest) covers this request's bytes only: on mismatch they are dropped again. Finishes
        the upload when the last byte arrives; returns the session, and the node once finished."""
        session = await self.get(session_id)
        with self.store.locked(session.id):
            session = await self.get(session_id)  # fresh, now that we hold it
            if offset != session.offset:
                raise Conflict(f"the upload offset is {session.offset}, not {offset}")
            assert session.length is not None
            path = self.store.data_path(session.to_record())
            lane = self._take_hasher(session.id, offset)
            chunk = ChunkHasher(chunk_checksum[0]) if chunk_checksum else None
            try:
                fd = os.open(path, os.O_WRONLY)
            except FileNotFoundError:
                # a crash after the content became a file, before the record went: nothing to resume
                await self._run(self.store.remove, session.to_record())
                raise NotFound("upload not found") from None
            try:
                try:
                    written = await _stream_into(fd, offset, body, session.length - offset, lane, chunk,
                                                 self.files._run)
                except InvalidArgument:
                    await self._run(os.ftruncate, fd, offset)
                    raise
                if chunk is not None and chunk_checksum and chunk.digest() != chunk_checksum[1]:
                    await self._run(os.ftruncate, fd, offset)
                    raise ChecksumMismatch("the checksum of the uploaded chunk does not match")
                # no fsync per request: the offset is the file's size, which never claims bytes that
                # are not there; the content is made durable once, when the upload is finished
            finally:
                os.close(fd)
            session.offset = offset + written
            if lane is not None:
                self._keep_hasher(session.id, session.offset, lane)
            if session.offset < session.length:
                session.expires_ns = self._new_expiry()
                await self._run(self.store.touch, session.to_record())
                return session, None, False
            node, created = await self._finish(session)
        return session, node, created

    async def finish_empty(self, session: UploadSession) -> tuple[NodeInfo, bool]:
        """A zero-length upload is complete the moment it is created."""
        with self.store.locked(session.id):
            return await self._finish(session)

    async def terminate(self, session_id: str) -> None:
        session = await self.get(session_id)
        with self.store.locked(session.id):
            self._hashers.pop(session.id, None)
            await self._run(self.store.remove, session.to_record())

    def _take_hasher(self, session_id: str, offset: int) -> HashLane | None:
        if offset == 0:
            return HashLane(self.files._run)
        cached = self._hashers.pop(session_id, None)
        if cached is not None and cached[0] == offset:
            return cached[1]
        return None  # another process received the earlier bytes: hash the whole file at the end

    def _keep_hasher(self, session_id: str, offset: int, lane: HashLane) -> None:
        self._hashers[session_id] = (offset, lane)
        while len(self._hashers) > 64:
            self._hashers.popitem(last=False)

    async def _finish(self, session: UploadSession) -> tuple[NodeInfo, bool]:
        """Verifies and commits a complete TUS upload, then forgets the session."""
        record = session.to_record()
        path = self.store.data_path(record)
        cached = self._hashers.pop(session.id, None)
        hasher = await cached[1].settled() if cached else None
        files = self.files
        walked: list[tuple[str, ...]] = []  # the parent's folders, for the event

        def commit() -> tuple[NodeInfo, bool]:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            sums = hasher.hexdigests() if hasher and cached and cached[0] == size else _hash_file(path)
            verify_checksum(session.checksum, sums)
            parent = _live_parent(files, session)
            result = files.driver.commit_upload(session.space_id, parent, session.name, path, size, sums,
                                                session.mtime_ns, session.user_id,
                                                _etag_precondition(session.if_match))
            with contextlib.suppress(StorageError):  # else the event goes without them
                walked.append(ancestor_ids(files.driver.ancestors(session.space_id, parent)))
            self.store.remove(record, keep_data=True)  # the data file is the node's content now
            return result

        try:
            node, created = await self._run(commit)
        except (ChecksumMismatch, PreconditionFailed, Conflict):
            # the upload can never succeed: do not leave it for the client to resume
            await self._run(self.store.remove, record)
            raise
        await self._published(session, node, created, walked[-1] if walked else ())
        return node, created

    async def _published(self, session: UploadSession, node: NodeInfo, created: bool,
                         ancestors: tuple[str, ...]) -> None:
        await self.files.bus.publish(events.FileUploaded(
            executant=session.user_id, space_id=node.space_id, node_id=node.id, parent_id=node.parent_id,
            name=node.name, size=node.size, new=created, ancestors=ancestors))

    # ------------------------------------------------------------------ chunking NG

    def ng_id(self, user: User, transfer_id: str) -> str:
        if not CHUNK_NAME.match(transfer_id):
            raise InvalidArgument("invalid upload id")
        return str(uuid.uuid5(_NAMESPACE, f"ng/{user.id}/{transfer_id}"))

    async def ng_create(self, user: User, transfer_id: str, total_length: int | None = None) -> UploadSession:
        session = UploadSession(id=self.ng_id(user, transfer_id), kind="ng", user_id=user.id,
                                expires_ns=self._new_expiry(), length=total_length)

        def create() -> None:
            with self.store.locked(session.id, wait=True):
                if self.store.load(session.id) is not None:
                    raise AlreadyExists("the upload exists")
                os.makedirs(self.store.chunk_dir(session.id), exist_ok=True)
                self.store.save(session.to_record())

        await self._run(create)
        return session

    async def ng_session(self, user: User, transfer_id: str) -> UploadSession:
        session = await self.get(self.ng_id(user, transfer_id), kind="ng")
        if session.user_id != user.id:
            raise NotFound("upload not found")
        return session

    async def ng_put_chunk(self, user: User, transfer_id: str, chunk_name: str,
                           body: AsyncIterator[bytes]) -> None:
        session = await self.ng_session(user, transfer_id)
        await self._store_chunk(session, chunk_name, body)

    async def ng_chunks(self, user: User, transfer_id: str) -> list[tuple[str, int, int]]:
        """(name, size, mtime ns) of each chunk received so far, in assembly order."""
        session = await self.ng_session(user, transfer_id)
        return await self._run(self._list_chunks, session.id)

    async def ng_assemble(self, user: User, transfer_id: str, parent_chain: Chain, name: str, *,
                          total_length: int | None, expected: tuple[str, str] | None, mtime_ns: int | None,
                          precondition: Precondition | None, tokens: frozenset[str],
                          existing: Chain | None) -> tuple[NodeInfo, bool]:
        session = await self.ng_session(user, transfer_id)
        length = total_length if total_length is not None else session.length
        await self.files.require_write(user, existing or parent_chain, tokens,
                                       (length or 0) - (existing[-1].size if existing else 0))
        result = await self._assemble(session, parent_chain, name, length, expected, mtime_ns, precondition)
        if result is None:
            raise NotFound("upload not found")
        return result

    async def ng_delete(self, user: User, transfer_id: str) -> None:
        session = await self.ng_session(user, transfer_id)
        await self._run(self.store.remove, session.to_record())

    # ------------------------------------------------------------------ legacy chunking v1

    async def v1_put_chunk(self, user: User, parent_chain: Chain, name: str, transfer_id: str, count: int,
                           index: int, body: AsyncIterator[bytes], *, expected: tuple[str, str] | None,
                           mtime_ns: int | None, precondition: Precondition | None,
                           existing: Chain | None) -> tuple[NodeInfo, bool] | None:
        """Stores chunk `index` of `count`; the request that completes the set assembles the file
        and gets the node back, every other one gets None. Chunks may come in any order."""
        name = self.files.name(name)
        parent = parent_chain[-1]
        if not parent.is_folder:
            raise Conflict("the parent is not a folder")
        if not (0 < count <= 100_000 and 0 <= index < count):
            raise InvalidArgument("invalid chunk number")
        await self.files.require_write(user, existing or parent_chain, frozenset())
        session_id = str(uuid.uuid5(_NAMESPACE, f"v1/{user.id}/{parent.space_id}/{parent.id}/{name}/"
                                                f"{transfer_id}/{count}"))
        session = UploadSession(id=session_id, kind="v1", user_id=user.id, expires_ns=self._new_expiry(),
                                space_id=parent.space_id, parent_id=parent.id, name=name)

        def ensure() -> None:
            with self.store.locked(session_id, wait=True):
                os.makedirs(self.store.chunk_dir(session_id), exist_ok=True)
                if self.store.load(session_id) is None:
                    self.store.save(session.to_record())

        await self._run(ensure)
        await self._store_chunk(session, str(index), body)

        def complete() -> bool:
            return len(self._list_chunks(session_id)) >= count

        if not await self._run(complete):
            return None
        return await self._assemble(session, parent_chain, name, None, expected, mtime_ns, precondition,
                                    expect_chunks=count)

    # ------------------------------------------------------------------ shared

    async def _store_chunk(self, session: UploadSession, chunk_name: str, body: AsyncIterator[bytes]) -> None:
        """Writes one chunk to a temp file and renames it into place: a chunk is there whole or not."""
        if not CHUNK_NAME.match(chunk_name):
            raise InvalidArgument("invalid chunk name")
        folder = self.store.chunk_dir(session.id)
        tmp = os.path.join(folder, f".{chunk_name}.{uuid.uuid4().hex}.part")
        try:
            fd = await self._run(os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            raise NotFound("upload not found") from None
        try:
            try:
                await _stream_into(fd, 0, body, None, None, None, self.files._run)
                await self._run(os.fsync, fd)
            finally:
                os.close(fd)
            await self._run(os.rename, tmp, os.path.join(folder, chunk_name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _list_chunks(self, session_id: str) -> list[tuple[str, int, int]]:
        out = []
        try:
            entries = list(os.scandir(self.store.chunk_dir(session_id)))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # a chunk still being received
            with contextlib.suppress(FileNotFoundError):
                st = entry.stat()
                out.append((entry.name, st.st_size, st.st_mtime_ns))
        out.sort(key=lambda item: _sort_key(item[0]))
        return out

    async def _assemble(self, session: UploadSession, parent_chain: Chain, name: str, total_length: int | None,
                        expected: tuple[str, str] | None, mtime_ns: int | None,
                        precondition: Precondition | None,
                        expect_chunks: int | None = None) -> tuple[NodeInfo, bool] | None:
        """Joins the chunks in order into new content of `parent/name` and forgets the session."""
        name = self.files.name(name)
        parent = parent_chain[-1]
        files = self.files

        def assemble() -> tuple[NodeInfo, bool] | None:
            with self.store.locked(session.id, wait=True):
                record = self.store.load(session.id)
                if record is None:
                    return None  # another request finished it
                chunks = self._list_chunks(session.id)
                if expect_chunks is not None and len(chunks) < expect_chunks:
                    return None
                size = sum(size for _name, size, _mtime in chunks)
                if total_length is not None and size != total_length:
                    raise InvalidArgument(f"the chunks hold {size} bytes, the upload announced {total_length}")
                target = files.driver.new_upload_path(parent.space_id)
                sums = _concatenate(self.store.chunk_dir(session.id), [c[0] for c in chunks], target)
                try:
                    verify_checksum(expected, sums)
                    result = files.driver.commit_upload(parent.space_id, parent, name, target, size, sums,
                                                        mtime_ns, session.user_id, precondition)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(target)
                    raise
                self.store.remove(record)
                return result

        result = await self._run(assemble)
        if result is not None:
            await self._published(session, *result, ancestor_ids(parent_chain))
        return result

    # ------------------------------------------------------------------ housekeeping

    def sessions(self) -> Iterator[UploadSession]:
        """Every session, with its offset (blocking: for the CLI and the reaper thread)."""
        for record in self.store.records():
            session = UploadSession.from_record(record)
            if session.kind == "tus":
                session.offset = self.store.offset(record)
            else:
                session.offset = sum(size for _n, size, _m in self._list_chunks(session.id))
            yield session

    def remove_session(self, session: UploadSession) -> None:
        with self.store.locked(session.id, wait=True):
            self.store.remove(session.to_record())

    def clean(self, everything: bool = False) -> int:
        """Removes expired sessions (all with `everything`) and bytes no session refers to.
        Blocking; returns how many sessions went."""
        removed = 0
        for session in list(self.sessions()):
            if everything or session.expired:
                self.remove_session(session)
                removed += 1
        for path in list(self.store.garbage()):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        return removed

    def reap(self) -> int | None:
        """`clean` by whichever process gets the turn (None for the others). Blocking."""
        with self.store.reaper_turn() as mine:
            return self.clean() if mine else None

    async def reap_periodically(self, interval_s: float) -> None:
        """Removes expired uploads for as long as the server runs (oCIS leaves them forever)."""
        while True:
            try:
                removed = await self._run(self.reap)
                if removed:
                    log.info("removed %d expired uploads", removed)
            except Exception:  # never let housekeeping take the server down
                log.exception("cleaning up expired uploads failed")
            await asyncio.sleep(interval_s)


def _require_etag(if_match: str, node: NodeInfo | None) -> None:
    if not etag_matches(if_match, node):
        raise PreconditionFailed("the etag does not match")


def _etag_precondition(if_match: str | None) -> Precondition | None:
    if if_match is None:
        return None

    def check(current: NodeInfo | None) -> None:
        _require_etag(if_match, current)

    return check


def _live_parent(files: FileService, session: UploadSession) -> NodeInfo:
    try:
        parent = files.driver.stat(session.space_id, session.parent_id)
    except NotFound:
        raise Conflict("the target folder no longer exists") from None
    if not parent.is_folder:
        raise Conflict("the target folder no longer exists")
    return parent


def _hash_file(path: str) -> dict[str, str]:
    hasher = MultiHasher()
    with open(path, "rb", buffering=0) as fh:
        while block := fh.read(COPY_BLOCK):
            hasher.update(block)
    return hasher.hexdigests()


def _concatenate(folder: str, names: list[str], target: str) -> dict[str, str]:
    """Writes the chunks one after another into `target` (fsynced), hashing as it goes."""
    hasher = MultiHasher()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    writeback, size = WritebackPacer(fd), 0
    try:
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as fh:
                while block := fh.read(COPY_BLOCK):
                    hasher.update(block, also=partial(write_all, fd, block))
                    size += len(block)
                    writeback.written_to(size)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    os.close(fd)
    return hasher.hexdigests()


class HashLane:
    """The whole-file hash of a TUS upload, fed in order but off the critical path: a PATCH is
    answered once its bytes are written, while their hashing may still run; the next PATCH and
    the finish wait for it. Saves the hash of each request's last buffer from every round trip.
    Hashing is slower than writing to the page cache, so the buffers waiting for it are bounded
    (`room`): without the bound a 1 GiB upload kept a hundred of them alive."""

    LIMIT = 4 * BUFFER  # bytes waiting to be hashed before the writer waits too

    def __init__(self, run: Callable) -> None:
        self.hasher = MultiHasher()
        self.run = run
        self.tail: asyncio.Future | None = None
        self.waiting: deque[tuple[asyncio.Future, int]] = deque()  # steps not known to be done, oldest first
        self.queued = 0

    def feed(self, parts: list[bytes], size: int) -> None:
        previous = self.tail

        async def step() -> None:
            if previous is not None:
                await previous
            await self.run(self.hasher.update_parts, parts)

        self.tail = asyncio.ensure_future(step())
        self.waiting.append((self.tail, size))
        self.queued += size

    async def room(self) -> None:
        """Returns once the bytes waiting to be hashed are within the bound (steps end in order)."""
        while self.waiting and (self.queued > self.LIMIT or self.waiting[0][0].done()):
            oldest, size = self.waiting[0]
            if not oldest.done():
                await asyncio.shield(oldest)  # its failure is raised again by `settled`
            self.waiting.popleft()
            self.queued -= size

    async def settled(self) -> MultiHasher:
        if self.tail is not None:
            await self.tail
        return self.hasher


async def _stream_into(fd: int, offset: int, body: AsyncIterator[bytes], limit: int | None,
                       lane: HashLane | None, chunk: ChunkHasher | None,
                       run: Callable) -> int:
    """Writes a request body at `offset` in 1 MiB steps (one in a thread while the next arrives),
    feeding the hashers. More than `limit` bytes is an error. Returns the bytes written; what was
    written before a client went away stays written (a TUS client resumes from there)."""
    written = 0
    pending: list[bytes] = []  # the chunks as they came: joining them copied every byte once more
    pending_size = 0
    in_flight: asyncio.Future | None = None
    position = offset
    writeback = WritebackPacer(fd, offset)

    def consume(parts: list[bytes], at: int, size: int, last: bool = False) -> None:
        if chunk is not None:
            for part in parts:
                chunk.update(part)
        write_parts(fd, parts, at)
        if last:  # a large request's tail goes to the disk too, not only at the upload's end
            writeback.ended_at(at + size)
        else:
            writeback.written_to(at + size)

    async def hand_over(parts: list[bytes], size: int, at: int, last: bool = False) -> asyncio.Future:
        if lane is not None:
            await lane.room()
            lane.feed(parts, size)
        return asyncio.ensure_future(run(consume, parts, at, size, last))

    try:
        async for piece in body:
            written += len(piece)
            if limit is not None and written > limit:
                raise InvalidArgument("the body is longer than the upload")
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= BUFFER:
                parts, size, pending, pending_size = pending, pending_size, [], 0
                if in_flight is not None:
                    await in_flight
                in_flight = await hand_over(parts, size, position)
                position += size
    finally:
        if in_flight is not None:
            await asyncio.shield(in_flight)
        if pending:
            await asyncio.shield(await hand_over(pending, pending_size, position, last=written >= STEP))
    return written

