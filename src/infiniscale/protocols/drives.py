"""Libre Graph drives: spaces as drive objects, their lifecycle and their members, as oCIS answers
them (`/me/drives`, `/me/drive`, `/drives[/{id}]`, `/drives/{id}/root/invite|permissions`,
`/roleManagement/permissions/roleDefinitions`). The rules are the core's (core/spaces.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from infiniscale.core import unified_roles
from infiniscale.core.files import FileService
from infiniscale.core.model import events
from infiniscale.core.model.errors import AlreadyExists, Conflict, Forbidden, InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import NodeInfo, etag_hash
from infiniscale.core.roles import can
from infiniscale.core.sharing import SHARE_JAIL, SHARE_JAIL_DRIVE
from infiniscale.core.spaces import (
    MANAGE,
    SPACE_ROLES,
    Member,
    Space,
    SpaceRole,
    format_time,
    project_alias,
    role_by_id,
)
from infiniscale.core.unified_roles import UnifiedRole
from infiniscale.protocols.graph_sharing import GraphSharing, SharingError, granted_to, role_definition
from infiniscale.protocols.webdav.properties import mime_type


class DriveError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


_CORE_ERRORS: dict[type[Exception], tuple[int, str]] = {
    NotFound: (404, "itemNotFound"), Forbidden: (403, "accessDenied"),
    Conflict: (400, "invalidRequest"), InvalidArgument: (400, "invalidRequest"),
}


def drive_error(exc: NotFound | Forbidden | Conflict | InvalidArgument) -> DriveError:
    """Core errors in Graph's words."""
    status, code = _CORE_ERRORS[type(exc)]
    return DriveError(status, code, str(exc) or code)


_NO_SPACE = Space(id="", type="", name="", owner_id="")
_FILTER = re.compile(r"^driveType\s+eq\s+'?([a-z]+)'?$")
_ORDER = {"name": lambda d: d["name"].casefold(), "lastModifiedDateTime": lambda d: d["lastModifiedDateTime"]}


