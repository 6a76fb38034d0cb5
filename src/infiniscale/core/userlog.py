"""Notifications (oCIS's userlog): what happened to a user, kept until they dismiss it.

The consumer group `userlog` stores one record per recipient of a share, a space membership or a
space's end (the one who did it is never told; a group's members each get their own); listing
renders the records with oCIS's subjects and messages and forgets those whose item is gone. After
storing, a `UserNotified` event lets every process push the notification to the recipients' live
streams. Global notifications (the instance's deprovisioning) go to everybody.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from infiniscale.core.model import events
from infiniscale.core.model.errors import InvalidArgument, StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.ports.documents import DocumentStore
from infiniscale.core.ports.events import EventBus
from infiniscale.core.registry import SpaceRegistry

log = logging.getLogger("infiniscale.userlog")

GROUP = "userlog"
MAX_PER_USER = 1000  # the oldest go first


@dataclass(frozen=True)
class Template:
    subject: str
    message: str
    object_type: str  # share | storagespace


TEMPLATES: dict[str, Template] = {
    events.ShareCreated.type: Template("Resource shared", "{user} shared {resource} with you", "share"),
    events.ShareRemoved.type: Template("Resource unshared", "{user} unshared {resource} with you", "share"),
    events.ShareExpired.type: Template("Share expired", "Access to {resource} expired", "share"),
    events.SpaceShared.type: Template("Space shared", "{user} added you to Space {space}", "storagespace"),
    events.SpaceUnshared.type: Template("Removed from Space", "{user} removed you from Space {space}",
                                        "storagespace"),
    events.SpaceDisabled.type: Template("Space disabled", "{user} disabled Space {space}", "storagespace"),
    events.SpaceDeleted.type: Template("Space deleted", "{user} deleted Space {space}", "storagespace"),
}
TYPES = frozenset(TEMPLATES)
# these stay readable after their space or item is gone
GONE_IS_FINE = frozenset({events.SpaceDeleted.type, events.ShareRemoved.type, events.ShareExpired.type})

DEPROVISION = "deprovision"
DEPROVISION_SUBJECT = "Instance will be shut down and deprovisioned"
DEPROVISION_MESSAGE = ("Attention! The instance will be shut down and deprovisioned on {date}. Download all your "
                       "data before that date as no access past that date is possible.")


class Userlog:
    def __init__(self, docs: DocumentStore, registry: SpaceRegistry, users: Callable[[str], User | None],
                 group_members: Callable[[str], list[str]],
                 share_exists: Callable[[str], bool] = lambda share_id: True,
                 member_of: Callable[[User, str], bool] = lambda user, space_id: True) -> None:
        self.docs = docs
        self.registry = registry
        self.users = users
        self.group_members = group_members
        # what oCIS learns by looking the item up as the recipient: a share that was taken back, a
        # space the user left, no longer shows its invitation
        self.share_exists = share_exists
        self.member_of = member_of

    # ------------------------------------------------------------------ recording (consumer group)

    async def run(self, bus: EventBus) -> None:
        async for batch in bus.subscribe_batches(GROUP, TYPES):
            for event in batch:
                recipients, item = await asyncio.to_thread(self.record, event)
                if recipients and item is not None:
                    await bus.publish(events.UserNotified(
                        executant=event.executant, space_id=event.space_id, user_ids=tuple(recipients),
                        notification=orjson.dumps(item).decode()))

    def record(self, event: events.Event) -> tuple[list[str], dict | None]:
        """Stores the event for each recipient; returns who they are and the notification they get."""
        recipients = recipients_of(event, self.group_members)
        if not recipients:
            return [], None
        # the event's id makes a redelivered event overwrite its first copy instead of doubling it
        entry = {"id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{event.type}/{event.timestamp_ns}/{event.space_id}/"
                                                          f"{getattr(event, 'share_id', '')}")),
                 "type": event.type, "executant": event.executant,
                 "space": event.space_id, "node": getattr(event, "node_id", ""),
                 "share": getattr(event, "share_id", ""), "at": event.timestamp_ns,
                 "name": getattr(event, "name", "") or self._name_now(event)}
        for user_id in recipients:
            with self.docs.updating(_doc(user_id)) as doc:
                doc[entry["id"]] = entry
                for old in sorted(doc.values(), key=lambda e: e["at"])[:-MAX_PER_USER]:
                    doc.pop(old["id"], None)
        return recipients, self._render(entry)

    def _name_now(self, event: events.Event) -> str:
        """The item's or space's name while it still exists, for when it is gone later."""
        try:
            if TEMPLATES[event.type].object_type == "share":
                return self.registry.stat(event.space_id, getattr(event, "node_id", "")).name
            return str(self.registry.space_info(event.space_id).get("name", ""))
        except StorageError:
            return ""

    # ------------------------------------------------------------------ reading and dismissing

    def list(self, user: User) -> list[dict]:
        """The user's notifications, oldest first, global ones first; those about an item or space
        that is gone (or no longer reachable) are dropped for good."""
        out = self._globals()
        gone = []
        for record in sorted(self.docs.read(_doc(user.id)).values(), key=lambda e: e["at"]):
            item = self._render(record) if self._still_true(user, record) else None
            if item is None:
                gone.append(record["id"])
            else:
                out.append(item)
        if gone:
            self.dismiss(user, gone)
        return out

    def dismiss(self, user: User, ids: list[str]) -> None:
        """Unknown ids are ignored, as oCIS does."""
        with self.docs.updating(_doc(user.id)) as doc:
            for notification_id in ids:
                doc.pop(notification_id, None)

    def _still_true(self, user: User, record: dict) -> bool:
        if record["type"] == events.ShareCreated.type:
            return self.share_exists(record["share"])
        if record["type"] in (events.SpaceShared.type, events.SpaceDisabled.type):
            return self.member_of(user, record["space"])
        return True

    def _render(self, record: dict) -> dict | None:
        template = TEMPLATES.get(record["type"])
        if template is None:
            return None
        actor = self.users(record["executant"])
        storage = self.registry.storage_id_of(record["space"])
        space_ref = f"{storage}${record['space']}"
        params: dict = {"user": {"id": record["executant"], "name": actor.username if actor else "",
                                 "displayname": actor.display_name if actor else ""}}
        values = {"user": actor.display_name if actor else "somebody"}
        gone_is_fine = record["type"] in GONE_IS_FINE
        if template.object_type == "share":
            resource_id = f"{space_ref}!{record['node']}"
            name = self._current(lambda: self.registry.stat(record["space"], record["node"]).name)
            if name is None and not gone_is_fine:
                return None
            name = name or record.get("name", "")
            params["resource"] = {"id": resource_id, "name": name}
            params["share"] = {"id": record["share"]}
            values["resource"] = name
            object_id = resource_id
        else:
            name = self._current(lambda: str(self.registry.space_info(record["space"]).get("name", "")))
            if name is None and not gone_is_fine:
                return None
            name = name or record.get("name", "")
            params["space"] = {"id": space_ref, "name": name}
            values["space"] = name
            object_id = space_ref
        return {
            "notification_id": record["id"], "app": "userlog", "user": actor.username if actor else "",
            "datetime": rfc3339_nano(record["at"]), "object_id": object_id,
            "object_type": template.object_type, "subject": template.subject, "subjectRich": template.subject,
            "message": template.message.format(**values), "messageRich": template.message,
            "messageRichParameters": params,
        }

    @staticmethod
    def _current(lookup: Callable[[], str]) -> str | None:
        try:
            return lookup()
        except StorageError:
            return None

    # ------------------------------------------------------------------ global notifications

    def set_global(self, kind: str, data: object) -> None:
        """Announces the instance's deprovisioning to everybody (a second call replaces the first)."""
        if kind != DEPROVISION:
            raise InvalidArgument(f"unknown global notification type {kind!r}")
        date = data.get("deprovision_date") if isinstance(data, dict) else None
        if not isinstance(date, str) or not date:
            raise InvalidArgument("deprovision_date is missing")
        try:
            when = datetime.datetime.fromisoformat(date.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument("deprovision_date is not an RFC 3339 date") from None
        with self.docs.updating("global") as doc:
            doc[DEPROVISION] = {"date": date, "at": time_ns_of(when)}

    def remove_global(self, kinds: list[str]) -> None:
        with self.docs.updating("global") as doc:
            for kind in kinds:
                doc.pop(kind, None)

    def _globals(self) -> list[dict]:
        entry = self.docs.read("global").get(DEPROVISION)
        if not entry:
            return []
        return [{"notification_id": DEPROVISION, "app": "userlog", "user": "", "datetime": rfc3339_nano(entry["at"]),
                 "object_id": "", "object_type": "resource", "subject": DEPROVISION_SUBJECT,
                 "subjectRich": DEPROVISION_SUBJECT, "message": DEPROVISION_MESSAGE.format(date=entry["date"]),
                 "messageRich": DEPROVISION_MESSAGE, "messageRichParameters": {}}]


def recipients_of(event: events.Event, group_members: Callable[[str], list[str]]) -> list[str]:
    """Who an event is about (a group's members each), never the one who did it."""
    if isinstance(event, events.SpaceDisabled | events.SpaceDeleted):
        keys = event.members
    else:
        grantee = getattr(event, "grantee", "")
        keys = (f"{'g' if getattr(event, 'grantee_type', 'user') == 'group' else 'u'}:{grantee}",) if grantee else ()
    found: list[str] = []
    for key in keys:
        kind, _, principal = key.partition(":")
        for user_id in group_members(principal) if kind == "g" else [principal]:
            if user_id != event.executant and user_id not in found:
                found.append(user_id)
    return found


def rfc3339_nano(ns: int) -> str:
    """Go's RFC3339Nano in UTC: seconds, then the fraction without trailing zeros."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def time_ns_of(moment: datetime.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _doc(user_id: str) -> str:
    return f"users/{user_id}"
