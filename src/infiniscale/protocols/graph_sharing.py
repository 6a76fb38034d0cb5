"""Libre Graph sharing, as the browser uses it: invite users and groups to a file or folder under a
unified role, list, update and remove its permissions, and the driveItems shared with and by the
caller. The same shares as the OCS API (the permission id is the share id)."""

from __future__ import annotations

from typing import Any

from infiniscale.core import unified_roles
from infiniscale.core.model.errors import InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.share_service import ShareService
from infiniscale.core.sharing import (
    ACCEPTED,
    DECLINED,
    GROUP_SHARE,
    LINK_SHARE,
    SHARE_JAIL,
    SHARE_JAIL_DRIVE,
    USER_SHARE,
    Share,
)
from infiniscale.core.spaces import MANAGE, format_time
from infiniscale.core.unified_roles import UnifiedRole
from infiniscale.protocols.webdav.properties import mime_type


class SharingError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GraphSharing:
    def __init__(self, service: ShareService, directory: Any, base_url: str = "") -> None:
        self.base_url = base_url
        self.service = service
        self.files = service.files
        self.sharing = service.sharing
        self.directory = directory

    async def _run(self, fn, *args):
        return await self.files._run(fn, *args)

    @staticmethod
    def handles(parts: list[str]) -> bool:
        """drives/{d}/items/{i}/invite|permissions[/{p}], me/drive/sharedWithMe|sharedByMe."""
        if parts in (["me", "drive", "sharedWithMe"], ["me", "drive", "sharedByMe"]):
            return True
        if parts[:2] == ["drives", SHARE_JAIL_DRIVE] and len(parts) > 2:
            return True
        if len(parts) < 5 or parts[0] != "drives" or parts[2] != "items":
            return False
        if len(parts) == 5:
            return parts[4] in ("invite", "permissions", "createLink")
        return parts[4] == "permissions" and (len(parts) == 6 or parts[6:] == ["setPassword"])

    async def route(self, method: str, parts: list[str], body, actor: User) -> tuple[int, object]:
        if parts == ["me", "drive", "sharedWithMe"] and method == "GET":
            return 200, {"value": await self._shared_with_me(actor)}
        if parts == ["me", "drive", "sharedByMe"] and method == "GET":
            return 200, {"value": await self._shared_by_me(actor)}
        if parts[1] == SHARE_JAIL_DRIVE:
            return await self._jail(method, parts[2:], body, actor)
        chain = await self._item(actor, parts[1], parts[3])
        node = chain[-1]
        if parts[4] == "invite" and method == "POST":
            return 200, {"value": await self._invite(actor, chain, await body())}
        if parts[4] == "createLink" and method == "POST":
            return 200, await self._create_link(actor, chain, await body())
        if len(parts) == 7 and method == "POST":
            share = await self._share_of(actor, node, parts[5])
            password = (await body()).get("password")
            if share.share_type != LINK_SHARE or not isinstance(password, str):
                raise SharingError(400, "invalidRequest", "a password for a link is required")
            updated = await self.service.update_link(actor, share, node, None, password)
            return 200, await self.permission(updated)
        if len(parts) == 5 and method == "GET":
            return 200, await self._permissions(actor, node)
        if len(parts) == 6:
            share = await self._share_of(actor, node, parts[5])
            if method == "DELETE":
                await self.service.remove(actor, share)
                return 204, None
            if method == "PATCH" and share.share_type == LINK_SHARE:
                doc = await body()
                link = doc.get("link") if isinstance(doc.get("link"), dict) else {}
                expires = str(doc["expirationDateTime"] or "") if "expirationDateTime" in doc else None
                updated = await self.service.update_link(actor, share, node, link.get("type"), None,
                                          expires, link.get("@libre.graph.displayName"))
                return 200, await self.permission(updated)
            if method == "PATCH":
                doc = await body()
                role = None
                if doc.get("roles"):
                    role = self._role(node, doc["roles"])
                expires = str(doc["expirationDateTime"] or "") if "expirationDateTime" in doc else None
                updated = await self.service.update(actor, share, role, expires)
                return 200, await self.permission(updated)
        raise SharingError(405, "notAllowed", "method not allowed")

    # ------------------------------------------------------------ items and who may share them

    async def _item(self, actor: User, drive_id: str, item_id: str) -> list[NodeInfo]:
        try:
            rid = ResourceId.parse(item_id)
        except InvalidArgument:
            raise SharingError(400, "invalidRequest", "invalid item id") from None
        if rid.space_ref != drive_id and rid.space_id != drive_id:
            raise SharingError(404, "itemNotFound", "item not found")
        return await self.files.resolve_id(actor, rid, [])

    async def _require_manager(self, actor: User, chain: list[NodeInfo]) -> None:
        _space, role = await self.files.access(actor, chain[0].space_id, chain)
        if role.level < MANAGE or role.shared_root:
            raise SharingError(403, "accessDenied", "no permission to share this item")

    def _role(self, node: NodeInfo, roles: object) -> UnifiedRole:
        if not isinstance(roles, list) or len(roles) != 1 or not isinstance(roles[0], str):
            raise SharingError(400, "invalidRequest", "exactly one role is required")
        try:
            return self.sharing.role_for(node, role_id=roles[0])
        except InvalidArgument:
            raise SharingError(400, "invalidRequest", "the role is not available for this item") from None

    async def _share_of(self, actor: User, node: NodeInfo, permission_id: str) -> Share:
        chain = await self._run(self.files.driver.ancestors, node.space_id, node)
        await self._require_manager(actor, chain)
        try:
            share = await self._run(self.sharing.book.get, permission_id)
        except NotFound:
            raise SharingError(404, "itemNotFound", "permission not found") from None
        if share.node_id != node.id:
            raise SharingError(404, "itemNotFound", "permission not found")
        return share

    # ------------------------------------------------------------ invite and permissions

    async def _invite(self, actor: User, chain: list[NodeInfo], doc: dict) -> list[dict]:
        await self._require_manager(actor, chain)
        node = chain[-1]
        recipients = doc.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            raise SharingError(400, "invalidRequest", "recipients are required")
        role = self._role(node, doc.get("roles"))
        expires = str(doc.get("expirationDateTime") or "")
        space, _role = await self.files.access(actor, node.space_id, chain)
        made = []
        for recipient in recipients:
            if not isinstance(recipient, dict) or not isinstance(recipient.get("objectId"), str):
                raise SharingError(400, "invalidRequest", "every recipient needs an objectId")
            kind = recipient.get("@libre.graph.recipient.type", "user")
            object_id = recipient["objectId"]
            if kind == "group":
                if not any(g.id == object_id for g in await self._run(self.directory.groups)):
                    raise SharingError(400, "invalidRequest", "the group does not exist")
                share_type = GROUP_SHARE
            elif kind == "user":
                if await self._run(self.directory.get_by_id, object_id) is None:
                    raise SharingError(400, "invalidRequest", "the user does not exist")
                share_type = USER_SHARE
            else:
                raise SharingError(400, "invalidRequest", "unknown recipient type")
            share = await self.service.create(actor, space.owner_id or actor.id, node, share_type,
                                    object_id, role, expires)
            made.append(await self.permission(share))
        return made

    async def _create_link(self, actor: User, chain: list[NodeInfo], doc: dict) -> dict:
        await self._require_manager(actor, chain)
        node = chain[-1]
        link_type = doc.get("type", "view")
        if not isinstance(link_type, str):
            raise SharingError(400, "invalidRequest", "invalid link type")
        space, _role = await self.files.access(actor, node.space_id, chain)
        share = await self.service.create_link(actor, space.owner_id or actor.id, node, link_type,
                                str(doc.get("password") or ""), str(doc.get("expirationDateTime") or ""),
                                str(doc.get("displayName") or ""), bool(doc.get("@libre.graph.quickLink", False)))
        return await self.permission(share)

    async def _permissions(self, actor: User, node: NodeInfo) -> dict:
        chain = await self._run(self.files.driver.ancestors, node.space_id, node)
        _space, role = await self.files.access(actor, node.space_id, chain)
        kind = unified_roles.FOLDER if node.is_folder else unified_roles.FILE
        allowed = unified_roles.for_resource(self.sharing.roles, kind)
        shares = [s for s in await self._run(self.sharing.book.in_space, node.space_id) if s.node_id == node.id]
        if role.level < MANAGE:  # others see their own grant only
            shares = [s for s in shares if s.grantee == actor.id or s.grantee in actor.groups]
        return {"@libre.graph.permissions.actions.allowedValues": sorted({a for r in allowed for a in r.actions}),
                "@libre.graph.permissions.roles.allowedValues": [role_definition(r) for r in allowed],
                "value": [await self.permission(s) for s in shares]}

    async def _principal(self, kind: int, principal_id: str) -> dict:
        return await granted_to(self.directory, self._run, kind == GROUP_SHARE, principal_id)

    async def permission(self, share: Share) -> dict:
        if share.share_type == LINK_SHARE:
            doc = {"id": share.id, "hasPassword": bool(share.password_hash),
                   "createdDateTime": format_time(share.created_ns),
                   "link": {"type": share.link_type, "webUrl": f"{self.base_url}/s/{share.token}",
                            "preventsDownload": False, "@libre.graph.displayName": share.name,
                            "@libre.graph.quickLink": share.quicklink}}
            if share.expires:
                doc["expirationDateTime"] = share.expires
            return doc
        doc = {"id": share.id, "roles": [share.role_id],
                     "grantedToV2": await self._principal(share.share_type, share.grantee),
                     "invitation": {"invitedBy": await self._principal(USER_SHARE, share.creator)},
                     "createdDateTime": format_time(share.created_ns)}
        if share.expires:
            doc["expirationDateTime"] = share.expires
        return doc

    # ------------------------------------------------------------ shared with and by me

    async def _shared_with_me(self, actor: User) -> list[dict]:
        out = []
        for received in await self._run(self.sharing.received, actor, self.files.shared_item_name):
            share = received.share
            try:
                node = await self._run(self.files.driver.stat, share.space_id, share.node_id)
            except (NotFound, InvalidArgument):
                continue
            remote = await self._remote_item(node, [share])
            item = {"@UI.Hidden": received.hidden, "@client.synchronize": received.state == ACCEPTED,
                    "id": f"{SHARE_JAIL_DRIVE}!{share.id}", "name": received.mount or node.name,
                    "eTag": node.etag, "lastModifiedDateTime": format_time(node.mtime_ns), "size": node.size,
                    "parentReference": {"driveId": SHARE_JAIL_DRIVE, "driveType": "virtual",
                                        "id": f"{SHARE_JAIL_DRIVE}!{SHARE_JAIL}"},
                    "remoteItem": remote}
            item.update(_kind(node))
            out.append(item)
        return out

    # ------------------------------------------------------------ the Shares space

    async def _jail(self, method: str, rest: list[str], body, actor: User) -> tuple[int, object]:
        """Mount (accept) a received item, hide it, or unmount (decline) it."""
        received = await self._run(self.sharing.received, actor, self.files.shared_item_name)
        if rest == ["root", "children"] and method == "POST":
            doc = await body()
            remote = doc.get("remoteItem") if isinstance(doc.get("remoteItem"), dict) else {}
            try:
                rid = ResourceId.parse(str(remote.get("id") or ""))
            except InvalidArgument:
                raise SharingError(400, "invalidRequest", "remoteItem.id must name the shared item") from None
            of_item = [r for r in received if (r.share.space_id, r.share.node_id) == (rid.space_id, rid.node_id)]
            if not of_item:
                raise SharingError(404, "itemNotFound", "no share of this item")
            name = doc.get("name") if isinstance(doc.get("name"), str) and doc.get("name") else None
            for r in of_item:
                await self.service.set_state(actor, r.share, ACCEPTED, mount=name)
            items = [i for i in await self._shared_with_me(actor) if i["remoteItem"]["id"] == str(rid)]
            return 201, items[0]
        if len(rest) == 2 and rest[0] == "items":
            share_id = rest[1].rpartition("!")[2]
            mine = next((r for r in received if r.share.id == share_id), None)
            if mine is None:
                raise SharingError(404, "itemNotFound", "no such share")
            of_item = [r for r in received if (r.share.space_id, r.share.node_id) ==
                       (mine.share.space_id, mine.share.node_id)]
            if method == "DELETE":
                for r in of_item:
                    await self.service.set_state(actor, r.share, DECLINED)
                return 204, None
            if method == "PATCH":
                hidden = (await body()).get("@UI.Hidden")
                if not isinstance(hidden, bool):
                    raise SharingError(400, "invalidRequest", "only @UI.Hidden can be changed")
                for r in of_item:
                    await self.service.set_state(actor, r.share, hidden=hidden)
                items = [i for i in await self._shared_with_me(actor) if i["id"].endswith("!" + share_id)]
                return 200, items[0]
        raise SharingError(405, "notAllowed", "method not allowed")

    async def _shared_by_me(self, actor: User) -> list[dict]:
        by_item: dict[tuple[str, str], list[Share]] = {}
        for share in await self._run(self.sharing.book.created_by, actor.id):
            by_item.setdefault((share.space_id, share.node_id), []).append(share)
        out = []
        for (space_id, node_id), shares in by_item.items():
            try:
                node = await self._run(self.files.driver.stat, space_id, node_id)
            except (NotFound, InvalidArgument):
                continue
            drive_id = f"{self.files.storage_id_of(space_id)}${space_id}"
            item = {"id": f"{drive_id}!{node.id}", "name": node.name, "eTag": node.etag, "size": node.size,
                    "lastModifiedDateTime": format_time(node.mtime_ns),
                    "parentReference": {"driveId": drive_id, "id": f"{drive_id}!{node.parent_id}"},
                    "permissions": [await self.permission(s) for s in shares]}
            item.update(_kind(node))
            out.append(item)
        return out

    async def _remote_item(self, node: NodeInfo, shares: list[Share]) -> dict:
        share = shares[0]
        drive_id = f"{self.files.storage_id_of(node.space_id)}${node.space_id}"
        owner = await self._principal(USER_SHARE, share.owner)
        remote = {"id": f"{drive_id}!{node.id}", "name": node.name, "eTag": node.etag, "size": node.size,
                  "lastModifiedDateTime": format_time(node.mtime_ns),
                  "parentReference": {"driveId": drive_id},
                  "permissions": [await self.permission(s) for s in shares],
                  "shared": {"owner": owner, "sharedBy": await self._principal(USER_SHARE, share.creator),
                             "sharedDateTime": format_time(share.created_ns)}}
        remote.update(_kind(node))
        return remote



def role_definition(role: UnifiedRole) -> dict:
    """A unified role as Graph's roleDefinitions render it: one permission entry per kind of
    resource it applies to."""
    return {"id": role.id, "displayName": role.display_name, "description": role.description,
            "@libre.graph.weight": unified_roles.ROLES.index(role) + 1,
            "rolePermissions": [{"allowedResourceActions": list(role.actions),
                                 "condition": unified_roles.CONDITIONS[kind]} for kind in role.applies_to]}


async def granted_to(directory: Any, run, group: bool, principal_id: str) -> dict:
    """A permission's `grantedToV2`: the user or group, with its display name."""
    if group:
        found = next((g for g in await run(directory.groups) if g.id == principal_id), None)
        return {"group": {"id": principal_id, "displayName": found.name if found else "",
                          "@libre.graph.groupType": "Member"}}
    user = await run(directory.get_by_id, principal_id)
    return {"user": {"id": principal_id, "displayName": user.display_name if user else "",
                     "@libre.graph.userType": "Member"}}


def _kind(node: NodeInfo) -> dict:
    return {"folder": {}} if node.is_folder else {"file": {"mimeType": mime_type(node.name)}}