class DrivesApi:
    def __init__(self, files: FileService, directory: Any, base_url: str,
                 roles: tuple[UnifiedRole, ...] = unified_roles.available(),
                 sharing: GraphSharing | None = None) -> None:
        """`roles`: the unified roles enabled (GRAPH_AVAILABLE_ROLES); `sharing`: the sharing
        endpoints on drive items."""
        self.roles = roles
        self.sharing = sharing
        self.files = files
        self.spaces = files.spaces
        self.directory = directory
        self.base_url = base_url

    async def _run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return await self.files._run(fn, *args, **kwargs)

    def handles(self, parts: list[str]) -> bool:
        return (parts[:1] == ["drives"] or parts[:2] in (["me", "drives"], ["me", "drive"])
                or parts[:3] == ["roleManagement", "permissions", "roleDefinitions"])

    async def route(self, method: str, parts: list[str], query: dict[str, str], headers: Callable[[str], str | None],
                    body: Callable, actor: User) -> tuple[int, object]:
        try:
            if self.sharing is not None and GraphSharing.handles(parts):
                return await self.sharing.route(method, parts, body, actor)
            return await self._route(method, parts, query, headers, body, actor)
        except (NotFound, Forbidden, Conflict, InvalidArgument) as exc:
            raise drive_error(exc) from None
        except AlreadyExists as exc:
            raise DriveError(409, "nameAlreadyExists", str(exc)) from None
        except SharingError as exc:
            raise DriveError(exc.status, exc.code, str(exc)) from None

    async def _route(self, method, parts, query, headers, body, actor) -> tuple[int, object]:
        if parts[:3] == ["roleManagement", "permissions", "roleDefinitions"] and method == "GET":
            if len(parts) == 4:
                role = next((r for r in self.roles if r.id == parts[3]), None)
                if role is None:
                    raise DriveError(404, "itemNotFound", "role not found")
                return 200, role_definition(role)
            return 200, [role_definition(role) for role in self.roles]
        if parts == ["me", "drive"] and method == "GET":
            await self.files.ensure_personal_space(actor)
            space = await self._run(self.spaces.get, actor.id)
            return 200, await self.drive(space, SPACE_ROLES["manager"], actor)
        if parts == ["me", "drive", "root", "children"] and method == "GET":
            space_id = await self.files.ensure_personal_space(actor)
            return 200, {"value": await self._children(actor, space_id, space_id)}
        if parts == ["me", "drives"] and method == "GET":
            return 200, {"value": await self._list(actor, query, everything=False, shares=True)}
        if parts == ["drives"] and method == "GET":
            return 200, {"value": await self._list(actor, query, everything=can(actor.role, "Drives.List"))}
        if parts == ["drives"] and method == "POST":
            doc = await body()
            quota = (doc.get("quota") or {}).get("total") if isinstance(doc.get("quota"), dict) else None
            if doc.get("driveType", "project") != "project":
                raise DriveError(400, "invalidRequest", "only project drives can be created")
            space = await self._run(self.spaces.create_project, actor, str(doc.get("name") or ""),
                                    str(doc.get("description") or ""), _int_or_none(quota))
            return 201, await self.drive(space, SPACE_ROLES["manager"], actor)
        if len(parts) < 2 or parts[0] != "drives":
            raise DriveError(404, "itemNotFound", "not found")
        space_id = self._space_id(parts[1])
        rest = parts[2:]
        if not rest:
            return await self._drive_item(method, space_id, headers, body, actor)
        if method == "GET" and (rest == ["root", "children"] or (
                len(rest) in (2, 3) and rest[0] == "items" and rest[2:] in ([], ["children"]))):
            node_id = space_id if rest[0] == "root" else self._node_id(rest[1], space_id)
            if rest[-1] == "children":
                return 200, {"value": await self._children(actor, space_id, node_id)}
            return 200, await self._item(actor, space_id, node_id)
        if rest == ["root", "invite"] and method == "POST":
            return 200, {"value": await self._invite(space_id, await body(), actor)}
        if rest == ["root", "permissions"] and method == "GET":
            space, _role = await self._run(self.spaces.members, actor, space_id)
            return 200, {"@libre.graph.permissions.actions.allowedValues": sorted(
                             set(SPACE_ROLES["manager"].actions)),
                         "@libre.graph.permissions.roles.allowedValues": [
                             role_definition(unified_roles.BY_ID[role.id]) for role in SPACE_ROLES.values()],
                         "value": [await self._permission(m) for m in space.members]}
        if len(rest) == 3 and rest[:2] == ["root", "permissions"]:
            key = rest[2]
            if method == "DELETE":
                await self._run(self.spaces.revoke, actor, space_id, key)
                await self._announce(events.SpaceUnshared, actor, space_id, key)
                return 204, None
            if method == "PATCH":
                doc = await body()
                space, _ = await self._run(self.spaces.access, actor, space_id, MANAGE)
                current = next((m for m in space.members if m.key == key), None)
                if current is None:
                    raise DriveError(404, "itemNotFound", "permission not found")
                role = SPACE_ROLES[current.role]
                if doc.get("roles"):
                    role = self._role(doc["roles"])
                expires = current.expires
                if "expirationDateTime" in doc:
                    expires = str(doc["expirationDateTime"] or "")
                member = await self._run(self.spaces.grant, actor, space_id, key, role, expires)
                await self._announce(events.SpaceShared, actor, space_id, key, role=member.role)
                return 200, await self._permission(member)
        raise DriveError(404, "itemNotFound", "not found")

    async def _drive_item(self, method, space_id, headers, body, actor) -> tuple[int, object]:
        if method == "GET":
            space = await self._run(self.spaces.get, space_id)
            role = self.spaces.role_of(actor, space)
            if not self.spaces.listed(space, role) and not can(actor.role, "Drives.List"):
                raise DriveError(404, "itemNotFound", "drive not found")
            return 200, await self.drive(space, role, actor)
        if method == "PATCH":
            if (headers("restore") or "").strip().lower() == "true":
                space = await self._run(self.spaces.restore, actor, space_id)
            else:
                doc = await body()
                quota = doc.get("quota")
                total = _int_or_none(quota.get("total")) if isinstance(quota, dict) else None
                if isinstance(quota, dict) and "total" in quota and total is None:
                    raise DriveError(400, "invalidRequest", "invalid quota")
                special = await self._special(space_id, doc.get("special"), actor)
                space = await self._run(self.spaces.update, actor, space_id,
                                        name=doc.get("name") if "name" in doc else None,
                                        description=doc.get("description") if "description" in doc else None,
                                        quota=total, special=special)
            return 200, await self.drive(space, self.spaces.role_of(actor, space), actor)
        if method == "DELETE":
            if (headers("purge") or "").strip().upper() == "T":
                space = await self._run(self.spaces.purge, actor, space_id)
                await self.files.bus.publish(events.SpaceDeleted(
                    executant=actor.id, space_id=space_id, name=space.name,
                    members=tuple(m.key for m in space.members)))
                return 204, None
            space = await self._run(self.spaces.disable, actor, space_id)
            await self.files.bus.publish(events.SpaceDisabled(
                executant=actor.id, space_id=space_id, name=space.name, members=tuple(m.key for m in space.members)))
            return 204, None
        raise DriveError(405, "notAllowed", "method not allowed")

    # ------------------------------------------------------------ helpers

    def _space_id(self, drive_id: str) -> str:
        storage, sep, space = drive_id.partition("$")
        if not sep:
            return drive_id
        space_id = space.partition("!")[0]
        if not self.files.holds(storage, space_id):
            raise DriveError(404, "itemNotFound", "drive not found")
        return space_id

    @staticmethod
    def _node_id(item_id: str, space_id: str) -> str:
        """An item id is a resource id (`storage$space!node`) of the drive, or a bare node id."""
        if "$" not in item_id:
            return item_id
        try:
            rid = ResourceId.parse(item_id)
        except InvalidArgument:
            raise DriveError(400, "invalidRequest", "invalid item id") from None
        if rid.space_id != space_id:
            raise DriveError(404, "itemNotFound", "item not found")
        return rid.node_id

    async def _chain(self, actor: User, space_id: str, node_id: str) -> list[NodeInfo]:
        rid = ResourceId(self.files.storage_id_of(space_id), space_id, node_id)
        return await self.files.resolve_id(actor, rid, [])

    async def _item(self, actor: User, space_id: str, node_id: str) -> dict:
        chain = await self._chain(actor, space_id, node_id)
        return self.drive_item(chain[-1], chain[-2] if len(chain) > 1 else None)

    async def _children(self, actor: User, space_id: str, node_id: str) -> list[dict]:
        folder = (await self._chain(actor, space_id, node_id))[-1]
        if not folder.is_folder:
            raise DriveError(400, "invalidRequest", "the item is not a folder")
        items = []
        async for batch in self.files.children(space_id, folder):
            items += [self.drive_item(child, folder) for child in batch]
        return sorted(items, key=lambda item: item["name"])

    def drive_item(self, node: NodeInfo, parent: NodeInfo | None) -> dict:
        """A driveItem as oCIS renders a resource: ids are resource ids, folders carry `folder`,
        files `file` with their media type."""
        drive_id = f"{self.files.storage_id_of(node.space_id)}${node.space_id}"
        item: dict = {"id": f"{drive_id}!{node.id}", "name": node.name, "size": node.size, "eTag": node.etag,
                      "lastModifiedDateTime": format_time(node.mtime_ns),
                      "parentReference": {"driveId": drive_id,
                                          "driveType": (self.spaces.peek(node.space_id) or _NO_SPACE).type}}
        if parent is not None:
            item["parentReference"]["id"] = f"{drive_id}!{parent.id}"
        if node.is_folder:
            item["folder"] = {}
        else:
            item["file"] = {"mimeType": mime_type(node.name)}
        return item

    @staticmethod
    def _role(roles: object) -> SpaceRole:
        if not isinstance(roles, list) or len(roles) != 1 or not isinstance(roles[0], str):
            raise DriveError(400, "invalidRequest", "exactly one role is required")
        try:
            return role_by_id(roles[0])
        except InvalidArgument:
            raise DriveError(400, "invalidRequest", "the role is not available for drives") from None

    async def _invite(self, space_id: str, doc: dict, actor: User) -> list[dict]:
        recipients = doc.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            raise DriveError(400, "invalidRequest", "recipients are required")
        role = self._role(doc.get("roles"))
        expires = str(doc.get("expirationDateTime") or "")
        out = []
        for recipient in recipients:
            if not isinstance(recipient, dict) or not isinstance(recipient.get("objectId"), str):
                raise DriveError(400, "invalidRequest", "every recipient needs an objectId")
            kind = recipient.get("@libre.graph.recipient.type", "user")
            object_id = recipient["objectId"]
            if kind == "group":
                groups = await self._run(self.directory.groups)
                if not any(g.id == object_id for g in groups):
                    raise DriveError(400, "invalidRequest", "the group does not exist")
                key = f"g:{object_id}"
            elif kind == "user":
                if await self._run(self.directory.get_by_id, object_id) is None:
                    raise DriveError(400, "invalidRequest", "the user does not exist")
                key = f"u:{object_id}"
            else:
                raise DriveError(400, "invalidRequest", "unknown recipient type")
            member = await self._run(self.spaces.grant, actor, space_id, key, role, expires)
            await self._announce(events.SpaceShared, actor, space_id, key, role=member.role)
            out.append(await self._permission(member))
        return out

    async def _announce(self, kind: type[events.SpaceShared] | type[events.SpaceUnshared], actor: User,
                        space_id: str, key: str, **fields: str) -> None:
        """Membership changes as events (notifications and live updates tell the member)."""
        await self.files.bus.publish(kind(executant=actor.id, space_id=space_id,  # type: ignore[call-arg]
                                          grantee_type="group" if key.startswith("g:") else "user",
                                          grantee=key[2:], **fields))

    async def _special(self, space_id: str, special: object, actor: User) -> dict[str, str] | None:
        """`special: [{specialFolder: {name: image|readme}, id: <file id>}]`: the file must be in the space."""
        if special is None:
            return None
        if not isinstance(special, list):
            raise DriveError(400, "invalidRequest", "special must be a list")
        out = {}
        for item in special:
            name = (item.get("specialFolder") or {}).get("name") if isinstance(item, dict) else None
            file_id = item.get("id") if isinstance(item, dict) else None
            if name not in ("image", "readme") or not isinstance(file_id, str):
                raise DriveError(400, "invalidRequest", "special entries need specialFolder.name and id")
            node_id = file_id.rpartition("!")[2]
            node = await self._run(self.files.driver.stat, space_id, node_id)
            if node.space_id != space_id or node.is_folder:
                raise DriveError(400, "invalidRequest", "the special file must be a file in the space")
            out[name] = node_id
        return out

    async def _list(self, actor: User, query: dict[str, str], everything: bool, shares: bool = False) -> list[dict]:
        kind = None
        if query.get("$filter"):
            found = _FILTER.match(query["$filter"].strip())
            if not found:
                raise DriveError(400, "invalidRequest", "unsupported filter")
            kind = found[1]
        if can(actor.role, "Drives.Create"):
            await self.files.ensure_personal_space(actor)
        entries = await self._run(self.spaces.visible, actor, everything=everything)
        drives = [await self.drive(space, role, actor) for space, role in entries
                  if kind is None or space.type == kind]
        if shares and self.files.sharing is not None and kind in (None, "virtual"):
            drives.append(await self.shares_drive(actor))
        orderby = query.get("$orderby", "").strip()
        if orderby:
            name, _, direction = orderby.partition(" ")
            if name not in _ORDER or direction.strip().lower() not in ("", "asc", "desc"):
                raise DriveError(400, "invalidRequest", f"we do not support {name} as a order parameter")
            drives.sort(key=_ORDER[name], reverse=direction.strip().lower() == "desc")
        return drives

    async def _permission(self, member: Member) -> dict:
        principal = await granted_to(self.directory, self._run, member.is_group, member.principal_id)
        doc: dict = {"id": member.key, "roles": [SPACE_ROLES[member.role].id], "grantedToV2": principal}
        if member.expires:
            doc["expirationDateTime"] = member.expires
        return doc

    async def shares_drive(self, actor: User) -> dict:
        """The Shares space as a drive (driveType virtual), as oCIS lists it for every user."""
        root, _mounted = await self.files.shares_space(actor)
        return {"id": SHARE_JAIL_DRIVE, "driveAlias": "virtual/shares", "driveType": "virtual", "name": "Shares",
                "lastModifiedDateTime": format_time(root.mtime_ns),
                "root": {"id": f"{SHARE_JAIL_DRIVE}!{SHARE_JAIL}", "eTag": root.etag,
                         "webDavUrl": f"{self.base_url}/dav/spaces/{SHARE_JAIL_DRIVE}"},
                "webUrl": f"{self.base_url}/f/{SHARE_JAIL_DRIVE}"}

    async def drive(self, space: Space, role: SpaceRole | None, actor: User) -> dict:
        """The drive object of a space, with the oCIS fields."""
        root: NodeInfo = await self._run(self.files.driver.stat, space.id, space.id)
        drive_id = f"{self.files.storage_id_of(space.id)}${space.id}"
        used = max(0, root.size)
        total = self.spaces.quota_of(space)
        if total:
            remaining = max(0, total - used)
            share = used / total
            state = "exceeded" if share >= 1 else "critical" if share >= 0.9 else \
                "nearing" if share >= 0.75 else "normal"
        else:
            remaining = await self._run(self.files.driver.free_bytes, space.id)
            state = "normal"
        owner = await self._run(self.directory.get_by_id, space.owner_id) if space.owner_id else None
        if space.type == "personal":
            alias = f"personal/{owner.username.lower()}" if owner else "personal/"
        else:
            alias = space.alias or project_alias(space.name)
        doc: dict = {
            "id": drive_id,
            "driveAlias": alias,
            "driveType": space.type,
            "name": space.name,
            "lastModifiedDateTime": format_time(root.tmtime_ns),
            "owner": {"user": {"id": space.owner_id, "displayName": owner.display_name if owner else ""}},
            "quota": {"total": total, "used": used, "remaining": remaining, "deleted": 0, "state": state},
            "root": {
                "id": f"{drive_id}!{space.id}",
                "eTag": f'"{etag_hash(root.id, root.tmtime_ns)}"',
                "webDavUrl": f"{self.base_url}/dav/spaces/{drive_id}",
                "permissions": [await self._permission(m) for m in space.members],
            },
            "webUrl": f"{self.base_url}/f/{drive_id}",
        }
        if space.type == "project":
            doc["description"] = space.description
        if space.disabled:
            doc["root"]["deleted"] = {"state": "trashed"}
        special = []
        for name, node_id in space.special:
            try:
                node = await self._run(self.files.driver.stat, space.id, node_id)
            except (NotFound, InvalidArgument):
                continue  # deleted since
            special.append({"specialFolder": {"name": name}, "id": f"{drive_id}!{node_id}",
                            "name": node.name, "size": node.size,
                            "eTag": f'"{etag_hash(node.id, node.tmtime_ns)}"',
                            "webDavUrl": f"{self.base_url}/dav/spaces/{drive_id}!{node_id}",
                            "lastModifiedDateTime": format_time(node.mtime_ns)})
        if special:
            doc["special"] = special
        return doc


def _int_or_none(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None

