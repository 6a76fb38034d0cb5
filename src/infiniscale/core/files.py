"""FileService: every file operation a protocol can ask for. It checks access and preconditions,
calls the storage driver (in worker threads: drivers block), and publishes an event after each
durable change. It knows nothing of HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from infiniscale.core import locks as locking
from infiniscale.core.checksums import MultiHasher
from infiniscale.core.inline_reads import InlineReads
from infiniscale.core.model import events
from infiniscale.core.model.errors import (
    AlreadyExists,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InvalidArgument,
    Locked,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    StorageError,
)
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import FAVORITE_PREFIX, FOLDER, LockInfo, NodeInfo, validate_name
from infiniscale.core.ports.events import EventBus
from infiniscale.core.ports.storage import BlobSink, BlobSource, Precondition, StorageDriver
from infiniscale.core.registry import Provider, SpaceRegistry
from infiniscale.core.roles import can
from infiniscale.core.sharing import (
    ACCEPTED,
    LINK_SHARE,
    LINK_USER_PREFIX,
    SHARE_JAIL,
    Received,
    Share,
    Sharing,
    shared_role,
)
from infiniscale.core.spaces import READ, WRITE, Space, SpaceRole, Spaces

T = TypeVar("T")
Chain = list[NodeInfo]


def ancestor_ids(chain: Chain) -> tuple[str, ...]:
    """The ids along a chain that starts at its space's root (`events.Event` ancestors), else ()."""
    return tuple(node.id for node in chain) if chain and chain[0].is_root else ()


UPLOAD_BUFFER = 1 << 20
IOV_MAX = 1024  # the most buffers one writev takes on Linux
# uploads up to this size are written and committed from the event loop, not a thread
INLINE_UPLOAD = 64 * 1024
INLINE_CHILDREN = 64  # a folder's first children listed from the event loop (see InlineReads)


