"""Live updates for connected clients (oCIS's clientlog and sse services in one): each process listens
to every event and hands the ones a connected user should see to that user's open streams.

Who sees what, as in oCIS: a change to a file or folder goes to every member of its space (the one
who made it included: clients drop their own by the initiator id); a share or membership change
goes to the space's members and to whoever it was given to.

A stream acts for its user as the directory has them now, not as they were when it opened: whoever
leaves a group stops hearing of that group's spaces, and the stream of a deleted user ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from infiniscale.core.model import events
from infiniscale.core.model.errors import StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.ports.events import EventBus
from infiniscale.core.registry import SpaceRegistry
from infiniscale.core.spaces import Spaces

log = logging.getLogger("infiniscale.clientlog")

BACKLOG = 1000  # messages kept for one slow stream before it is dropped
UNVERSIONED_RECHECK_S = 30.0
LISTEN_LINGER_S = 60.0  # a process keeps listening this long after its last stream closed
SUBSCRIBE_WAIT_S = 5.0  # the longest a stream waits for the subscription before it opens anyway

FILE_EVENTS: dict[type[events.Event], str] = {
    events.ContainerCreated: "folder-created",
    events.FileUploaded: "postprocessing-finished",
    events.FileVersionRestored: "postprocessing-finished",
    events.ItemTrashed: "item-trashed",
    events.ItemRestored: "item-restored",
    events.ItemMoved: "item-moved",  # item-renamed when only the name changed
    events.ItemCopied: "postprocessing-finished",
    events.FileLocked: "file-locked",
    events.FileUnlocked: "file-unlocked",
    events.FileTouched: "file-touched",
}
SHARE_EVENTS: dict[type[events.Event], str] = {
    events.ShareCreated: "share-created",
    events.ShareUpdated: "share-updated",
    events.ShareRemoved: "share-removed",
    events.LinkCreated: "link-created",
    events.LinkUpdated: "link-updated",
    events.LinkRemoved: "link-removed",
    events.SpaceShared: "space-member-added",
    events.SpaceUnshared: "space-member-removed",
}
TYPES = frozenset(cls.type for cls in (*FILE_EVENTS, *SHARE_EVENTS, events.UserNotified))


@dataclass(frozen=True)
class Message:
    type: str
    data: dict


END = Message("", {})  # the last message of a stream: its user is gone, or the server stops


@dataclass(eq=False)
class _Stream:
    user: User
    queue: asyncio.Queue[Message]
    ended: bool = False


class ClientLog:
    def __init__(self, spaces: Spaces, registry: SpaceRegistry,
                 group_members: Callable[[str], list[str]] | None = None,
                 user_by_id: Callable[[str], User | None] | None = None,
                 directory_version: Callable[[], Any] = lambda: None, linger_s: float = LISTEN_LINGER_S) -> None:
        self.spaces = spaces
        self.registry = registry
        self.group_members = group_members or (lambda group_id: [])
        self.user_by_id = user_by_id
        self.directory_version = directory_version
        self._directory_seen: Any = None
        self._streams: list[_Stream] = []
        self.linger_s = linger_s
        self._wanted = asyncio.Event()  # a stream is open, or opening, and nobody listens yet
        self._live: asyncio.Future[None] | None = None  # done once the listener is subscribed
        self._alone_since = time.monotonic()  # when the last stream closed

    @contextlib.asynccontextmanager
    async def connect(self, user: User) -> AsyncIterator[asyncio.Queue[Message]]:
        """A stream of live updates for `user`; events published after this returns reach it."""
        stream = _Stream(user, asyncio.Queue(BACKLOG))  # the user as just authenticated: current
        self._streams.append(stream)
        try:
            await self._listening()
            yield stream.queue
        finally:
            self._streams.remove(stream)
            if not self._streams:
                self._alone_since = time.monotonic()

    def end_all(self) -> None:
        """Ends every open stream, as the server stops: clients open a new one when it is back."""
        for stream in self._streams:
            if stream.ended:
                continue
            stream.ended = True
            if stream.queue.full():  # a stream nobody reads loses its oldest message, not its end
                stream.queue.get_nowait()
            stream.queue.put_nowait(END)

    async def _listening(self) -> None:
        if self._live is None:
            self._live = asyncio.get_running_loop().create_future()
            self._wanted.set()
        try:  # a bus that is away delays the stream a little; it opens anyway
            await asyncio.wait_for(asyncio.shield(self._live), SUBSCRIBE_WAIT_S)
        except TimeoutError:  # the stream works without; it may miss what comes meanwhile
            log.warning("live updates: no subscription to the events after %ss", SUBSCRIBE_WAIT_S)

    async def run(self, bus: EventBus) -> None:
        """Listens while streams are open, and `linger_s` after the last one closed (clients
        reconnect): a process nobody follows has the events not sent to it at all. A stream
        waits until the subscription stands, so it misses nothing published after it opened."""
        while True:
            if self._streams and self._live is None:  # a listener that failed, with streams open
                self._live = asyncio.get_running_loop().create_future()
                self._wanted.set()
            await self._wanted.wait()
            live = self._live
            assert live is not None
            try:
                async with contextlib.aclosing(bus.listen(TYPES, subscribed=partial(_settle, live))) as feed:
                    async for event in feed:
                        if self._streams:
                            try:
                                await self.dispatch(event)
                            except Exception:
                                log.exception("live update for %s failed", event.type)
                            continue
                        if time.monotonic() - self._alone_since >= self.linger_s:  # seen at the next event
                            # from here on, a stream that opens asks for a new subscription
                            self._wanted.clear()
                            self._live = None
                            break
            except BaseException:
                if self._live is live:
                    self._wanted.clear()
                    self._live = None
                raise

    async def _follow_directory(self) -> None:
        """Takes each stream's user afresh from the directory when it has changed (one stat when not)."""
        if self.user_by_id is None:
            return
        version = self.directory_version()  # a stat of a local file
        versioned = version is not None
        if not versioned:  # a directory that cannot tell (LDAP): looked at again now and then
            version = int(time.monotonic() // UNVERSIONED_RECHECK_S)
        if version == self._directory_seen:
            return
        self._directory_seen = version
        streams = [s for s in self._streams if not s.ended]
        current = await asyncio.to_thread(lambda: [self.user_by_id(s.user.id) for s in streams])  # type: ignore[misc]
        for stream, user in zip(streams, current, strict=True):
            if user is not None:
                stream.user = user
                continue
            if not versioned:  # an LDAP lookup that failed says nothing about the user: keep the stream
                continue
            stream.ended = True
            if not stream.queue.full():
                stream.queue.put_nowait(END)

    async def dispatch(self, event: events.Event) -> None:
        await self._follow_directory()
        if isinstance(event, events.UserNotified):  # a new notification, to its recipients only
            self._push([s for s in self._streams if s.user.id in event.user_ids],
                       Message("userlog-notification", json.loads(event.notification)))
            return
        kind = type(event)
        if kind in SHARE_EVENTS:
            grantee = getattr(event, "grantee", "")
            name = SHARE_EVENTS[kind]
            affected = self._affected(event)
        else:
            grantee = ""
            name = FILE_EVENTS[kind]
            affected = None
        space = self.spaces.peek(event.space_id)
        if space is None:
            space = await asyncio.to_thread(self._space, event.space_id)
        recipients = [s for s in self._streams
                      if (space is not None and self.spaces.role_of(s.user, space) is not None)
                      or (grantee and (s.user.id == grantee or grantee in s.user.groups))]
        if not recipients:
            return
        data = await asyncio.to_thread(self._data, event, affected)
        if isinstance(event, events.ItemMoved) and event.parent_id == event.old_parent_id:
            name = "item-renamed"
        self._push(recipients, Message(name, data))

    def _push(self, recipients: list[_Stream], message: Message) -> None:
        for stream in recipients:
            if stream.ended:
                continue
            if stream.queue.full():
                log.warning("a live update stream of %s is not read; dropping a message", stream.user.username)
                continue
            stream.queue.put_nowait(message)

    def _space(self, space_id: str):
        try:
            return self.spaces.get(space_id)
        except StorageError:
            return None

    def _affected(self, event: events.Event) -> list[str] | None:
        grantee = getattr(event, "grantee", "")
        if not grantee:
            return None
        if getattr(event, "grantee_type", "user") == "group":
            return self.group_members(grantee)
        return [grantee]

    def _data(self, event: events.Event, affected: list[str] | None) -> dict:
        storage = self.registry.storage_id_of(event.space_id)
        node_id = getattr(event, "node_id", "") or event.space_id
        node: NodeInfo | None = None
        if not isinstance(event, events.ItemTrashed):
            try:
                node = self.registry.stat(event.space_id, node_id)
            except StorageError:
                node = None
        parent = node.parent_id if node is not None and node.parent_id else ""
        return {
            "parentitemid": f"{storage}${event.space_id}!{parent}" if parent else "",
            "itemid": f"{storage}${event.space_id}!{node_id}",
            "spaceid": f"{storage}${event.space_id}",
            "initiatorid": event.initiator_id,
            "etag": node.etag if node is not None else "",
            "affecteduserids": affected,
        }


def _settle(live: asyncio.Future[None]) -> None:
    if not live.done():
        live.set_result(None)
