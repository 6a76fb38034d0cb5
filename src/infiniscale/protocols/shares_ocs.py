"""OCS sharing API (`/ocs/v{1,2}.php/apps/files_sharing/api/v1/shares`), as the desktop and mobile
clients and pyocclient use it: create user and group shares by path (in the personal space) or by
`space_ref`, list the shares one made (all, or of one path) and those shared with one, get, update
and delete one, accept and decline a received one. The rules are the core's (core/sharing.py)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from infiniscale.core import unified_roles
from infiniscale.core.model.errors import AlreadyExists, Conflict, Forbidden, InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.share_service import ShareService
from infiniscale.core.sharing import (
    ACCEPTED,
    DECLINED,
    GROUP_SHARE,
    LINK_SHARE,
    USER_SHARE,
    Received,
    Share,
)
from infiniscale.core.spaces import MANAGE, parse_time
from infiniscale.protocols import ocs
from infiniscale.protocols.http import BodyTooLarge, Request
from infiniscale.protocols.webdav.properties import mime_type

PREFIX = "apps/files_sharing/api/v1/shares"
FOLDER_MIME = "httpd/unix-directory"
# the names OCS clients send as `role`, by kind of item
ROLE_NAMES = {("viewer", False): 1, ("viewer", True): 1, ("editor", False): 3, ("editor", True): 15,
              ("uploader", True): 4, ("file-editor", False): 3}


class OcsError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_CORE = {NotFound: 404, Forbidden: 403, InvalidArgument: 400, AlreadyExists: 403, Conflict: 400}


class SharesOcs:
    def __init__(self, service: ShareService, directory: Any, base_url: str = "") -> None:
        self.base_url = base_url
        self.service = service
        self.files = service.files
        self.sharing = service.sharing
        self.directory = directory

    async def _run(self, fn, *args, **kwargs):
        return await self.files._run(fn, *args, **kwargs)

    async def handle(self, req: Request, endpoint: str, user: User) -> None:
        try:
            status, data = await self._route(req, endpoint[len(PREFIX):].strip("/"), user)
        except OcsError as exc:
            await ocs.reply(req, None, exc.status, str(exc))
            return
        except (NotFound, Forbidden, InvalidArgument, AlreadyExists, Conflict) as exc:
            await ocs.reply(req, None, _CORE[type(exc)], str(exc) or "error")
            return
        await ocs.reply(req, data, status)

    async def _route(self, req: Request, rest: str, user: User) -> tuple[int, Any]:
        params = {k: v[-1] for k, v in parse_qs(req.query_string).items()}
        if req.method in ("POST", "PUT"):
            try:
                body = await req.body(1 << 20)
            except BodyTooLarge:
                raise OcsError(400, "the request body is too large") from None
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
        parts = rest.split("/") if rest else []
        if not parts:
            if req.method == "GET":
                if params.get("shared_with_me", "").lower() == "true":
                    return 200, await self._shared_with_me(user, params.get("state", str(ACCEPTED)))
                return 200, await self._created(user, params)
            if req.method == "POST":
                return 200, await self._create(user, params)
        elif parts[0] == "pending" and len(parts) == 2:
            share = await self._received_share(user, parts[1])
            if req.method == "POST":
                await self.service.set_state(user, share, ACCEPTED)
            elif req.method == "DELETE":
                await self.service.set_state(user, share, DECLINED)
            elif req.method == "PUT" and params.get("hidden", "").lower() in ("true", "false"):
                await self.service.set_state(user, share, hidden=params["hidden"].lower() == "true")
            else:
                raise OcsError(405, "method not allowed")
            return 200, [await self._received_doc(user, r) for r in await self._received(user)
                         if r.share.id == share.id]
        elif len(parts) == 1:
            share = await self._run(self.sharing.book.get, parts[0])
            if req.method == "GET":
                if await self._may_manage(user, share):
                    return 200, [await self._doc(share)]
                received = [r for r in await self._received(user) if r.share.id == share.id]
                if not received:
                    raise NotFound("share not found")
                return 200, [await self._received_doc(user, received[0])]
            await self._require_manage(user, share)
            if req.method == "DELETE":
                await self.service.remove(user, share)
                return 200, None
            if req.method == "PUT":
                return 200, await self._doc(await self._update(user, share, params))
        raise OcsError(404, "Not found")

    # ------------------------------------------------------------ creating

    async def _create(self, user: User, params: dict[str, str]) -> dict:
        try:
            share_type = int(params.get("shareType", ""))
        except ValueError:
            raise OcsError(400, "unknown share type") from None
        if share_type not in (USER_SHARE, GROUP_SHARE, LINK_SHARE):
            raise OcsError(400, "unknown share type")
        chain = await self._resolve(user, params.get("path", ""), params.get("space_ref", ""))
        node = chain[-1]
        space, role = await self.files.access(user, node.space_id)
        if role.level < MANAGE:
            raise OcsError(403, "no permission to share")
        if share_type == LINK_SHARE:
            link = await self.service.create_link(user, space.owner_id or user.id, node,
                                   self._link_type(node, params, "view"), params.get("password", ""),
                                   _expiry(params.get("expireDate", "")), params.get("name", ""),
                                   params.get("quicklink", "").lower() == "true")
            return await self._doc(link)
        grantee = await self._grantee(share_type, params.get("shareWith", ""))
        unified = await self._role(node, params)
        expires = _expiry(params.get("expireDate", ""))
        share = await self.service.create(user, space.owner_id or user.id, node, share_type, grantee,
                                unified, expires)
        return await self._doc(share)

    async def _resolve(self, user: User, path: str, space_ref: str) -> list[NodeInfo]:
        names = [n for n in path.split("/") if n]
        if space_ref:
            try:
                rid = ResourceId.parse(space_ref)
            except InvalidArgument:
                raise OcsError(400, "invalid space_ref") from None
            return await self.files.resolve_id(user, rid, names)
        space_id = await self.files.ensure_personal_space(user)
        try:
            return await self.files.resolve(user, space_id, names)
        except NotFound:
            raise OcsError(404, "Wrong path, file/folder doesn't exist") from None

    async def _grantee(self, share_type: int, name: str) -> str:
        if not name:
            raise OcsError(400, "shareWith is missing")
        if share_type == GROUP_SHARE:
            groups = await self._run(self.directory.groups)
            group = next((g for g in groups if name in (g.name, g.id)), None)
            if group is None:
                raise OcsError(404, "The group does not exist")
            return group.id
        found = await self._run(self.directory.get_by_name, name)
        if found is None:
            raise OcsError(404, "The user does not exist")
        return found.id

    async def _role(self, node: NodeInfo, params: dict[str, str]):
        role_name = params.get("role", "")
        if role_name:
            bits = ROLE_NAMES.get((role_name, node.is_folder))
            if bits is None:
                raise OcsError(400, "unknown role")
            return self.sharing.role_for(node, ocs_permissions=bits)
        raw = params.get("permissions", "1")
        try:
            bits = int(raw)
        except ValueError:
            raise OcsError(400, "invalid permissions") from None
        try:
            return self.sharing.role_for(node, ocs_permissions=bits)
        except InvalidArgument:
            raise OcsError(400, "invalid permissions") from None

    @staticmethod
    def _link_type(node: NodeInfo, params: dict[str, str], default: str | None) -> str | None:
        """The link type asked for: `permissions` bits, else `publicUpload`, else `default`."""
        if "permissions" in params:
            try:
                return unified_roles.link_type_for(int(params["permissions"]), node.is_folder)
            except (ValueError, InvalidArgument):
                raise OcsError(400, "invalid permissions") from None
        if params.get("publicUpload", "").lower() == "true":
            if not node.is_folder:
                raise OcsError(400, "files cannot take uploads")
            return "upload"
        if params.get("publicUpload", "").lower() == "false":
            return "view"
        return default

    async def _update(self, user: User, share: Share, params: dict[str, str]) -> Share:
        if share.share_type == LINK_SHARE:
            node = await self._run(self.files.driver.stat, share.space_id, share.node_id)
            return await self.service.update_link(user, share, node, self._link_type(node, params, None),
                                   params.get("password"),
                                   _expiry(params["expireDate"]) if "expireDate" in params else None,
                                   params.get("name"))
        role = None
        if "permissions" in params or "role" in params:
            node = await self._run(self.files.driver.stat, share.space_id, share.node_id)
            role = await self._role(node, params)
        expires = _expiry(params["expireDate"]) if "expireDate" in params else None
        return await self.service.update(user, share, role, expires)

    # ------------------------------------------------------------ who may

    async def _may_manage(self, user: User, share: Share) -> bool:
        if share.creator == user.id:
            return True
        try:
            _space, role = await self.files.access(user, share.space_id)
        except (NotFound, Forbidden):
            return False
        return role.level >= MANAGE

    async def _require_manage(self, user: User, share: Share) -> None:
        if not await self._may_manage(user, share):
            raise NotFound("share not found")

    async def _received(self, user: User) -> list[Received]:
        return await self._run(self.sharing.received, user, self.files.shared_item_name)

    async def _received_share(self, user: User, share_id: str) -> Share:
        for received in await self._received(user):
            if received.share.id == share_id:
                return received.share
        raise NotFound("share not found")

    # ------------------------------------------------------------ listing

    async def _created(self, user: User, params: dict[str, str]) -> list[dict]:
        """The caller's shares; with `path` (or `space_ref`) every share of that item the caller may
        manage, with `subfiles=true` of the items directly in that folder; `share_types` filters."""
        path, space_ref = params.get("path", ""), params.get("space_ref", "")
        shares = await self._run(self.sharing.book.created_by, user.id)
        if path or space_ref:
            node = (await self._resolve(user, path, space_ref))[-1]
            if params.get("subfiles", "").lower() == "true":
                if not node.is_folder:
                    raise OcsError(400, "subfiles needs a folder")
                wanted = {child.id async for batch in self.files.children(node.space_id, node) for child in batch}
            else:
                wanted = {node.id}
            shares = [s for s in await self._run(self.sharing.book.in_space, node.space_id)
                      if s.node_id in wanted and await self._may_manage(user, s)]
        if params.get("share_types"):
            try:
                types = {int(t) for t in params["share_types"].split(",") if t.strip()}
            except ValueError:
                raise OcsError(400, "invalid share_types") from None
            shares = [s for s in shares if s.share_type in types]
        return [await self._doc(s) for s in sorted(shares, key=lambda s: s.created_ns)]

    async def _shared_with_me(self, user: User, state: str) -> list[dict]:
        received = await self._received(user)
        if state != "all":
            try:
                wanted = int(state)
            except ValueError:
                raise OcsError(400, "invalid state") from None
            received = [r for r in received if r.state == wanted]
        return [await self._received_doc(user, r) for r in received]

    # ------------------------------------------------------------ documents

    async def _doc(self, share: Share) -> dict:
        """A share as OCS renders it; `path` as the owner sees it."""
        try:
            node = await self._run(self.files.driver.stat, share.space_id, share.node_id)
            chain = await self._run(self.files.driver.ancestors, share.space_id, node)
        except (NotFound, InvalidArgument):
            node, chain = None, []
        creator = await self._run(self.directory.get_by_id, share.creator)
        owner = await self._run(self.directory.get_by_id, share.owner)
        storage_id = self.files.storage_id_of(share.space_id)
        doc: dict[str, Any] = {
            "id": share.id, "share_type": share.share_type,
            "uid_owner": creator.username if creator else share.creator,
            "displayname_owner": creator.display_name if creator else "",
            "additional_info_owner": creator.email if creator else "",
            "uid_file_owner": owner.username if owner else share.owner,
            "displayname_file_owner": owner.display_name if owner else "",
            "additional_info_file_owner": owner.email if owner else "",
            "permissions": share.role.ocs, "stime": share.created_ns // 1_000_000_000, "parent": "",
            "expiration": _ocs_date(share.expires), "token": share.token,
            "item_type": "folder" if node is None or node.is_folder else "file",
            "mimetype": FOLDER_MIME if node is None or node.is_folder else mime_type(node.name),
            "storage_id": storage_id, "storage": 0,
            "item_source": f"{storage_id}${share.space_id}!{share.node_id}",
            "file_source": f"{storage_id}${share.space_id}!{share.node_id}",
            "file_parent": f"{storage_id}${share.space_id}!{node.parent_id}" if node and node.parent_id else "",
            "path": "/" + "/".join(n.name for n in chain[1:]),
            "file_target": "/" + (node.name if node else ""),
            "space_id": f"{storage_id}${share.space_id}", "mail_send": 0, "name": "", "hidden": False,
            "state": ACCEPTED,
        }
        if share.share_type == LINK_SHARE:
            hidden = "***redacted***" if share.password_hash else ""
            doc.update({"url": f"{self.base_url}/s/{share.token}", "name": share.name, "share_with": hidden,
                        "share_with_displayname": hidden, "password_protected": bool(share.password_hash),
                        "quicklink": share.quicklink})
        else:
            doc.update(await self._with(share))
        return doc

    async def _with(self, share: Share) -> dict:
        if share.share_type == GROUP_SHARE:
            groups = await self._run(self.directory.groups)
            group = next((g for g in groups if g.id == share.grantee), None)
            name = group.name if group else share.grantee
            return {"share_with": name, "share_with_displayname": name, "share_with_additional_info": "",
                    "share_with_user_type": 0}
        other = await self._run(self.directory.get_by_id, share.grantee)
        return {"share_with": other.username if other else share.grantee,
                "share_with_displayname": other.display_name if other else "",
                "share_with_additional_info": other.email if other else "", "share_with_user_type": 0}

    async def _received_doc(self, user: User, received: Received) -> dict:
        """A received share: its place in the recipient's Shares folder, and their state."""
        doc = await self._doc(received.share)
        target = f"/Shares/{received.mount}"
        doc.update({"state": received.state, "hidden": received.hidden,
                    "path": target if received.state == ACCEPTED else f"/{received.mount}",
                    "file_target": target})
        return doc


def _expiry(value: str) -> str:
    """OCS sends a day (`2030-01-31`) or a full timestamp; a day means its end."""
    value = value.strip()
    if not value:
        return ""
    if len(value) == 10:
        return f"{value}T23:59:59Z"
    return value.replace(" ", "T")


def _ocs_date(value: str) -> str | None:
    if not value:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(parse_time(value)))
