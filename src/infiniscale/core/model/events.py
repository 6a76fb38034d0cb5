"""Events the core publishes after each durable change. `type` is stable on the wire.

`ancestors`, on the events of a change in the tree, holds the ids of the folders from the space
root down to the item's (new) parent as they were when the change was made, so a consumer that
handles the event later does not place it where a later move put things. Every publisher has that
chain (paths through a share or by id are resolved from the space root too); it is empty in events
stored by earlier versions, and the consumer then looks the folders up.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

# the client session behind the current request (its Initiator-ID header): clients recognise the
# live updates of their own changes by it
initiator: ContextVar[str] = ContextVar("initiator", default="")


@dataclass(frozen=True, kw_only=True)
class Event:
    type: ClassVar[str] = "Event"
    executant: str
    space_id: str
    timestamp_ns: int = field(default_factory=time.time_ns)
    initiator_id: str = field(default_factory=initiator.get)

    def to_dict(self) -> dict[str, Any]:
        # fields hold strings, numbers and tuples of strings: a shallow copy is a whole one, and
        # several times cheaper than asdict's deep copy
        return {"type": self.type, **vars(self)}


@dataclass(frozen=True, kw_only=True)
class ContainerCreated(Event):
    type: ClassVar[str] = "ContainerCreated"
    node_id: str
    parent_id: str
    name: str
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FileUploaded(Event):
    type: ClassVar[str] = "FileUploaded"
    node_id: str
    parent_id: str
    name: str
    size: int
    new: bool
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FileTouched(Event):
    type: ClassVar[str] = "FileTouched"
    node_id: str
    parent_id: str
    name: str
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ItemMoved(Event):
    type: ClassVar[str] = "ItemMoved"
    node_id: str
    old_parent_id: str
    old_name: str
    parent_id: str
    name: str
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ItemCopied(Event):
    type: ClassVar[str] = "ItemCopied"
    source_id: str
    node_id: str
    parent_id: str
    name: str
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ItemTrashed(Event):
    type: ClassVar[str] = "ItemTrashed"
    node_id: str
    parent_id: str
    name: str
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ItemRestored(Event):
    type: ClassVar[str] = "ItemRestored"
    node_id: str
    parent_id: str
    name: str
    old_parent_id: str
    old_name: str
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ItemPurged(Event):
    type: ClassVar[str] = "ItemPurged"
    node_id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class FileVersionRestored(Event):
    type: ClassVar[str] = "FileVersionRestored"
    node_id: str
    parent_id: str
    name: str
    key: str
    ancestors: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TagsAdded(Event):
    type: ClassVar[str] = "TagsAdded"
    node_id: str
    tags: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TagsRemoved(Event):
    type: ClassVar[str] = "TagsRemoved"
    node_id: str
    tags: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SearchIndexRequested(Event):
    """`infiniscale search index` asks the process that keeps the index to rebuild a space's part."""

    type: ClassVar[str] = "SearchIndexRequested"


@dataclass(frozen=True, kw_only=True)
class PropertiesUpdated(Event):
    type: ClassVar[str] = "PropertiesUpdated"
    node_id: str


@dataclass(frozen=True, kw_only=True)
class FileLocked(Event):
    type: ClassVar[str] = "FileLocked"
    node_id: str


@dataclass(frozen=True, kw_only=True)
class FileUnlocked(Event):
    type: ClassVar[str] = "FileUnlocked"
    node_id: str


@dataclass(frozen=True, kw_only=True)
class SpaceCreated(Event):
    type: ClassVar[str] = "SpaceCreated"
    space_type: str
    owner_id: str


@dataclass(frozen=True, kw_only=True)
class ShareCreated(Event):
    type: ClassVar[str] = "ShareCreated"
    share_id: str
    node_id: str
    grantee_type: str  # user | group
    grantee: str
    role_id: str


@dataclass(frozen=True, kw_only=True)
class ShareUpdated(Event):
    type: ClassVar[str] = "ShareUpdated"
    share_id: str
    node_id: str
    role_id: str
    expires: str
    fields: tuple[str, ...] = ()  # what changed, in oCIS's words: "permission", "expiration date"


@dataclass(frozen=True, kw_only=True)
class ShareRemoved(Event):
    type: ClassVar[str] = "ShareRemoved"
    share_id: str
    node_id: str
    grantee_type: str = ""  # user | group
    grantee: str = ""


@dataclass(frozen=True, kw_only=True)
class SpaceShared(Event):
    """A user or group became a member of a project space (or got another role)."""

    type: ClassVar[str] = "SpaceShared"
    grantee_type: str  # user | group
    grantee: str
    role: str


@dataclass(frozen=True, kw_only=True)
class SpaceUnshared(Event):
    type: ClassVar[str] = "SpaceUnshared"
    grantee_type: str
    grantee: str


@dataclass(frozen=True, kw_only=True)
class ShareStateChanged(Event):
    """A recipient accepted, declined or hid a share (state: 0 accepted, 1 pending, 2 declined)."""

    type: ClassVar[str] = "ShareStateChanged"
    share_id: str
    state: int


@dataclass(frozen=True, kw_only=True)
class LinkCreated(Event):
    type: ClassVar[str] = "LinkCreated"
    share_id: str
    node_id: str
    link_type: str


@dataclass(frozen=True, kw_only=True)
class LinkUpdated(Event):
    type: ClassVar[str] = "LinkUpdated"
    share_id: str
    node_id: str
    link_type: str
    token: str = ""
    fields: tuple[str, ...] = ()  # "permission", "password", "expiration date", "display name"


@dataclass(frozen=True, kw_only=True)
class LinkRemoved(Event):
    type: ClassVar[str] = "LinkRemoved"
    share_id: str
    node_id: str


@dataclass(frozen=True, kw_only=True)
class ShareExpired(Event):
    """A user or group share reached its expiry date and was removed (executant: who had shared)."""

    type: ClassVar[str] = "ShareExpired"
    share_id: str
    node_id: str
    grantee_type: str
    grantee: str


@dataclass(frozen=True, kw_only=True)
class SpaceDisabled(Event):
    """A project space was disabled; `members` are its member keys (`u:<id>`, `g:<id>`)."""

    type: ClassVar[str] = "SpaceDisabled"
    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SpaceDeleted(Event):
    """A disabled space was purged; name and members are kept here because the space is gone."""

    type: ClassVar[str] = "SpaceDeleted"
    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UserNotified(Event):
    """A notification was stored for these users: each process pushes it to their open live streams."""

    type: ClassVar[str] = "UserNotified"
    user_ids: tuple[str, ...]
    notification: str  # the notification as the notifications API renders it, in JSON