class FileService:
    def __init__(self, driver: StorageDriver | SpaceRegistry, bus: EventBus, storage_id: str = "",
                 max_name_length: int = 255, spaces: Spaces | None = None, sharing: Sharing | None = None):
        """`driver` is the registry of storage providers, or one driver serving every space under
        `storage_id`."""
        if not isinstance(driver, SpaceRegistry):
            driver = SpaceRegistry([Provider(storage_id, driver)])
        self.driver = driver
        self.bus = bus
        self.storage_id = driver.providers[0].storage_id
        self.max_name_length = max_name_length
        self.spaces = spaces or Spaces(driver)  # type: ignore[arg-type]
        self.sharing = sharing
        # drivers block: many concurrent uploads must not queue their fsyncs behind a few threads
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="storage")
        self._inline_reads = InlineReads(self._executor)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    async def _read(self, space_id: str, fn: Callable[..., T], *args: Any) -> T:
        """A read of the space's tree (no locks taken): on the event loop where that is local file
        access and has been fast (`InlineReads`), else in a thread."""
        if self.driver.local_metadata(space_id):
            return await self._inline_reads(fn, *args)
        return await self._run(fn, *args)

    def resource_id(self, node: NodeInfo) -> str:
        return f"{self.driver.storage_id_of(node.space_id)}${node.space_id}!{node.id}"

    def storage_id_of(self, space_id: str) -> str:
        return self.driver.storage_id_of(space_id)

    def holds(self, storage_id: str, space_id: str) -> bool:
        """Whether the space exists in the provider with this storage id (resource ids name both)."""
        provider = self.driver.locate(space_id)
        return provider is not None and provider.storage_id == storage_id

    def name(self, name: str) -> str:
        return validate_name(name, self.max_name_length)

    # ------------------------------------------------------------------ spaces and access

    async def ensure_personal_space(self, user: User) -> str:
        """The user's personal space id (= user id); created on first use. Guests (user-light) have
        none, as in oCIS."""
        if not can(user.role, "Drives.Create"):
            raise NotFound("this user has no personal space")
        if self.spaces.peek(user.id) is not None:
            return user.id
        exists = await self._run(self.driver.space_exists, user.id)
        if not exists:
            await self._run(self.driver.create_space, user.id, "personal", user.display_name, user.id)
            await self.bus.publish(events.SpaceCreated(executant=user.id, space_id=user.id,
                                                       space_type="personal", owner_id=user.id))
        await self._space(user.id)
        return user.id

    async def _space(self, space_id: str) -> Space:
        space = self.spaces.peek(space_id)  # cached: no thread hop on the hot path
        if space is None:
            try:
                space = await self._run(self.spaces.get, space_id)
            except (NotFound, InvalidArgument):
                raise NotFound("resource not found") from None
        return space

    async def _check_access(self, user: User, space_id: str, level: int = READ,
                            chain: Chain | None = None) -> tuple[Space, SpaceRole]:
        """The user's role in the space, if it allows `level`: NotFound for somebody without
        access (existence is not revealed), Forbidden for a member whose role is too weak.
        Somebody who is no member but received shares of items in the space gets the role of the
        best share above `chain` (the resolved target)."""
        space = await self._space(space_id)
        role = self.spaces.role_of(user, space)
        if role is None and chain is not None and not space.disabled:
            role = shared_role(await self._grants(user, space_id), chain)
        if role is None or space.disabled:
            raise NotFound("resource not found")
        if role.level < level:
            raise Forbidden("insufficient permissions")
        return space, role

    async def _grants(self, user: User, space_id: str) -> list[Share]:
        if self.sharing is None:
            return []
        if user.id.startswith(LINK_USER_PREFIX):  # a public link: its one share, while it lives
            try:
                link = await self._run(self.sharing.book.get, user.id[len(LINK_USER_PREFIX):])
            except NotFound:
                return []
            live = link.share_type == LINK_SHARE and not link.expired(time.time())
            return [link] if live and link.space_id == space_id else []
        return await self._run(self.sharing.grants, user, space_id)

    async def allows(self, user: User, chain: Chain, permission: str) -> bool:
        """Whether the user's access to the end of `chain` includes a CS3 permission (members have
        every one their level gives; shares and links what their role lists)."""
        _space, role = await self._check_access(user, chain[-1].space_id, READ, chain)
        return role.may(permission)

    async def share_types(self, space_id: str) -> dict[str, tuple[int, ...]]:
        """Which items of the space are shared, and how (OCS share types), for oc:share-types."""
        if self.sharing is None:
            return {}
        found: dict[str, set[int]] = {}
        # a stat of the space's share document (read only when it changed): cheaper than a thread hop
        for share in self.sharing.book.in_space(space_id):
            found.setdefault(share.node_id, set()).add(share.share_type)
        return {node_id: tuple(sorted(types)) for node_id, types in found.items()}

    async def link(self, token: str) -> Share:
        """A live public link by its token."""
        if self.sharing is None:
            raise NotFound("link not found")
        return await self._run(self.sharing.book.by_token, token)

    async def _gate(self, user: User, space_id: str) -> SpaceRole | None:
        """Before resolving a path: a member (whose role is returned), or somebody with shares in
        the space (None: decided once the target is known), may go on; anybody else learns nothing."""
        space = await self._space(space_id)
        role = self.spaces.role_of(user, space)
        if space.disabled or (role is None and not await self._grants(user, space_id)):
            raise NotFound("resource not found")
        return role

    async def _resolved(self, user: User, chain: Chain, member: SpaceRole | None) -> Chain:
        """A resolved chain, if the user may see its end: members may, others by their shares."""
        if member is None:
            await self._check_access(user, chain[0].space_id, READ, chain)
        return chain

    # ------------------------------------------------------------------ the Shares space

    async def mounts(self, user: User) -> list[Received]:
        """The user's accepted received shares, one per shared item, with their mount names."""
        if self.sharing is None:
            return []
        received = await self._run(self.sharing.received, user, self.shared_item_name)
        seen: set[str] = set()
        out = []
        for r in received:
            if r.state == ACCEPTED and r.mount not in seen:
                seen.add(r.mount)
                out.append(r)
        return out

    def shared_item_name(self, share: Share) -> str:
        """The name of a shared item (blocking), which its mount is named after."""
        try:
            return self.driver.stat(share.space_id, share.node_id).name
        except (NotFound, InvalidArgument):
            return share.node_id

    async def shares_space(self, user: User) -> tuple[NodeInfo, list[tuple[str, Chain, Space, SpaceRole]]]:
        """The user's Shares space: a virtual root folder, and per mount its name, the chain of the
        shared item, its space and the user's role there. The root's ETag changes when anything
        below a mount changes, and when a share is mounted or removed. The user's shares are read
        once per space, not once per mount."""
        mounted = []
        grants: dict[str, list[Share]] = {}
        for received in await self.mounts(user):
            share = received.share
            try:
                space = await self._space(share.space_id)
                chain = await self._read(share.space_id, self._chain_of, share.space_id, share.node_id)
            except (StorageError, InvalidArgument):
                continue  # the item is gone
            if share.space_id not in grants:
                grants[share.space_id] = await self._grants(user, share.space_id)
            role = self.spaces.role_of(user, space) or shared_role(grants[share.space_id], chain)
            if role is not None and not space.disabled:
                mounted.append((received.mount, chain, space, role))
        items = [chain[-1] for _name, chain, _space, _role in mounted]
        fingerprint = zlib.crc32("\0".join(f"{name}:{chain[-1].id}" for name, chain, _s, _r in mounted).encode())
        root = NodeInfo(space_id=SHARE_JAIL, id=SHARE_JAIL, parent_id="", name="Shares", type=FOLDER,
                        mtime_ns=max((n.mtime_ns for n in items), default=0),
                        tmtime_ns=max((n.tmtime_ns for n in items), default=0) + fingerprint % 1_000_000,
                        size=sum(n.size for n in items))
        return root, mounted

    def _chain_of(self, space_id: str, node_id: str) -> Chain:
        return self.driver.ancestors(space_id, self.driver.stat(space_id, node_id))

    async def mount(self, user: User, name: str) -> ResourceId:
        """The shared item mounted as `name` in the user's Shares space."""
        for r in await self.mounts(user):
            if r.mount == name:
                return ResourceId(self.storage_id_of(r.share.space_id), r.share.space_id, r.share.node_id)
        raise NotFound("resource not found")

    async def mount_of_share(self, user: User, share_id: str) -> ResourceId:
        """The item of an accepted share the user received, by the share's id."""
        for r in await self.mounts(user):
            if r.share.id == share_id:
                return ResourceId(self.storage_id_of(r.share.space_id), r.share.space_id, r.share.node_id)
        raise NotFound("resource not found")

    async def access(self, user: User, space_id: str, chain: Chain | None = None,
                     node: NodeInfo | None = None) -> tuple[Space, SpaceRole]:
        """The user's role for `chain` (or `node`, whose ancestors are looked up when a share is
        what gives access), or in the space."""
        try:
            return await self._check_access(user, space_id, READ, chain)
        except NotFound:
            if chain is not None or node is None:
                raise
        return await self._check_access(user, space_id, READ,
                                        await self._read(node.space_id, self.driver.ancestors, node.space_id, node))

    def uploader_level(self, user_id: str, node: NodeInfo) -> int:
        """The access level of whoever finished an upload, known by id only (so group memberships
        do not count): at least WRITE, since they could upload."""
        space = self.spaces.peek(node.space_id)
        role = self.spaces.role_of(User(id=user_id, username="", display_name=""), space) if space else None
        return max(WRITE, role.level) if role else WRITE

    def quota_available(self, space: Space, root: NodeInfo) -> int:
        """Bytes left in the space's quota, or -3 (unlimited) as WebDAV clients expect it."""
        quota = self.spaces.quota_of(space)
        return max(0, quota - root.size) if quota else -3

    async def require_write(self, user: User, chain: Chain, tokens: frozenset[str], size_delta: int = 0) -> Space:
        """May `user` change what `chain` names: a write role in the space, no lock held by others,
        and room in the quota for `size_delta` more bytes. Returns the space."""
        space, _ = await self._check_access(user, chain[-1].space_id, WRITE, chain)
        self._writable(chain, user, tokens)
        if size_delta > 0 and self.spaces.quota_of(space):
            await self._run(self._check_quota, space, size_delta)
        return space

    async def _share_allows(self, user: User, chain: Chain, permission: str) -> None:
        """For access through a share: the shared item itself stays where its owner put it, and
        the share's role must grant `permission` (a "Can upload" share deletes nothing)."""
        _space, role = await self._check_access(user, chain[-1].space_id, READ, chain)
        if role.shared_root and (chain[-1].id == role.shared_root or not role.may(permission)):
            raise Forbidden("the share does not allow this")

    def _check_quota(self, space: Space, size_delta: int) -> None:
        quota = self.spaces.quota_of(space)
        if quota and size_delta > 0 and self.driver.stat(space.id, space.id).size + size_delta > quota:
            raise QuotaExceeded("the quota of this space does not allow this upload")

    async def resolve(self, user: User, space_id: str, names: list[str]) -> Chain:
        member = await self._gate(user, space_id)
        return await self._resolved(user, await self._read(space_id, self.driver.resolve, space_id, names), member)

    async def resolve_id(self, user: User, rid: ResourceId, names: list[str]) -> Chain:
        """Resolves `names` below the node `rid` addresses; the chain starts at the space root."""
        if not self.holds(rid.storage_id, rid.space_id):
            raise NotFound("resource not found")
        member = await self._gate(user, rid.space_id)
        return await self._resolved(user, await self._read(rid.space_id, self._walk, rid.space_id, names, rid),
                                    member)

    def _walk(self, space_id: str, names: list[str], rid: ResourceId | None) -> Chain:
        """The chain from the space root to `names`, below the node `rid` addresses if given."""
        if rid is None:
            return self.driver.resolve(space_id, names)
        start = self.driver.stat(space_id, rid.node_id)
        return self.driver.ancestors(space_id, start)[:-1] + self.driver.resolve(space_id, names, start=start)

    async def resolve_slot(self, user: User, space_id: str, names: list[str],
                           rid: ResourceId | None = None) -> tuple[Chain, NodeInfo | None]:
        """In one step: the chain of the parent of `names`, and the node at `names` if it exists.
        Raises NotFound when the parent does not exist."""
        if rid is not None:
            if not self.holds(rid.storage_id, rid.space_id):
                raise NotFound("resource not found")
            space_id = rid.space_id
        member = await self._gate(user, space_id)
        parent, node = await self._read(space_id, self._walk_slot, space_id, names, rid)
        await self._resolved(user, parent, member)
        return parent, node

    def _walk_slot(self, space_id: str, names: list[str], rid: ResourceId | None) -> tuple[Chain, NodeInfo | None]:
        parent = self._walk(space_id, names[:-1], rid)
        if not parent[-1].is_folder:
            return parent, None
        return parent, self.driver.child(space_id, parent[-1].id, names[-1])

    async def children(self, space_id: str, folder: NodeInfo, batch: int = 512,
                       with_locks: bool = True) -> AsyncIterator[list[NodeInfo]]:
        """Yields the folder's children in batches, so memory stays flat for huge folders. Without
        `with_locks` the storage may answer from its listing cache."""
        iterator = self.driver.iter_children(space_id, folder.id, not with_locks)

        def take(limit: int) -> list[NodeInfo]:
            out = []
            for node in iterator:
                out.append(node)
                if len(out) >= limit:
                    break
            return out

        try:
            # the first few like any other read (most folders are small: no thread hop), the rest
            # of a large folder in a thread, batch by batch
            limit = INLINE_CHILDREN
            chunk = await self._read(space_id, take, limit)
            while chunk:
                yield chunk
                if len(chunk) < limit:
                    return
                limit = batch
                chunk = await self._run(take, limit)
        finally:
            with contextlib.suppress(Exception):
                iterator.close()  # type: ignore[attr-defined]

    async def content_for_reading(self, node: NodeInfo) -> str | bytes:
        """For readers that need a file (image decoders): the local file holding the content, or
        else the content itself."""
        path = self.driver.blob_path(node.space_id, node)
        if path is not None:
            return path
        source = await self.open_content(node)
        try:
            return b"".join([chunk async for chunk in source.chunks(0, node.size - 1)]) if node.size else b""
        finally:
            source.close()

    async def open_content(self, node: NodeInfo) -> BlobSource:
        """The file's content, open for streaming. FileNotFoundError when an overwrite removed it
        after `node` was read."""
        if self.driver.remote_blobs(node.space_id):
            return await self._run(self.driver.open_blob, node.space_id, node)
        return self.driver.open_blob(node.space_id, node)  # a local open costs less than a thread hop

    async def child(self, folder: NodeInfo, name: str) -> NodeInfo | None:
        """A child by name, without access checks (the caller has the folder already)."""
        return await self._read(folder.space_id, self.driver.child, folder.space_id, folder.id, name)

    def path_names(self, chain: Chain) -> list[str]:
        return [node.name for node in chain[1:]]

    # ------------------------------------------------------------------ writes

    def _writable(self, chain: Chain, user: User, tokens: frozenset[str]) -> None:
        locking.require_unlocked(chain, tokens, user.id)

    async def mkdir(self, user: User, parent_chain: Chain, name: str, tokens: frozenset[str]) -> NodeInfo:
        name = self.name(name)
        parent = parent_chain[-1]
        if not parent.is_folder:
            raise Conflict("parent is not a folder")
        await self.require_write(user, parent_chain, tokens)
        if not await self.allows(user, parent_chain, "create_container"):  # a file drop takes files only
            raise Forbidden("the share does not allow creating folders")
        node = await self._run(self.driver.make_folder, parent.space_id, parent, name, user.id)
        await self.bus.publish(events.ContainerCreated(executant=user.id, space_id=parent.space_id,
                                                       node_id=node.id, parent_id=parent.id, name=name,
                                                       ancestors=ancestor_ids(parent_chain)))
        return node

    async def upload(
        self,
        user: User,
        parent_chain: Chain,
        name: str,
        body: AsyncIterator[bytes],
        *,
        expected: tuple[str, str] | None = None,
        mtime_ns: int | None = None,
        precondition: Precondition | None = None,
        tokens: frozenset[str] = frozenset(),
        existing: Chain | None = None,
        expected_size: int | None = None,
    ) -> tuple[NodeInfo, bool]:
        """Streams `body` into a temp file while hashing, then commits it as `parent/name`."""
        name = self.name(name)
        parent = parent_chain[-1]
        if not parent.is_folder:
            raise Conflict("parent is not a folder")
        space = await self.require_write(user, existing or parent_chain, tokens, expected_size - (
            existing[-1].size if existing else 0) if expected_size is not None else 0)
        space_id = parent.space_id
        writer = _BlobWriter(self.driver.new_blob(space_id))
        try:
            await writer.receive(body, self._run)

            def finish() -> tuple[NodeInfo, bool]:
                size, sums = writer.finish()
                verify_checksum(expected, sums)
                if expected_size is None:  # a body of unknown length: its size counts now
                    self._check_quota(space, size - (existing[-1].size if existing else 0))
                return self.driver.commit_blob(space_id, parent, name, writer.sink, size, sums, mtime_ns,
                                               user.id, precondition)

            node, created = await self._run(finish)
        finally:
            writer.discard()
        await self.bus.publish(events.FileUploaded(executant=user.id, space_id=space_id, node_id=node.id,
                                                   parent_id=parent.id, name=name, size=node.size,
                                                   new=created, ancestors=ancestor_ids(parent_chain)))
        return node, created

    async def upload_small(
        self,
        user: User,
        space_id: str,
        names: list[str],
        data: bytes,
        *,
        rid: ResourceId | None = None,
        validate: Callable[[Chain, Chain | None], None],
        expected: tuple[str, str] | None = None,
        mtime_ns: int | None = None,
        precondition: Precondition | None = None,
    ) -> tuple[NodeInfo, bool]:
        """A whole small upload in one worker-thread call: resolve the target, let `validate` see the
        parent and existing chains (locks, conflicts), write, fsync and commit. Saves the thread
        round trips that dominate the cost of small files. Raises NotFound when the parent is missing."""
        name = self.name(names[-1])
        if rid is not None:
            if not self.holds(rid.storage_id, rid.space_id):
                raise NotFound("resource not found")
            space_id = rid.space_id
        try:
            space, _ = await self._check_access(user, space_id, WRITE)
        except NotFound:  # no member: a share may still allow writing there
            if not await self._grants(user, space_id):
                raise
            parent, _node = await self.resolve_slot(user, space_id, names, rid)
            space, _ = await self._check_access(user, space_id, WRITE, parent)

        walked: list[Chain] = []  # the parent's chain, for the event

        def prepare() -> tuple[NodeInfo, _BlobWriter, int, dict[str, str]]:
            """Resolves, checks and writes the content; returns the parent and the written blob."""
            parent, node = self._walk_slot(space_id, names, rid)
            walked.append(parent)
            validate(parent, [*parent, node] if node is not None else None)
            self._check_quota(space, len(data) - (node.size if node is not None else 0))
            writer = _BlobWriter(self.driver.new_blob(space_id))
            try:
                writer.add(data)
                size, sums = writer.finish()
                verify_checksum(expected, sums)
            except BaseException:
                writer.discard()
                raise
            return parent[-1], writer, size, sums

        def work() -> tuple[NodeInfo, bool]:
            parent, writer, size, sums = prepare()
            try:
                return self.driver.commit_blob(space_id, parent, name, writer.sink, size, sums, mtime_ns,
                                               user.id, precondition)
            finally:
                writer.discard()

        committed = None
        if len(data) <= INLINE_UPLOAD and not self.driver.remote_blobs(space_id):
            # small enough to write from the event loop: page-cache work, cheaper than the thread
            # hops and the lock traffic of many threads; only the flushes are waited for
            parent, writer, size, sums = prepare()
            try:
                committed = await self.driver.commit_blob_inline(space_id, parent, name, writer.sink, size, sums,
                                                                 mtime_ns, user.id, precondition)
                if committed is None:  # a lock is held elsewhere: wait for it in a thread
                    committed = await self._run(self.driver.commit_blob, space_id, parent, name, writer.sink,
                                                size, sums, mtime_ns, user.id, precondition)
            finally:
                writer.discard()
        node, created = committed or await self._run(work)
        await self.bus.publish(events.FileUploaded(executant=user.id, space_id=space_id, node_id=node.id,
                                                   parent_id=node.parent_id, name=name, size=node.size,
                                                   new=created, ancestors=ancestor_ids(walked[-1])))
        return node, created

    async def delete(self, user: User, chain: Chain, tokens: frozenset[str]) -> None:
        node = chain[-1]
        if node.is_root:
            raise Forbidden("the space root cannot be deleted")
        await self.require_write(user, chain, tokens)
        await self._share_allows(user, chain, "delete")
        await self._run(self.driver.delete, node.space_id, node)
        await self.bus.publish(events.ItemTrashed(executant=user.id, space_id=node.space_id, node_id=node.id,
                                                  parent_id=node.parent_id, name=node.name,
                                                  ancestors=ancestor_ids(chain[:-1])))

    async def move(self, user: User, src: Chain, dst_parent: Chain, dst_name: str, overwrite: bool,
                   tokens: frozenset[str], precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        dst_name = self.name(dst_name)
        node = src[-1]
        if node.is_root:
            raise Forbidden("the space root cannot be moved")
        if dst_parent[-1].space_id != node.space_id:
            raise InvalidArgument("cross-space move")
        if not dst_parent[-1].is_folder:
            raise Conflict("destination parent is not a folder")
        await self.require_write(user, src, tokens)
        await self._share_allows(user, src, "move")
        await self.require_write(user, dst_parent, tokens)
        moved, replaced = await self._run(self.driver.move, node.space_id, node, dst_parent[-1], dst_name,
                                          overwrite, precondition)
        if moved.locks:
            # locks belong to the resource's old URL, they do not travel with it
            moved = await self._run(self.driver.update_node, node.space_id, node.id,
                                    lambda n: replace(n, locks=()), False)
        await self.bus.publish(events.ItemMoved(executant=user.id, space_id=node.space_id, node_id=node.id,
                                                old_parent_id=node.parent_id, old_name=node.name,
                                                parent_id=dst_parent[-1].id, name=dst_name,
                                                ancestors=ancestor_ids(dst_parent)))
        return moved, replaced

    async def copy(self, user: User, src: Chain, dst_parent: Chain, dst_name: str, overwrite: bool,
                   depth_infinity: bool, tokens: frozenset[str],
                   precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        dst_name = self.name(dst_name)
        node = src[-1]
        if not dst_parent[-1].is_folder:
            raise Conflict("destination parent is not a folder")
        await self.require_write(user, dst_parent, tokens, node.size)
        if dst_parent[-1].space_id == node.space_id:
            copied, replaced = await self._run(self.driver.copy, node.space_id, node, dst_parent[-1], dst_name,
                                               overwrite, depth_infinity, user.id, precondition)
        else:
            copied, replaced = await self._copy_across(user, node, dst_parent[-1], dst_name, depth_infinity,
                                                       precondition)
        await self.bus.publish(events.ItemCopied(executant=user.id, space_id=node.space_id, source_id=node.id,
                                                 node_id=copied.id, parent_id=dst_parent[-1].id, name=dst_name,
                                                 ancestors=ancestor_ids(dst_parent)))
        return copied, replaced

    async def _copy_across(self, user: User, node: NodeInfo, dst_parent: NodeInfo, dst_name: str,
                           depth_infinity: bool, precondition: Precondition | None) -> tuple[NodeInfo, bool]:
        """A copy into another space, perhaps on another provider: content is streamed from one
        to the other. What the destination name held goes to the trash first."""
        dst_space = dst_parent.space_id
        existing = await self._run(self.driver.child, dst_space, dst_parent.id, dst_name)
        if precondition:
            precondition(existing)
        if existing is not None:
            await self._run(self.driver.delete, dst_space, existing)
        copied = await self._copy_node(user, node, dst_parent, dst_name, depth_infinity)
        return copied, existing is not None

    async def _copy_node(self, user: User, node: NodeInfo, dst_parent: NodeInfo, name: str,
                         recursive: bool) -> NodeInfo:
        dst_space = dst_parent.space_id
        if node.is_folder:
            folder = await self._run(self.driver.make_folder, dst_space, dst_parent, name, user.id)
            if recursive:
                async for batch in self.children(node.space_id, node):
                    for child in batch:
                        await self._copy_node(user, child, folder, child.name, True)
            return folder
        source = await self.open_content(node)
        writer = _BlobWriter(self.driver.new_blob(dst_space))
        try:
            await writer.receive(source.chunks(0, source.size - 1), self._run)

            def finish() -> NodeInfo:
                size, sums = writer.finish()
                copied, _ = self.driver.commit_blob(dst_space, dst_parent, name, writer.sink, size, sums,
                                                    node.mtime_ns, user.id)
                return copied

            return await self._run(finish)
        finally:
            source.close()
            writer.discard()

    async def update_properties(self, user: User, chain: Chain, set_props: dict[str, str],
                                remove: list[str], tokens: frozenset[str]) -> NodeInfo:
        node = chain[-1]
        await self.require_write(user, chain, tokens)

        def change(current: NodeInfo) -> NodeInfo:
            props = dict(current.props)
            props.update(set_props)
            for key in remove:
                props.pop(key, None)
            return replace(current, props=props)

        updated = await self._run(self.driver.update_node, node.space_id, node.id, change, True)
        await self.bus.publish(events.PropertiesUpdated(executant=user.id, space_id=node.space_id,
                                                        node_id=node.id))
        return updated

    # ------------------------------------------------------------------ favorites

    async def set_favorite(self, user: User, chain: Chain, on: bool) -> NodeInfo:
        node = chain[-1]
        await self._check_access(user, node.space_id, READ, chain)
        return await self._run(self.driver.set_favorite, user.id, node.space_id, node.id, on)

    async def favorites(self, user: User, space_id: str) -> list[Chain]:
        """The chains (root first) of the user's favorites in one space."""
        await self._check_access(user, space_id)
        key = FAVORITE_PREFIX + user.id

        def collect() -> list[Chain]:
            chains = []
            for fav_space, node_id in self.driver.favorites(user.id):
                if fav_space != space_id:
                    continue
                try:
                    node = self.driver.stat(space_id, node_id)
                    chain = self.driver.ancestors(space_id, node)
                except (NotFound, InvalidArgument):
                    continue  # deleted since
                if node.props.get(key) and chain and chain[0].is_root:
                    chains.append(chain)
            return chains

        return await self._run(collect)

    # ------------------------------------------------------------------ locks

    async def lock(self, user: User, chain: Chain, scope: str, depth: str, owner_xml: str,
                   timeout_s: int) -> LockInfo:
        node = chain[-1]
        await self._check_access(user, node.space_id, WRITE, chain)
        if locking.conflicts(chain, scope):
            raise Locked("the resource is locked")
        lock = locking.new_lock(scope, depth, owner_xml, timeout_s, user.id, node.id)

        def add(current: NodeInfo) -> NodeInfo:
            if locking.conflicts([*chain[:-1], current], scope):
                raise Locked("the resource is locked")
            return replace(current, locks=(*locking.live_locks(current), lock))

        await self._run(self.driver.update_node, node.space_id, node.id, add, False)
        await self.bus.publish(events.FileLocked(executant=user.id, space_id=node.space_id, node_id=node.id))
        return lock

    async def refresh_lock(self, user: User, chain: Chain, tokens: frozenset[str], timeout_s: int) -> LockInfo:
        for holder in reversed(chain):
            for lock in locking.live_locks(holder):
                if lock.token in tokens and lock.user_id == user.id:
                    fresh = locking.refreshed(lock, timeout_s)

                    def swap(current: NodeInfo, token: str = lock.token, new: LockInfo = fresh) -> NodeInfo:
                        return replace(current, locks=tuple(new if lk.token == token else lk
                                                            for lk in current.locks))

                    await self._run(self.driver.update_node, holder.space_id, holder.id, swap, False)
                    return fresh
        raise PreconditionFailed("no matching lock token")

    async def unlock(self, user: User, chain: Chain, token: str) -> None:
        for holder in reversed(chain):
            for lock in locking.live_locks(holder):
                if lock.token != token:
                    continue
                if holder is not chain[-1] and lock.depth != "infinity":
                    continue
                if lock.user_id != user.id:
                    raise Forbidden("the lock belongs to somebody else")

                def drop(current: NodeInfo, token: str = token) -> NodeInfo:
                    return replace(current, locks=tuple(lk for lk in locking.live_locks(current)
                                                        if lk.token != token))

                await self._run(self.driver.update_node, holder.space_id, holder.id, drop, False)
                await self.bus.publish(events.FileUnlocked(executant=user.id, space_id=holder.space_id,
                                                           node_id=holder.id))
                return
        raise Conflict("the lock token does not match")

    async def create_empty_locked(self, user: User, parent_chain: Chain, name: str) -> NodeInfo:
        """LOCK on an unmapped URL creates an empty file."""

        async def nothing() -> AsyncIterator[bytes]:
            return
            yield b""

        def must_not_exist(current: NodeInfo | None) -> None:
            if current is not None:
                raise AlreadyExists("the resource exists")

        node, _ = await self.upload(user, parent_chain, name, nothing(), precondition=must_not_exist)
        return node


def write_all(fd: int, data: bytes | bytearray | memoryview, offset: int | None = None) -> None:
    """Writes every byte (a write may take fewer), at `offset` when given (pwrite)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[written:]
        if offset is not None:
            offset += written


def write_parts(fd: int, parts: list[bytes], offset: int | None = None) -> None:
    """`write_all` for consecutive buffers, as few writev calls as the kernel allows."""
    views = [memoryview(part) for part in parts if part]
    while views:
        batch = views[:IOV_MAX]
        written = os.writev(fd, batch) if offset is None else os.pwritev(fd, batch, offset)
        if offset is not None:
            offset += written
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


def verify_checksum(expected: tuple[str, str] | None, sums: dict[str, str]) -> None:
    if expected is not None and sums.get(expected[0]) != expected[1]:
        raise ChecksumMismatch(f"The computed checksum does not match the one received from the client. "
                               f"{expected[0].upper()}:{sums.get(expected[0])}")


class _BlobWriter:
    """Feeds an upload to a blob sink in 1 MiB steps, hashing as it goes. While one step's chunks
    are written and hashed in a thread, the next ones are received. The chunks stay as they came:
    joined, every byte was copied once more, and each 1 MiB buffer was a fresh mapping."""

    def __init__(self, sink: BlobSink) -> None:
        self.sink = sink
        self.hasher = MultiHasher()
        self.size = 0
        self.pending: list[bytes] = []
        self.pending_size = 0

    def add(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.pending_size += len(chunk)

    def _consume(self, parts: list[bytes]) -> None:
        self.hasher.update_parts(parts, also=partial(self.sink.write_parts, parts))
        self.size += sum(len(p) for p in parts)

    async def receive(self, body: AsyncIterator[bytes], run: Callable[..., Any]) -> None:
        in_flight: asyncio.Future | None = None
        try:
            async for chunk in body:
                self.add(chunk)
                if self.pending_size >= UPLOAD_BUFFER:
                    parts, self.pending, self.pending_size = self.pending, [], 0
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.ensure_future(run(self._consume, parts))
        finally:
            # never leave a write running when the caller discards the content
            if in_flight is not None:
                await asyncio.shield(in_flight)

    def finish(self) -> tuple[int, dict[str, str]]:
        """Writes what is left and makes it durable. Runs in a worker thread."""
        if self.pending:
            self._consume(self.pending)
            self.pending, self.pending_size = [], 0
        self.sink.finish()
        return self.size, self.hasher.hexdigests()

    def discard(self) -> None:
        self.sink.discard()
