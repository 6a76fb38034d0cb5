"""The decomposed storage driver: a tree of nodes with stable ids, metadata beside each node,
content in immutable blobs. Every method is synchronous and may block: callers run it in a thread.

Consistency rules, relied upon by `check.py` and the crash tests:
- A node's metadata sidecar is the truth about it (parent, name, sizes, checksums, locks).
- A child link `nodes/<parent>/<name> -> <child id>` is the index that makes lookup by name O(1);
  an entry counts only when the child's metadata agrees (same parent and name, not trashed).
- New nodes are written completely (blob, metadata, folder dir) before the link that makes them
  visible is created; that link is the commit point.
- Structure changes (move, delete, copy) hold the space's namespace lock exclusively; creations and
  overwrites hold it shared. A move writes a journal intent first, so a crash is rolled forward.
- Tree size and tree mtime propagate to the space root on every change, one ancestor at a time
  under that ancestor's lock stripe.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from functools import partial
from typing import NamedTuple

import msgpack

from infiniscale.core.model.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from infiniscale.core.model.ids import new_id, unique_suffix
from infiniscale.core.model.nodes import FAVORITE_PREFIX, FILE, FOLDER, NodeInfo, Revision, TrashItem
from infiniscale.drivers.decomposed import listing, revisions
from infiniscale.drivers.decomposed.blobs import AsyncSource, BlobSinkBase, BlobStore, LocalBlobs, LocalSource
from infiniscale.drivers.decomposed.fsutil import (
    TEMP_PREFIX,
    WouldBlock,
    flocked,
    fsync_dir,
    makedirs,
    on_network_filesystem,
    write_atomic,
    write_new,
    write_staged,
)
from infiniscale.drivers.decomposed.groupsync import GroupSync
from infiniscale.drivers.decomposed.layout import SpaceLayout, check_id, decode_node, encode_node
from infiniscale.drivers.decomposed.propagate import Deltas, LoopPropagation, Propagator, apply_unless_locked

Precondition = Callable[[NodeInfo | None], None]


class Propagation(NamedTuple):
    """A step of a commit: add `delta` to the tree size of `node_id` and everything above it."""

    space_id: str
    node_id: str
    delta: int


SYNC = "sync"  # a step of a commit: everything written so far must be on disk before it goes on


class Finish(NamedTuple):
    """The last step of a commit: the propagation, and a sync of everything written so far (the
    link or rename that committed). The two do not depend on each other (propagation writes
    derived data, which a crash may lose), so they may run at the same time."""

    propagation: Propagation


CommitSteps = Generator["str | Finish", None, tuple[NodeInfo, bool, str]]

# the largest write a disk is relied on to make whole: the smallest sector size there is
SECTOR = 512
log = logging.getLogger("infiniscale.storage")


def _now_ns() -> int:
    return time.time_ns()


class DecomposedStorage:
    def __init__(self, root: str, blobs: Callable[[Callable[[str], SpaceLayout]], BlobStore] = LocalBlobs,
                 versioning: bool = True) -> None:
        """`blobs` makes the blob store, given how to find a space's layout. With `versioning`, a
        file's replaced content stays as a revision."""
        self.root = root
        self.versioning = versioning
        self._layouts: dict[str, SpaceLayout] = {}
        self.blobs: BlobStore = blobs(self.layout)
        self._propagator = Propagator(self._propagate_one)
        self._inline_commits: set[asyncio.Future] = set()
        makedirs(root)
        self._group = GroupSync(root)
        self._local_metadata = not on_network_filesystem(root)
        self._inline_propagation = LoopPropagation(self._propagate_all,
                                                   self._propagate_now if self._local_metadata else None)

    # ---------------------------------------------------------------- spaces

    def layout(self, space_id: str) -> SpaceLayout:
        layout = self._layouts.get(space_id)
        if layout is None:
            layout = SpaceLayout(self.root, space_id)
            self._layouts[space_id] = layout
        return layout

    def space_exists(self, space_id: str) -> bool:
        return os.path.exists(self.layout(space_id).marker)

    def list_space_ids(self, space_type: str | None = None) -> list[str]:
        """Every space, or those of one type (from the type index, without touching the others)."""
        if space_type is not None:
            return self._indexed(space_type)
        base = os.path.join(self.root, "spaces")
        found = []
        if not os.path.isdir(base):
            return found
        for head in os.listdir(base):
            for tail in os.listdir(os.path.join(base, head)):
                if os.path.exists(os.path.join(base, head, tail, "space.mpk")):
                    found.append(head + tail)
        return sorted(found)

    # The type index: `<root>/indexes/by-type/<type>/<space id>`, an empty file per space, made
    # before the space itself (a crash leaves an entry without a space, which listing skips).

    def _type_index(self, space_type: str) -> str:
        return os.path.join(self.root, "indexes", "by-type", check_id(space_type))

    def _indexed(self, space_type: str) -> list[str]:
        folder = self._type_index(space_type)
        if not os.path.isdir(os.path.dirname(folder)):
            self._rebuild_type_index()  # a storage from before the index existed
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []  # no space of this type yet
        return sorted(n for n in names if self.space_exists(n))

    def _index_space(self, space_id: str, space_type: str) -> None:
        folder = self._type_index(space_type)
        makedirs(folder)
        os.close(os.open(os.path.join(folder, space_id), os.O_WRONLY | os.O_CREAT, 0o600))
        fsync_dir(folder)

    def _rebuild_type_index(self) -> None:
        makedirs(os.path.join(self.root, "indexes", "by-type"))
        for space_id in self.list_space_ids():
            with contextlib.suppress(NotFound):
                self._index_space(space_id, str(self.space_info(space_id).get("type") or "personal"))

    def space_version(self, space_id: str) -> tuple[int, int, int]:
        """Changes whenever the space record does: every write replaces the file (a new inode)."""
        try:
            st = os.stat(self.layout(space_id).marker)
        except FileNotFoundError:
            raise NotFound("space not found") from None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def space_info(self, space_id: str) -> dict:
        try:
            with open(self.layout(space_id).marker, "rb") as fh:
                return msgpack.unpackb(fh.read(), raw=False)
        except FileNotFoundError:
            raise NotFound("space not found") from None

    def create_space(self, space_id: str, space_type: str, name: str, owner_id: str,
                     extra: dict | None = None) -> NodeInfo:
        """Creates the space with its root folder; a no-op when it exists. `extra` goes into the
        space record (description, quota, members)."""
        layout = self.layout(space_id)
        if os.path.exists(layout.marker):
            return self.stat(space_id, space_id)
        for path in layout.all_dirs():
            makedirs(path)
        now = _now_ns()
        root = NodeInfo(space_id=space_id, id=space_id, parent_id="", name="", type=FOLDER,
                        mtime_ns=now, tmtime_ns=now, owner_id=owner_id)
        with flocked(layout.ns_lock):
            if os.path.exists(layout.marker):
                return self.stat(space_id, space_id)
            self._index_space(space_id, space_type)
            self._write_node(layout, root)
            makedirs(layout.node_dir(space_id))
            fsync_dir(os.path.dirname(layout.node_dir(space_id)))
            info = {**(extra or {}), "id": space_id, "type": space_type, "name": name, "owner": owner_id,
                    "created": now}
            write_atomic(layout.marker, msgpack.packb(info), newer_mtime=True)
        return root

    def update_space(self, space_id: str, change: Callable[[dict], dict]) -> dict:
        """Read-modify-write of the space record under the space's namespace lock."""
        layout = self.layout(space_id)
        with flocked(layout.ns_lock):
            info = change(dict(self.space_info(space_id)))
            info["id"] = space_id
            write_atomic(layout.marker, msgpack.packb(info), newer_mtime=True)
        return info

    def purge_space(self, space_id: str) -> None:
        """Removes the space and everything in it. The space disappears with one rename (a crash
        leaves it either whole or gone); the data is deleted afterwards."""
        layout = self.layout(space_id)
        graveyard = os.path.join(self.root, "purged")
        makedirs(graveyard)
        target = os.path.join(graveyard, f"{space_id}.{unique_suffix()}")
        with flocked(layout.ns_lock):
            if not os.path.exists(layout.marker):
                raise NotFound("space not found")
            space_type = str(self.space_info(space_id).get("type") or "personal")
            os.rename(layout.dir, target)
        fsync_dir(os.path.dirname(layout.dir))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self._type_index(space_type), space_id))
        self._layouts.pop(space_id, None)
        self._remove_purged(target, space_id)

    def _remove_purged(self, folder: str, space_id: str) -> None:
        self.blobs.purge_space(space_id)
        shutil.rmtree(folder, ignore_errors=True)

    def finish_purges(self) -> int:
        """Removes what purges that a crash interrupted left behind. Returns how many it found."""
        graveyard = os.path.join(self.root, "purged")
        try:
            names = os.listdir(graveyard)
        except FileNotFoundError:
            return 0
        for name in names:
            self._remove_purged(os.path.join(graveyard, name), name.partition(".")[0])
        return len(names)

    # ---------------------------------------------------------------- reading

    def _read_node(self, layout: SpaceLayout, node_id: str) -> tuple[NodeInfo, dict | None]:
        return decode_node(layout.space_id, self._read_sidecar(layout, node_id))

    def _read_sidecar(self, layout: SpaceLayout, node_id: str) -> bytes:
        try:
            fd = os.open(layout.meta_path(node_id), os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("resource not found") from None
        try:
            raw = os.read(fd, 1 << 16)
            if len(raw) == 1 << 16:  # large metadata (many properties): read the rest
                chunks = [raw]
                while chunk := os.read(fd, 1 << 20):
                    chunks.append(chunk)
                raw = b"".join(chunks)
        finally:
            os.close(fd)
        return raw

    def stat(self, space_id: str, node_id: str) -> NodeInfo:
        """The node by id, wherever it is in the tree (not if trashed)."""
        check_id(node_id)
        node, trashed = self._read_node(self.layout(space_id), node_id)
        if trashed:
            raise NotFound("resource not found")
        return node

    def child(self, space_id: str, parent_id: str, name: str) -> NodeInfo | None:
        layout = self.layout(space_id)
        return self._child(layout, parent_id, name)

    def _child(self, layout: SpaceLayout, parent_id: str, name: str) -> NodeInfo | None:
        try:
            child_id = os.readlink(os.path.join(layout.node_dir(parent_id), name))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENAMETOOLONG):
                return None
            raise
        try:
            node, trashed = self._read_node(layout, child_id)
        except NotFound:
            return None
        if trashed or node.parent_id != parent_id or node.name != name:
            return None
        return node

    def resolve(self, space_id: str, names: list[str], start: NodeInfo | None = None) -> list[NodeInfo]:
        """Walks `names` from `start` (default: the space root); returns the chain, root first."""
        layout = self.layout(space_id)
        node = start or self.stat(space_id, space_id)
        chain = [node]
        for name in names:
            if not node.is_folder:
                raise NotFound("resource not found")
            child = self._child(layout, node.id, name)
            if child is None:
                raise NotFound("resource not found")
            chain.append(child)
            node = child
        return chain

    def ancestors(self, space_id: str, node: NodeInfo) -> list[NodeInfo]:
        """The chain from the space root down to `node` (inclusive), by following parent ids."""
        layout = self.layout(space_id)
        chain = [node]
        seen = {node.id}
        while chain[-1].parent_id:
            parent, trashed = self._read_node(layout, chain[-1].parent_id)
            if trashed or parent.id in seen:
                raise NotFound("resource not found")
            seen.add(parent.id)
            chain.append(parent)
        if chain[-1].id != space_id:
            raise NotFound("resource not found")
        chain.reverse()
        return chain

    def iter_children(self, space_id: str, parent_id: str, cached: bool = False) -> Iterator[NodeInfo]:
        """The folder's children in no particular order. With `cached`, a valid listing cache is
        used (and a fresh one written while scanning); lock information may then be stale."""
        layout = self.layout(space_id)
        writer = None
        if cached:
            try:
                folder, trashed = self._read_node(layout, parent_id)
            except NotFound:
                return
            if trashed:
                return
            hit = listing.read(layout, folder)
            if hit is not None:
                yield from hit
                return
            writer = listing.Writer(layout, folder)
        try:
            entries = os.scandir(os.fsencode(layout.node_dir(parent_id)))
        except (FileNotFoundError, NotADirectoryError):
            if writer:
                writer.discard()
            return
        completed = False
        try:
            with entries:
                for entry in entries:
                    if entry.name.startswith(TEMP_PREFIX):
                        continue
                    try:
                        name = entry.name.decode("utf-8")
                        child_id = os.readlink(entry.path).decode()
                        node, trashed = self._read_node(layout, child_id)
                    except (OSError, UnicodeDecodeError, NotFound):
                        continue
                    if trashed or node.parent_id != parent_id or node.name != name:
                        continue
                    if writer:
                        writer.add(node)
                    yield node
            completed = True
        finally:
            if writer:
                writer.commit() if completed else writer.discard()

    def free_bytes(self, space_id: str) -> int:
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize

    def remote_blobs(self, space_id: str) -> bool:
        return not isinstance(self.blobs, LocalBlobs)

    def local_metadata(self, space_id: str) -> bool:
        return self._local_metadata

    def blob_path(self, space_id: str, node: NodeInfo) -> str | None:
        return self.blobs.local_path(space_id, node.blob_id) if node.blob_id else None

    def open_blob(self, space_id: str, node: NodeInfo) -> LocalSource | AsyncSource:
        """The node's content, open for reading. FileNotFoundError when an overwrite removed it."""
        return self.blobs.open(space_id, node.blob_id, node.size)

    # ---------------------------------------------------------------- writing helpers

    def _write_node(self, layout: SpaceLayout, node: NodeInfo, durable: bool = True,
                    trashed: dict | None = None, sync_dir: bool = True) -> None:
        path = layout.meta_path(node.id)
        try:
            write_atomic(path, encode_node(node, trashed), durable=durable, sync_dir=sync_dir)
        except FileNotFoundError:
            makedirs(os.path.dirname(path))
            write_atomic(path, encode_node(node, trashed), durable=durable, sync_dir=sync_dir)

    def _write_new_node(self, layout: SpaceLayout, node: NodeInfo, durable: bool = True) -> None:
        """The sidecar of a node no link points to yet, written in place: until the link exists
        nothing reads it, and a crash leaves garbage that `storage check` reclaims."""
        path = layout.meta_path(node.id)
        try:
            write_new(path, encode_node(node), durable)
        except FileNotFoundError:
            makedirs(os.path.dirname(path))
            write_new(path, encode_node(node), durable)

    def _link(self, layout: SpaceLayout, parent_id: str, name: str, child_id: str, durable: bool = True) -> None:
        """Creates the child link; raises AlreadyExists when the name is taken. Without `durable`
        the caller makes it durable (a group sync)."""
        path = os.path.join(layout.node_dir(parent_id), name)
        try:
            os.symlink(child_id, path)
        except FileExistsError:
            if self._child(layout, parent_id, name) is not None:
                raise AlreadyExists("the name is already taken") from None
            # a stale link left by an interrupted operation: the name is free
            self._replace_link(layout, parent_id, name, child_id)
            return
        except FileNotFoundError:
            raise Conflict("parent folder does not exist") from None
        if durable:
            fsync_dir(layout.node_dir(parent_id))

    def _replace_link(self, layout: SpaceLayout, parent_id: str, name: str, child_id: str) -> None:
        """Points `name` at `child_id`, atomically replacing whatever it pointed to."""
        folder = layout.node_dir(parent_id)
        tmp = os.path.join(os.fsencode(folder), TEMP_PREFIX + unique_suffix().encode())
        os.symlink(child_id.encode(), tmp)
        os.rename(tmp, os.path.join(os.fsencode(folder), name.encode()))
        fsync_dir(folder)

    def _unlink(self, layout: SpaceLayout, parent_id: str, name: str, child_id: str) -> None:
        path = os.path.join(layout.node_dir(parent_id), name)
        try:
            if os.readlink(path) == child_id:
                os.unlink(path)
                fsync_dir(layout.node_dir(parent_id))
        except FileNotFoundError:
            pass

    def propagate(self, space_id: str, start_id: str, size_delta: int) -> None:
        """Adds `size_delta` to the tree size of `start_id` and every ancestor and moves their tree
        mtime forward, so every ancestor etag changes. Stops at the root or at a trashed node.
        Callers hold the namespace lock, so no move or delete interleaves with the walk.
        Never raises: the change itself is committed already, and a failure here only leaves derived
        data behind, which `storage check --repair` recomputes."""
        try:
            self._propagate(space_id, start_id, size_delta)
        except OSError:
            log.exception("propagation from %s failed; run `infiniscale storage check --repair`", start_id)

    def _propagate(self, space_id: str, start_id: str, size_delta: int) -> None:
        self._propagator.propagate(space_id, start_id, size_delta)

    def _propagate_all(self, deltas: Deltas) -> None:
        """`propagate` for several starting points; never raises either."""
        try:
            self._propagator.propagate_all(deltas)
        except OSError:
            log.exception("propagation failed; run `infiniscale storage check --repair`")

    def _propagate_now(self, deltas: Deltas) -> Deltas:
        """`_propagate_all` from the event loop, for the ancestors whose lock is free now; returns
        the deltas left at the others. Never raises either."""
        try:
            return apply_unless_locked(partial(self._propagate_one, wait=False), deltas)
        except OSError:
            log.exception("propagation failed; run `infiniscale storage check --repair`")
            return {}

    def _propagate_one(self, space_id: str, node_id: str, size_delta: int, wait: bool = True) -> str:
        """Applies a delta to one ancestor; returns where to continue ("" to stop). Without `wait`,
        a lock held elsewhere raises WouldBlock before anything is read."""
        layout = self.layout(space_id)
        with flocked(layout.stripe(node_id), wait=wait):
            try:
                raw = self._read_sidecar(layout, node_id)
            except NotFound:
                return ""
            node, trashed = decode_node(space_id, raw)
            if trashed:
                return ""
            # no clamping at 0: concurrent deltas may arrive in any order and must add up exactly
            updated = replace(node, size=node.size + size_delta, tmtime_ns=max(_now_ns(), node.tmtime_ns + 1))
            encoded = encode_node(updated)
            # derived data: a crash loses at most this update, and recovery recomputes it
            if len(encoded) == len(raw) <= SECTOR:
                self._rewrite_in_place(layout, node_id, encoded)
            else:
                self._write_node(layout, updated, durable=False)
        return node.parent_id

    def _rewrite_in_place(self, layout: SpaceLayout, node_id: str, encoded: bytes) -> None:
        """Overwrites a sidecar with new content of the same length, in one write within one sector:
        a killed process or a power cut leaves the old or the new bytes, as disks write a sector
        whole. Only the numbers of propagation change this way; the rename of `write_atomic`
        costs a new inode and two directory updates, and this runs for every ancestor of every
        change."""
        fd = os.open(layout.meta_path(node_id), os.O_WRONLY)
        try:
            os.pwrite(fd, encoded, 0)
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- folders

    def make_folder(self, space_id: str, parent: NodeInfo, name: str, owner_id: str) -> NodeInfo:
        layout = self.layout(space_id)
        now = _now_ns()
        node = NodeInfo(space_id=space_id, id=new_id(), parent_id=parent.id, name=name, type=FOLDER,
                        mtime_ns=now, tmtime_ns=now, owner_id=owner_id)
        with flocked(layout.ns_lock, shared=True):
            if self._child(layout, parent.id, name) is not None:
                raise AlreadyExists("the resource already exists")
            self._require_live_folder(layout, parent.id)
            # not linked yet: the link's directory fsync makes this durable too
            self._write_new_node(layout, node)
            makedirs(layout.node_dir(node.id))
            try:
                self._link(layout, parent.id, name, node.id)
            except BaseException:
                self._discard_node(layout, node)
                raise
            # under the namespace lock: a move or delete cannot slip in between change and propagation
            self.propagate(space_id, parent.id, 0)
        return node

    def _require_live_folder(self, layout: SpaceLayout, folder_id: str) -> None:
        try:
            folder, trashed = self._read_node(layout, folder_id)
        except NotFound:
            raise Conflict("parent folder does not exist") from None
        if trashed or not folder.is_folder:
            raise Conflict("parent folder does not exist")

    def _discard_node(self, layout: SpaceLayout, node: NodeInfo) -> None:
        with contextlib.suppress(OSError):
            os.unlink(layout.meta_path(node.id))
        if node.is_folder:
            with contextlib.suppress(OSError):
                os.rmdir(layout.node_dir(node.id))

    # ---------------------------------------------------------------- files

    def new_blob(self, space_id: str) -> BlobSinkBase:
        """A sink for new content, to be committed with `commit_blob`."""
        return self.blobs.sink(space_id)

    def new_upload_path(self, space_id: str) -> str:
        """A local file to assemble new content in, then `commit_upload` it. It is placed where a
        local blob would be: until a commit references it, it is unreferenced garbage, so an
        interrupted upload never needs a rename or cleanup to be safe."""
        return self.layout(space_id).blob_path(new_id())  # its folder is made on first write

    def commit_upload(
        self,
        space_id: str,
        parent: NodeInfo,
        name: str,
        upload_path: str,
        size: int,
        checksums: dict[str, str],
        mtime_ns: int | None,
        owner_id: str,
        precondition: Precondition | None = None,
    ) -> tuple[NodeInfo, bool]:
        """Turns a fully written, fsynced local file into the content of `parent/name` (the file
        is consumed). Returns the node and whether it was created. `precondition` sees the current
        node (or None) under the lock and may raise to refuse the write."""
        blob_id = self.blobs.store_file(space_id, upload_path)
        return self._commit_content(space_id, parent, name, blob_id, size, checksums, mtime_ns, owner_id,
                                    precondition)

    def commit_blob(self, space_id: str, parent: NodeInfo, name: str, sink: BlobSinkBase, size: int,
                    checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                    precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        """Like `commit_upload`, for content written through a finished sink of `new_blob`."""
        try:
            return self._commit_content(space_id, parent, name, sink.blob_id, size, checksums, mtime_ns,
                                        owner_id, precondition)
        finally:
            sink.committed = True  # the node's content now, or deleted by the failed commit

    def _commit_content(self, space_id: str, parent: NodeInfo, name: str, blob_id: str, size: int,
                        checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                        precondition: Precondition | None) -> tuple[NodeInfo, bool]:
        """Links the stored blob in this thread, waiting for each sync and propagation the commit
        asks for; a failure before the link deletes the blob again."""
        steps = self._commit_steps(self.layout(space_id), parent, name, blob_id, size, checksums, mtime_ns,
                                   owner_id, precondition, wait=True)
        linked = False
        try:
            step = next(steps)
            while True:
                if step is SYNC:
                    self._group.sync()
                else:
                    linked = True
                    self.propagate(*step.propagation)
                    self._group.sync()
                step = steps.send(None)
        except StopIteration as done:
            node, created, old_blob = done.value
        except BaseException:
            if not linked:  # afterwards the node refers to it, whatever failed later
                self.blobs.delete(space_id, blob_id)
            raise
        if old_blob:
            self.blobs.delete(space_id, old_blob)
        return node, created

    async def commit_blob_inline(self, space_id: str, parent: NodeInfo, name: str, sink: BlobSinkBase, size: int,
                                 checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                                 precondition: Precondition | None = None) -> tuple[NodeInfo, bool] | None:
        """`commit_blob` run on the event loop, for small content already on local disk: the file
        operations are page-cache work, and where the thread version waits (the syncs, the
        propagation) this awaits, so concurrent uploads share one flush and one propagation and
        no thread of the pool is involved. None when a lock is held elsewhere: nothing has been
        committed then, and the caller commits through `commit_blob` in a thread instead."""
        # once begun, a commit runs to its end even if the request is cancelled meanwhile
        task = asyncio.ensure_future(self._commit_inline(
            self._commit_steps(self.layout(space_id), parent, name, sink.blob_id, size, checksums, mtime_ns,
                               owner_id, precondition, wait=False), space_id, sink))
        self._inline_commits.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._inline_commits.discard)
        return await asyncio.shield(task)

    async def _commit_inline(self, steps: CommitSteps, space_id: str,
                             sink: BlobSinkBase) -> tuple[NodeInfo, bool] | None:
        linked = False
        try:
            step = next(steps)
            while True:
                if step is SYNC:
                    await self._group.sync_async()
                else:
                    linked = True
                    await asyncio.gather(self._inline_propagation.propagate(*step.propagation),
                                         self._group.sync_async())
                step = steps.send(None)
        except StopIteration as done:
            node, created, old_blob = done.value
        except WouldBlock:
            return None
        except BaseException:
            if not linked:  # afterwards the node refers to it, whatever failed later
                self.blobs.delete(space_id, sink.blob_id)
            sink.committed = True
            raise
        sink.committed = True
        if old_blob:
            self.blobs.delete(space_id, old_blob)
        return node, created

    def _commit_steps(self, layout: SpaceLayout, parent: NodeInfo, name: str, blob_id: str, size: int,
                      checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                      precondition: Precondition | None, wait: bool) -> CommitSteps:
        """Makes the blob the content of `parent/name`; returns the node, whether it was created and
        the blob it replaced when that may go. Yields SYNC where everything written so far must be
        on disk before it goes on, and `Finish` once committed; the runner does what they ask (a
        thread waits, a coroutine awaits). The replaced content may go only after `Finish`, and the
        request is answered after it. Without `wait`, a lock held elsewhere raises WouldBlock,
        always before anything is changed."""
        now = _now_ns()
        result: tuple[NodeInfo, bool, str] | None = None
        with flocked(layout.ns_lock, shared=True, wait=wait):
            for _attempt in range(3):
                current = self._child(layout, parent.id, name)
                if current is not None and current.is_folder:
                    raise Conflict("a folder exists with this name")
                if current is None:
                    if precondition:
                        precondition(None)
                    self._require_live_folder(layout, parent.id)
                    node = NodeInfo(space_id=layout.space_id, id=new_id(), parent_id=parent.id, name=name,
                                    type=FILE, mtime_ns=mtime_ns or now, tmtime_ns=now, size=size,
                                    blob_id=blob_id, checksums=checksums, owner_id=owner_id)
                    # not linked yet; the sync puts content and sidecar on disk before the link
                    # that makes them visible
                    self._write_new_node(layout, node, durable=False)
                    yield SYNC
                    try:
                        self._link(layout, parent.id, name, node.id, durable=False)
                    except AlreadyExists:
                        self._discard_node(layout, node)
                        continue  # somebody created it meanwhile: overwrite theirs
                    yield Finish(Propagation(layout.space_id, parent.id, size))
                    result = node, True, ""
                    break
                with flocked(layout.stripe(current.id), wait=wait):
                    fresh, trashed = self._read_node(layout, current.id)
                    if trashed or fresh.parent_id != parent.id or fresh.name != name:
                        continue
                    if precondition:
                        precondition(fresh)
                    node = replace(fresh, blob_id=blob_id, size=size, checksums=checksums,
                                   mtime_ns=mtime_ns or now, tmtime_ns=max(now, fresh.tmtime_ns + 1))
                    # content, the revision of what it replaces and the new sidecar are on disk
                    # before the sidecar takes the old one's place
                    kept = self._keep_revision(layout, fresh, durable=False)
                    path = layout.meta_path(node.id)
                    staged = write_staged(path, encode_node(node))
                    try:
                        yield SYNC
                        os.rename(staged, path)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            os.unlink(staged)
                        raise
                yield Finish(Propagation(layout.space_id, parent.id, size - fresh.size))
                result = node, False, "" if kept else fresh.blob_id
                break
        if result is None:
            raise Conflict("the resource changed concurrently, try again")
        return result

    def update_node(self, space_id: str, node_id: str, change: Callable[[NodeInfo], NodeInfo],
                    propagate: bool = True) -> NodeInfo:
        """Read-modify-write of one node's metadata under its lock (properties, locks, mtime)."""
        layout = self.layout(space_id)
        with flocked(layout.stripe(node_id)):
            node, trashed = self._read_node(layout, node_id)
            if trashed:
                raise NotFound("resource not found")
            updated = change(node)
            if updated is node:
                return node
            if propagate:
                updated = replace(updated, tmtime_ns=max(_now_ns(), node.tmtime_ns + 1))
            self._write_node(layout, updated)
        if propagate and updated.parent_id:
            self.propagate(space_id, updated.parent_id, 0)
        return updated

    # ---------------------------------------------------------------- revisions

    def _keep_revision(self, layout: SpaceLayout, replaced: NodeInfo, durable: bool = True) -> bool:
        """Keeps the content being replaced as a revision (caller holds the node's stripe).
        Without `durable` the caller syncs before the content stops being the node's."""
        if not self.versioning or not replaced.blob_id:
            return False
        revisions.keep(layout, replaced, durable)
        return True

    def list_revisions(self, space_id: str, node_id: str) -> list[Revision]:
        return revisions.listing(self.layout(space_id), node_id)

    def revision(self, space_id: str, node_id: str, key: str) -> Revision:
        return revisions.read(self.layout(space_id), node_id, key)

    def open_revision(self, space_id: str, rev: Revision) -> LocalSource | AsyncSource:
        return self.blobs.open(space_id, rev.blob_id, rev.size)

    def restore_revision(self, space_id: str, node: NodeInfo, key: str) -> NodeInfo:
        """Makes the revision the file's content again, with the current time as its mtime (as oCIS
        does); the content it replaces becomes a revision itself (so nothing is lost), and the
        restored revision is consumed."""
        layout = self.layout(space_id)
        with flocked(layout.ns_lock, shared=True):
            with flocked(layout.stripe(node.id)):
                current, trashed = self._read_node(layout, node.id)
                if trashed or current.is_folder:
                    raise NotFound("resource not found")
                rev = revisions.read(layout, node.id, key)
                now = _now_ns()
                restored = replace(current, blob_id=rev.blob_id, size=rev.size, checksums=dict(rev.checksums),
                                   mtime_ns=now, tmtime_ns=max(now, current.tmtime_ns + 1))
                kept = self._keep_revision(layout, current)
                self._write_node(layout, restored)
                revisions.remove(layout, self.blobs, rev, keep_blob=True)  # its blob is the content now
                if not kept:
                    self.blobs.delete(space_id, current.blob_id)
            self.propagate(space_id, current.parent_id, rev.size - current.size)
        return restored

    def remove_revision(self, space_id: str, rev: Revision) -> None:
        layout = self.layout(space_id)
        with flocked(layout.stripe(rev.node_id)):
            revisions.remove(layout, self.blobs, rev)

    def prune_revisions(self, space_id: str, keep: int, older_than_ns: int, dry_run: bool = False) -> tuple[int, int]:
        """Drops revisions beyond the `keep` newest of each file (0: no limit) and those replaced
        before `older_than_ns` (0: no limit), oldest first. Returns (revisions, bytes)."""
        layout = self.layout(space_id)
        count = freed = 0
        for node_id in revisions.node_ids(layout):
            with flocked(layout.stripe(node_id)):
                found = revisions.listing(layout, node_id)
                excess = len(found) - keep if keep else 0
                for index, rev in enumerate(found):
                    if index < excess or (older_than_ns and rev.created_ns < older_than_ns):
                        if not dry_run:
                            revisions.remove(layout, self.blobs, rev)
                        count += 1
                        freed += rev.size
        return count, freed

    # ---------------------------------------------------------------- trash bin

    def list_trash(self, space_id: str) -> list[TrashItem]:
        """What was deleted in the space (the tops of deleted subtrees), newest first."""
        layout = self.layout(space_id)
        try:
            names = os.listdir(layout.trash)
        except FileNotFoundError:
            return []
        items = []
        for name in names:
            item = self._trash_item(layout, name)
            if item is not None:
                items.append(item)
        items.sort(key=lambda item: -item.deleted_ns)
        return items

    def trash_item(self, space_id: str, node_id: str) -> TrashItem:
        check_id(node_id)
        item = self._trash_item(self.layout(space_id), node_id)
        if item is None:
            raise NotFound("trash item not found")
        return item

    def _trash_item(self, layout: SpaceLayout, node_id: str) -> TrashItem | None:
        if not os.path.islink(os.path.join(layout.trash, node_id)):
            return None
        try:
            node, origin = self._read_node(layout, node_id)
        except NotFound:
            return None
        if not origin:
            return None  # restored, its trash link not yet removed
        return TrashItem(node=node, origin_parent_id=origin["parent"], origin_name=origin["name"],
                         origin_path=origin.get("path") or origin["name"], deleted_ns=origin["time"])

    def restore_trash(self, space_id: str, node_id: str, dst_parent: NodeInfo, dst_name: str,
                      overwrite: bool) -> tuple[NodeInfo, bool]:
        """Puts a deleted node (and its subtree) back at `dst_parent/dst_name` in O(1). Returns the
        node and whether it replaced something (which goes to the trash in turn)."""
        layout = self.layout(space_id)
        with flocked(layout.ns_lock):
            item = self.trash_item(space_id, node_id)
            dst_parent = self._fresh(layout, dst_parent)
            if not dst_parent.is_folder:
                raise Conflict("the destination parent is not a folder")
            if item.node.is_folder:
                self._refuse_cycle(layout, item.node, dst_parent)
            existing = self._child(layout, dst_parent.id, dst_name)
            if existing is not None and not overwrite:
                raise AlreadyExists("the destination already exists")
            op = {"op": "restore", "node": node_id, "to": [dst_parent.id, dst_name],
                  "replaced": existing.id if existing else ""}
            journal = self._journal_begin(layout, op)
            self._finish_restore(layout, op)
            self._journal_end(journal)
            self.propagate(space_id, dst_parent.id, item.node.size - (existing.size if existing else 0))
        return replace(item.node, parent_id=dst_parent.id, name=dst_name), existing is not None

    def restore_from_trashed_folder(self, space_id: str, top_id: str, names: list[str], dst_parent: NodeInfo,
                                    dst_name: str, overwrite: bool) -> tuple[NodeInfo, bool]:
        """Takes one item out of a deleted folder (`names` below the trash item `top_id`): a move,
        since the item itself was never flagged; the folder stays in the trash, smaller."""
        layout = self.layout(space_id)
        item = self.trash_item(space_id, top_id)
        if not names:
            raise InvalidArgument("no item inside the deleted folder named")
        child = self.resolve(space_id, names, start=item.node)[-1]
        moved, replaced = self.move(space_id, child, dst_parent, dst_name, overwrite)
        with flocked(layout.stripe(top_id)):
            top, origin = self._read_node(layout, top_id)
            if origin:  # still in the trash: its size no longer includes the restored item
                self._write_node(layout, replace(top, size=top.size - child.size), trashed=origin)
        return moved, replaced

    def _finish_restore(self, layout: SpaceLayout, op: dict) -> None:
        """The steps of a restore; each is idempotent, so a replay after a crash completes it."""
        node_id, (parent_id, name) = op["node"], op["to"]
        with flocked(layout.stripe(node_id)):
            node, origin = self._read_node(layout, node_id)
            if origin or node.parent_id != parent_id or node.name != name:
                self._write_node(layout, replace(node, parent_id=parent_id, name=name), sync_dir=False)
        self._replace_link(layout, parent_id, name, node_id)
        if op["replaced"]:
            with contextlib.suppress(NotFound):
                replaced, _ = self._read_node(layout, op["replaced"])
                self._mark_trashed(layout, replaced, parent_id, name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(layout.trash, node_id))
            fsync_dir(layout.trash)

    def purge_trash(self, space_id: str, node_id: str) -> int:
        """Deletes a trashed node, its subtree, their revisions and blobs for good. Removing the
        trash link is the commit point: after it, what is left is garbage `storage check` reclaims.
        Returns the bytes freed."""
        layout = self.layout(space_id)
        with flocked(layout.ns_lock):
            item = self.trash_item(space_id, node_id)
            os.unlink(os.path.join(layout.trash, node_id))
            fsync_dir(layout.trash)
        return self._remove_subtree(layout, item.node)

    def empty_trash(self, space_id: str, older_than_ns: int | None = None) -> tuple[int, int]:
        """Purges every trashed item (deleted before `older_than_ns`, when given). Returns
        (items, bytes freed)."""
        count = freed = 0
        for item in self.list_trash(space_id):
            if older_than_ns is not None and item.deleted_ns >= older_than_ns:
                continue
            with contextlib.suppress(NotFound):
                freed += self.purge_trash(space_id, item.node.id)
                count += 1
        return count, freed

    def _remove_subtree(self, layout: SpaceLayout, node: NodeInfo) -> int:
        freed = 0
        if node.is_folder:
            for entry in list(self._children_ids(layout, node.id)):
                try:
                    child, _ = self._read_node(layout, entry)
                except NotFound:
                    continue
                if child.parent_id == node.id:
                    freed += self._remove_subtree(layout, child)
            shutil.rmtree(layout.node_dir(node.id), ignore_errors=True)
        else:
            freed += node.size + revisions.remove_all(layout, self.blobs, node.id)
            self.blobs.delete(layout.space_id, node.blob_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(layout.meta_path(node.id))
        return freed

    def _children_ids(self, layout: SpaceLayout, folder_id: str) -> Iterator[str]:
        try:
            entries = os.scandir(os.fsencode(layout.node_dir(folder_id)))
        except (FileNotFoundError, NotADirectoryError):
            return
        with entries:
            for entry in entries:
                if not entry.name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(OSError):
                        yield os.readlink(entry.path).decode()

    def _origin_path(self, layout: SpaceLayout, parent_id: str, name: str) -> str:
        """`name`'s path below the space root, by following parent ids (best effort)."""
        names = [name]
        seen = set()
        cursor = parent_id
        while cursor and cursor != layout.space_id and cursor not in seen:
            seen.add(cursor)
            try:
                parent, _ = self._read_node(layout, cursor)
            except NotFound:
                break
            names.append(parent.name)
            cursor = parent.parent_id
        return "/".join(reversed(names))

    # ---------------------------------------------------------------- favorites

    def _favorites_path(self, user_id: str) -> str:
        return os.path.join(self.root, "favorites", check_id(user_id) + ".mpk")

    def favorites(self, user_id: str) -> list[tuple[str, str]]:
        """(space id, node id) of what the user marked; entries may be stale (a node deleted
        since): the flag on the node itself is the truth."""
        try:
            with open(self._favorites_path(user_id), "rb") as fh:
                return [tuple(item) for item in msgpack.unpackb(fh.read())]
        except FileNotFoundError:
            return []

    def set_favorite(self, user_id: str, space_id: str, node_id: str, on: bool) -> NodeInfo:
        """Marks or unmarks a node for one user: a flag on the node (cheap to render in listings)
        and an entry in the user's index (cheap to list all of them)."""
        key = FAVORITE_PREFIX + user_id

        def change(node: NodeInfo) -> NodeInfo:
            if (key in node.props) == on:
                return node
            props = dict(node.props)
            if on:
                props[key] = "1"
            else:
                props.pop(key, None)
            return replace(node, props=props)

        node = self.update_node(space_id, node_id, change, propagate=False)
        if node.parent_id:  # no propagation, so the parent's listing cache would still look current
            listing.drop(self.layout(space_id), node.parent_id)
        path = self._favorites_path(user_id)
        makedirs(os.path.dirname(path))
        with flocked(path + ".lock"):
            entries = [e for e in self.favorites(user_id) if e != (space_id, node_id)]
            if on:
                entries.append((space_id, node_id))
            write_atomic(path, msgpack.packb(entries))
        return node

    # ---------------------------------------------------------------- structure changes

    def move(self, space_id: str, node: NodeInfo, dst_parent: NodeInfo, dst_name: str,
             overwrite: bool, precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        """Moves or renames `node` in O(1), whatever its size. Returns (node, replaced)."""
        layout = self.layout(space_id)
        with flocked(layout.ns_lock):
            node = self._fresh(layout, node)
            dst_parent = self._fresh(layout, dst_parent)
            self._refuse_cycle(layout, node, dst_parent)
            existing = self._child(layout, dst_parent.id, dst_name)
            if precondition:
                precondition(existing)
            if existing is not None and existing.id == node.id:
                return node, False
            if existing is not None and not overwrite:
                raise AlreadyExists("the destination already exists")
            op = {"op": "move", "node": node.id, "from": [node.parent_id, node.name],
                  "to": [dst_parent.id, dst_name], "replaced": existing.id if existing else ""}
            journal = self._journal_begin(layout, op)
            # metadata first, then the link: a reader of the destination name sees the old node or
            # the moved one, never a link whose node disagrees (which would read as missing)
            moved = replace(node, parent_id=dst_parent.id, name=dst_name)
            with flocked(layout.stripe(node.id)):
                self._write_node(layout, moved, sync_dir=False)
            self._replace_link(layout, dst_parent.id, dst_name, node.id)
            self._unlink(layout, node.parent_id, node.name, node.id)
            if existing is not None:
                self._mark_trashed(layout, existing, dst_parent.id, dst_name)
            self._journal_end(journal)
            self.propagate(space_id, node.parent_id, -node.size)
            self.propagate(space_id, dst_parent.id, node.size - (existing.size if existing else 0))
        return moved, existing is not None

    def _fresh(self, layout: SpaceLayout, node: NodeInfo) -> NodeInfo:
        """The node as it is now, provided it is still where the caller found it: a request that
        addressed `a/b` must not act on the node after somebody renamed it to `a/c`."""
        current, trashed = self._read_node(layout, node.id)
        if trashed or current.parent_id != node.parent_id or current.name != node.name:
            raise NotFound("resource not found")
        return current

    def _refuse_cycle(self, layout: SpaceLayout, node: NodeInfo, dst_parent: NodeInfo) -> None:
        cursor: NodeInfo | None = dst_parent
        while cursor is not None:
            if cursor.id == node.id:
                raise Conflict("cannot move a folder into itself")
            if not cursor.parent_id:
                break
            cursor, _ = self._read_node(layout, cursor.parent_id)

    def delete(self, space_id: str, node: NodeInfo) -> None:
        """Moves the node (and so its subtree) to the space's trash in O(1)."""
        if node.is_root:
            raise InvalidArgument("the space root cannot be deleted")
        layout = self.layout(space_id)
        with flocked(layout.ns_lock):
            node = self._fresh(layout, node)
            self._mark_trashed(layout, node, node.parent_id, node.name)
            self._unlink(layout, node.parent_id, node.name, node.id)
            self.propagate(space_id, node.parent_id, -node.size)

    def _mark_trashed(self, layout: SpaceLayout, node: NodeInfo, parent_id: str, name: str) -> None:
        """The trash link first, then the flag (the commit point): a crash in between leaves a link
        to a live node, which listings skip and `storage check` removes, never a lost item."""
        trash_link = os.path.join(layout.trash, node.id)
        with contextlib.suppress(FileExistsError):
            os.symlink(node.id, trash_link)
        fsync_dir(layout.trash)
        with flocked(layout.stripe(node.id)):
            current, trashed = self._read_node(layout, node.id)
            if trashed:
                return
            origin = {"parent": parent_id, "name": name, "time": _now_ns(),
                      "path": self._origin_path(layout, parent_id, name)}
            self._write_node(layout, current, trashed=origin)

    def copy(self, space_id: str, node: NodeInfo, dst_parent: NodeInfo, dst_name: str, overwrite: bool,
             depth_infinity: bool, owner_id: str,
             precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        """Copies `node` (its subtree with `depth_infinity`) to `dst_parent/dst_name`. The copy is
        built unlinked and becomes visible in one step. Blobs are shared by hard link."""
        layout = self.layout(space_id)
        with flocked(layout.ns_lock):
            node = self._fresh(layout, node)
            dst_parent = self._fresh(layout, dst_parent)
            if node.is_folder:
                self._refuse_cycle(layout, node, dst_parent)
            existing = self._child(layout, dst_parent.id, dst_name)
            if precondition:
                precondition(existing)
            if existing is not None and not overwrite:
                raise AlreadyExists("the destination already exists")
            top = self._copy_tree(layout, node, dst_parent.id, dst_name, depth_infinity, owner_id)
            if existing is not None:
                self._replace_link(layout, dst_parent.id, dst_name, top.id)
                self._mark_trashed(layout, existing, dst_parent.id, dst_name)
            else:
                self._link(layout, dst_parent.id, dst_name, top.id)
            self.propagate(space_id, dst_parent.id, top.size - (existing.size if existing else 0))
        return top, existing is not None

    def _copy_tree(self, layout: SpaceLayout, src: NodeInfo, parent_id: str, name: str,
                   recursive: bool, owner_id: str) -> NodeInfo:
        now = _now_ns()
        copy_id = new_id()
        if not src.is_folder:
            blob_id = self.blobs.copy(layout.space_id, src.blob_id, src.size)
            node = replace(src, id=copy_id, parent_id=parent_id, name=name, blob_id=blob_id, locks=(),
                           tmtime_ns=now, owner_id=owner_id)
            self._write_node(layout, node)
            return node
        makedirs(layout.node_dir(copy_id))
        total, newest = 0, now
        if recursive:
            for child in list(self.iter_children(layout.space_id, src.id)):
                copied = self._copy_tree(layout, child, copy_id, child.name, True, owner_id)
                os.symlink(copied.id, os.path.join(layout.node_dir(copy_id), child.name))
                total += copied.size
                newest = max(newest, copied.tmtime_ns)
            fsync_dir(layout.node_dir(copy_id))
        node = replace(src, id=copy_id, parent_id=parent_id, name=name, size=total, locks=(),
                       tmtime_ns=newest, mtime_ns=src.mtime_ns, owner_id=owner_id)
        self._write_node(layout, node)
        return node

    # ---------------------------------------------------------------- journal

    def _journal_begin(self, layout: SpaceLayout, op: dict) -> str:
        path = os.path.join(layout.journal, f"{time.time_ns()}-{unique_suffix()}.mpk")
        write_atomic(path, msgpack.packb(op))
        return path

    def _journal_end(self, path: str) -> None:
        os.unlink(path)

    def replay_journal(self, space_id: str) -> int:
        """Finishes or abandons operations a crash interrupted. Returns how many it found.
        Only call while no other process writes to the space."""
        layout = self.layout(space_id)
        found = 0
        try:
            names = sorted(os.listdir(layout.journal))
        except FileNotFoundError:
            return 0
        for fname in names:
            path = os.path.join(layout.journal, fname)
            if fname.endswith(".tmp"):
                os.unlink(path)
                continue
            with open(path, "rb") as fh:
                op = msgpack.unpackb(fh.read(), raw=False)
            found += 1
            if op["op"] == "move":
                self._finish_move(layout, op)
            elif op["op"] == "restore":
                with contextlib.suppress(NotFound):
                    self._finish_restore(layout, op)
            os.unlink(path)
        if found:
            fsync_dir(layout.journal)
        return found

    def _finish_move(self, layout: SpaceLayout, op: dict) -> None:
        """Rolls an interrupted move forward: the intent was durable before any step was taken."""
        node_id = op["node"]
        (src_parent, src_name), (dst_parent, dst_name) = op["from"], op["to"]
        try:
            node, trashed = self._read_node(layout, node_id)
            self._read_node(layout, dst_parent)
        except NotFound:
            return
        if trashed:
            return
        if node.parent_id != dst_parent or node.name != dst_name:
            self._write_node(layout, replace(node, parent_id=dst_parent, name=dst_name))
        dst_link = os.path.join(layout.node_dir(dst_parent), dst_name)
        try:
            linked = os.readlink(dst_link) == node_id
        except OSError:
            linked = False
        if not linked:
            self._replace_link(layout, dst_parent, dst_name, node_id)
        self._unlink(layout, src_parent, src_name, node_id)
        if op["replaced"]:
            with contextlib.suppress(NotFound):
                replaced, _ = self._read_node(layout, op["replaced"])
                self._mark_trashed(layout, replaced, dst_parent, dst_name)
