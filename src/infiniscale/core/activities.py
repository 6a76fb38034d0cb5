"""Activities (oCIS's activitylog): who did what to a resource and to everything below it.

The consumer group `activitylog` stores each file, share and space-membership event once and links
it to the resource it concerns (depth 0) and to every folder above it up to the space root (depth
1, 2, ...). A query names one resource and optionally how deep below it to look, how many, which
order and which time window (oCIS's KQL: `itemid:… AND depth:… AND limit:… AND sort:… AND date>…`);
names are those the resources carry now, or the ones they had when they are gone.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from infiniscale.core.batch_lookups import BatchLookups, Lookups
from infiniscale.core.files import FileService
from infiniscale.core.model import events
from infiniscale.core.model.errors import Forbidden, InvalidArgument, StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.ports.activities import ActivityQuery, ActivityStore, Entry
from infiniscale.core.ports.events import EventBus
from infiniscale.core.registry import SpaceRegistry
from infiniscale.core.spaces import READ
from infiniscale.core.userlog import rfc3339_nano

log = logging.getLogger("infiniscale.activities")

GROUP = "activitylog"

# what happened -> oCIS's message (ours for a restore from the trash bin, which oCIS does not show)
MESSAGES = {
    "added": "{user} added {resource} to {folder}",
    "updated": "{user} updated {resource} in {folder}",
    "deleted": "{user} deleted {resource} from {folder}",
    "moved": "{user} moved {resource} to {folder}",
    "renamed": "{user} renamed {oldResource} to {resource}",
    "restored": "{user} restored {resource} to {folder}",
    "shared": "{user} shared {resource} with {sharee}",
    "share-updated": "{user} updated {field} for the {resource}",
    "unshared": "{user} removed {sharee} from {resource}",
    "link-created": "{user} shared {resource} via link",
    "link-updated": "{user} updated {field} for a link {token} on {resource}",
    "link-removed": "{user} removed link to {resource}",
    "member-added": "{user} added {sharee} as member of {space}",
    "member-removed": "{user} removed {sharee} from {space}",
}
TYPES = frozenset({
    events.ContainerCreated.type, events.FileUploaded.type, events.FileTouched.type, events.ItemCopied.type,
    events.ItemMoved.type, events.ItemTrashed.type, events.ItemRestored.type, events.FileVersionRestored.type,
    events.ShareCreated.type, events.ShareUpdated.type, events.ShareRemoved.type, events.LinkCreated.type,
    events.LinkUpdated.type, events.LinkRemoved.type, events.SpaceShared.type, events.SpaceUnshared.type,
    events.SpaceDeleted.type,
})


@dataclass(frozen=True)
class Principals:
    """Display names of users and groups, for the `user` and `sharee` variables."""

    user_name: Callable[[str], str]
    group_name: Callable[[str], str]


class Activities:
    def __init__(self, store: ActivityStore, registry: SpaceRegistry, principals: Principals,
                 files: FileService | None = None, write_buffer_s: float = 0.0) -> None:
        self.store = store
        self.registry = registry
        self.principals = principals
        self.files = files  # for queries (who may read what); a consumer-only process has none
        self.write_buffer_s = write_buffer_s

    # ------------------------------------------------------------------ recording (consumer group)

    async def run(self, bus: EventBus) -> None:
        """Records what happens, gathering events for `write_buffer_s` after the first of a batch
        (oCIS's ACTIVITYLOG_WRITE_BUFFER_DURATION): file events carry the folders they happened in,
        so a batch recorded later still places them where they were."""
        async for batch in bus.subscribe_batches(GROUP, TYPES, linger_s=self.write_buffer_s):
            await asyncio.to_thread(self.record, batch)

    def record(self, batch: list[events.Event]) -> None:
        """Records a batch of events in one transaction (a purged space's in order with the rest)."""
        entries: list[Entry] = []
        look = BatchLookups(self.registry)
        for event in batch:
            if isinstance(event, events.SpaceDeleted):
                if entries:
                    self.store.add_many(entries)
                    entries = []
                self.store.forget_space(event.space_id)
                continue
            record = self._record_of(event, look)
            if record is None:
                continue
            # the event's own fields make its id: a redelivered event lands on its first copy
            key = "/".join(str(v) for v in event.to_dict().values())
            entries.append((str(uuid.uuid5(uuid.NAMESPACE_OID, key)), event.timestamp_ns, record,
                            self._links(event, record, look)))
        if entries:
            self.store.add_many(entries)

    def _record_of(self, event: events.Event, look: Lookups) -> dict | None:
        """What to keep of the event: its kind, the ids, and the names as they are now."""
        record: dict = {"executant": event.executant, "space": event.space_id}
        if isinstance(event, events.ContainerCreated | events.FileTouched | events.ItemCopied):
            record.update(kind="added", node=event.node_id, parent=event.parent_id, name=event.name)
        elif isinstance(event, events.FileUploaded):
            record.update(kind="added" if event.new else "updated", node=event.node_id, parent=event.parent_id,
                          name=event.name)
        elif isinstance(event, events.FileVersionRestored):
            record.update(kind="updated", node=event.node_id, parent=event.parent_id, name=event.name)
        elif isinstance(event, events.ItemMoved):
            renamed = event.parent_id == event.old_parent_id
            record.update(kind="renamed" if renamed else "moved", node=event.node_id, parent=event.parent_id,
                          name=event.name, old_name=event.old_name)
        elif isinstance(event, events.ItemTrashed):
            record.update(kind="deleted", node=event.node_id, parent=event.parent_id, name=event.name)
        elif isinstance(event, events.ItemRestored):
            record.update(kind="restored", node=event.node_id, parent=event.parent_id, name=event.name)
        elif isinstance(event, events.ShareCreated | events.ShareRemoved):
            record.update(kind="shared" if isinstance(event, events.ShareCreated) else "unshared",
                          node=event.node_id, share=event.share_id, sharee=_sharee_key(event))
        elif isinstance(event, events.ShareUpdated):
            record.update(kind="share-updated", node=event.node_id, share=event.share_id,
                          fields=list(event.fields) or ["permission"])
        elif isinstance(event, events.LinkCreated | events.LinkRemoved):
            record.update(kind="link-created" if isinstance(event, events.LinkCreated) else "link-removed",
                          node=event.node_id, share=event.share_id)
        elif isinstance(event, events.LinkUpdated):
            record.update(kind="link-updated", node=event.node_id, share=event.share_id, token=event.token,
                          fields=list(event.fields) or ["permission"])
        elif isinstance(event, events.SpaceShared | events.SpaceUnshared):
            record.update(kind="member-added" if isinstance(event, events.SpaceShared) else "member-removed",
                          node=event.space_id, sharee=_sharee_key(event))
        else:
            return None
        if "name" not in record:
            record["name"] = self._name_now(event.space_id, record["node"], look)
        if "parent" not in record:
            record["parent"] = self._parent_now(event.space_id, record["node"], look)
        record["parent_name"] = self._name_now(event.space_id, record["parent"], look) if record["parent"] else ""
        record["space_name"] = self._space_name(event.space_id, look)
        return record

    def _links(self, event: events.Event, record: dict, look: Lookups) -> list[tuple[str, int]]:
        """The resource at depth 0, then each folder above it. A trashed item is no longer in its
        folder: as in oCIS, its folder and those above count from 0 again."""
        space_id, node_id = event.space_id, record["node"]
        links = [(node_id, 0)]
        if node_id == space_id:
            return links
        first = 0 if record["kind"] == "deleted" else 1
        if known := getattr(event, "ancestors", ()):  # where it was when it happened
            return links + [(folder, first + i) for i, folder in enumerate(reversed(known))]
        start, depth = (record["parent"], 0) if record["kind"] == "deleted" else (node_id, None)
        try:
            chain = look.ancestors(space_id, look.stat(space_id, start))
        except StorageError:  # gone already: its last known folder and what is above that
            try:
                chain = look.ancestors(space_id, look.stat(space_id, record["parent"]))
                depth = 1
            except StorageError:
                return links
        above = [n.id for n in reversed(chain)]
        if depth is None:  # the chain ends with the node itself
            above, depth = above[1:], 1
        links += [(ancestor, depth + i) for i, ancestor in enumerate(above) if ancestor != node_id]
        return links

    def _name_now(self, space_id: str, node_id: str, look: Lookups) -> str:
        if node_id == space_id:
            return self._space_name(space_id, look)
        try:
            return look.stat(space_id, node_id).name
        except StorageError:
            return ""

    def _parent_now(self, space_id: str, node_id: str, look: Lookups) -> str:
        if node_id == space_id:
            return ""
        try:
            return look.stat(space_id, node_id).parent_id
        except StorageError:
            return ""

    def _space_name(self, space_id: str, look: Lookups) -> str:
        try:
            return str(look.space_info(space_id).get("name", ""))
        except StorageError:
            return ""

    # ------------------------------------------------------------------ querying

    async def list(self, user: User, kql: str) -> list[dict]:
        """The activities of the resource the query names, if the user may see who has access to it
        (oCIS's ListGrants permission: space members, not the recipients of a plain share)."""
        assert self.files is not None
        rid, query = parse_query(kql)
        chain = await self.files.resolve_id(user, rid, [])
        _space, role = await self.files._check_access(user, rid.space_id, READ, chain)
        if not role.may("list_grants"):
            raise Forbidden("no permission to list the activities of this resource")
        rows = await asyncio.to_thread(self.store.query, ActivityQuery(rid.node_id, *query))
        return await asyncio.to_thread(self._render_all, rows)

    def _render_all(self, rows: list[tuple[str, int, dict]]) -> list[dict]:
        names: dict[tuple[str, str], str] = {}  # one lookup per node for the whole answer
        return [self._render(event_id, at, record, names) for event_id, at, record in rows]

    def _render(self, event_id: str, at: int, record: dict, names: dict[tuple[str, str], str]) -> dict:
        space_id = record["space"]
        space_ref = f"{self.registry.storage_id_of(space_id)}${space_id}"

        def name(node_id: str, fallback: str) -> str:
            key = (space_id, node_id)
            if key not in names:
                names[key] = self._name_now(space_id, node_id, self.registry)
            return names[key] or fallback

        node = record["node"]
        variables: dict = {"user": {"id": record["executant"],
                                    "displayName": self.principals.user_name(record["executant"])}}
        variables["resource"] = {"id": f"{space_ref}!{node}", "name": name(node, record.get("name", ""))}
        parent = record.get("parent", "")
        if parent:
            variables["folder"] = {"id": f"{space_ref}!{parent}", "name": name(parent, record.get("parent_name", ""))}
        variables["space"] = {"id": space_ref, "name": name(space_id, record.get("space_name", ""))}
        if record.get("old_name"):
            variables["oldResource"] = {"id": f"{space_ref}!{node}", "name": record["old_name"]}
        sharee = record.get("sharee", "")
        if sharee:
            kind, _, principal = sharee.partition(":")
            lookup = self.principals.group_name if kind == "g" else self.principals.user_name
            variables["sharee"] = {"id": principal, "displayName": lookup(principal)}
        if record.get("fields"):
            variables["field"] = {"id": "", "name": ", ".join(record["fields"])}
        if record["kind"] == "link-updated":
            variables["token"] = {"id": record.get("share", ""), "name": record.get("token", "")}
        return {"id": event_id, "times": {"recordedTime": rfc3339_nano(at)},
                "template": {"message": MESSAGES[record["kind"]], "variables": variables}}


def _sharee_key(event: events.Event) -> str:
    grantee = getattr(event, "grantee", "")
    return f"{'g' if getattr(event, 'grantee_type', '') == 'group' else 'u'}:{grantee}" if grantee else ""


# ---------------------------------------------------------------------- the query language

_TERM = re.compile(r'^(?P<key>[A-Za-z]+)\s*(?P<op>:|>=|<=|>|<)\s*(?P<value>"[^"]*"|\S+)$')


def parse_query(kql: str) -> tuple[ResourceId, tuple]:
    """`itemid:<id> AND depth:<n> AND limit:<n> AND sort:asc|desc AND date>… AND date<…` (only AND
    joins terms; itemid is required) -> the resource and ActivityQuery's other fields."""
    if not kql.strip():
        raise InvalidArgument("missing kql query")
    item = ""
    depth, limit, descending = -1, 0, False
    after: int | None = None
    before: int | None = None
    for term in re.split(r"\s+AND\s+", kql.strip()):
        match = _TERM.match(term.strip())
        if match is None:
            raise InvalidArgument(f"unsupported query term {term.strip()!r}: only AND-joined itemid, depth, "
                                  "limit, sort and date terms are understood")
        key, op, value = match["key"].lower(), match["op"], match["value"].strip('"')
        if key == "itemid" and op == ":":
            item = value
        elif key in ("depth", "limit") and op == ":":
            if not re.fullmatch(r"-?\d+", value):
                raise InvalidArgument(f"{key} must be a number")
            if key == "depth":
                depth = int(value)
            else:
                limit = max(0, int(value))
        elif key == "sort" and op == ":" and value.lower() in ("asc", "desc"):
            descending = value.lower() == "desc"
        elif key == "date" and op != ":":
            moment = _time_ns(value)
            if op in (">", ">="):
                after = moment - (1 if op == ">=" else 0)
            else:
                before = moment + (1 if op == "<=" else 0)
        else:
            raise InvalidArgument(f"unsupported query term {term.strip()!r}")
    if not item:
        raise InvalidArgument("the query needs an itemid")
    return ResourceId.parse(item), (depth, limit, descending, after, before)


NS_LIMIT = 2**63 - 2
_FRACTION = re.compile(r"\.(\d+)")


def _time_ns(text: str) -> int:
    """RFC 3339 (or a date) to ns, keeping all nine digits of a recordedTime's fraction."""
    fraction = _FRACTION.search(text)
    digits = fraction[1] if fraction else ""
    try:
        moment = datetime.datetime.fromisoformat(_FRACTION.sub("", text, count=1).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"invalid date {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    ns = int(moment.timestamp()) * 1_000_000_000 + int((digits + "000000000")[:9])
    return max(-NS_LIMIT, min(NS_LIMIT, ns))  # beyond ~2262 ns no longer fit in 64 bits
