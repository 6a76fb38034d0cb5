"""What every WebDAV handler shares: the file service, settings, and resolving a target."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from infiniscale.core import locks as locking
from infiniscale.core.files import Chain, FileService
from infiniscale.core.model.errors import NotFound, StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import NodeInfo, etag_matches
from infiniscale.core.search import SearchService
from infiniscale.core.sharing import LINK_USER_PREFIX
from infiniscale.core.spaces import Space, SpaceRole, parse_time
from infiniscale.core.thumbnails import Previews
from infiniscale.core.uploads import UploadService
from infiniscale.protocols.http import Request
from infiniscale.protocols.webdav import conditions
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.properties import LINK_OCS_PERMISSIONS, RenderContext, http_date
from infiniscale.protocols.webdav.routing import Target, match
from infiniscale.protocols.webdav.xml import escape


@dataclass
class DavConfig:
    base_url: str
    allow_depth_infinity: bool = False
    max_xml_bytes: int = 1 << 20


class DavContext:
    def __init__(self, files: FileService, config: DavConfig, uploads: UploadService | None = None,
                 search: SearchService | None = None, previews: Previews | None = None,
                 username_of: Callable[[str], str] | None = None) -> None:
        self.files = files
        self.username_of = username_of  # a user id -> the user's name (blocking: a directory lookup)
        self.config = config
        self._uploads = uploads
        self.search = search
        self.previews = previews

    @property
    def uploads(self) -> UploadService:
        if self._uploads is None:
            raise DavError(501, "uploads across requests are not configured",
                           "Sabre\\DAV\\Exception\\NotImplemented")
        return self._uploads

    async def render_context(self, user: User, chain: Chain | None = None) -> RenderContext:
        """What rendering properties needs to know: the caller's role in the space of `chain` and
        the space's free quota."""
        if not chain:
            return RenderContext(storage_id=self.files.storage_id, owner_username=user.username,
                                 owner_display_name=user.display_name, base_url=self.config.base_url,
                                 user_id=user.id)
        space, role = await self.files.access(user, chain[0].space_id, chain)
        return await self.context_for(user, space, role, chain)

    async def context_for(self, user: User, space: Space, role: SpaceRole, chain: Chain) -> RenderContext:
        """The render context for a role already known (the mounts of the Shares space)."""
        return RenderContext(storage_id=self.files.storage_id_of(space.id), owner_username=user.username,
                             owner_display_name=user.display_name, base_url=self.config.base_url,
                             user_id=user.id, level=role.level,
                             quota_available=self.files.quota_available(space, chain[0]),
                             share_types=await self.files.share_types(space.id) if not role.shared_root else {})

    async def with_link(self, ctx: RenderContext, target: Target, user: User, node: NodeInfo) -> RenderContext:
        """For a visitor of a public link's root (`node`): its oc:public-link-* properties."""
        if not target.token or target.names or not user.id.startswith(LINK_USER_PREFIX):
            return ctx
        link = await self.files.link(target.token)
        owner = await self.files._run(self.username_of, link.owner) if self.username_of else ""
        props = {"public-link-item-type": "folder" if node.is_folder else "file",
                 "public-link-permission": str(LINK_OCS_PERMISSIONS.get(link.link_type, 1)),
                 "public-link-share-datetime": http_date(link.created_ns),
                 "public-link-share-owner": escape(owner or link.owner)}
        if link.expires:
            props["public-link-expiration"] = http_date(int(parse_time(link.expires) * 1e9))
        return replace(ctx, link_root=link.node_id, link_props=props)

    async def rewrite(self, target: Target, user: User) -> Target:
        """A path below a mount of the Shares space addresses the shared item by its id; the
        hrefs keep the path the client used."""
        if target.kind == "public":  # the link's item, below the link's own prefix
            if not user.id.startswith(LINK_USER_PREFIX):
                raise NotFound("resource not found")
            link = await self.files.link(target.token)
            if user.id != LINK_USER_PREFIX + link.id:
                raise NotFound("resource not found")
            rid = ResourceId(self.files.storage_id_of(link.space_id), link.space_id, link.node_id)
            # the token stays: properties of the link's root tell visitors what the link allows
            return Target("spaces", target.prefix, link.space_id, rid, target.names, token=target.token)
        if target.kind == "share":
            rid = await self.files.mount_of_share(user, target.token)
            return Target("spaces", target.prefix, rid.space_id, rid, target.names)
        if target.kind != "jail" or not target.names:
            return target
        rid = await self.files.mount(user, target.names[0])
        return Target("spaces", f"{target.prefix}/{target.names[0]}", rid.space_id, rid, target.names[1:])

    async def space_of(self, target: Target, user: User) -> str:
        if target.space_id is not None:
            return target.space_id
        return await self.files.ensure_personal_space(user)

    async def resolve(self, target: Target, user: User, names: list[str] | None = None) -> Chain:
        names = target.names if names is None else names
        if target.rid is not None:
            return await self.files.resolve_id(user, target.rid, names)
        space_id = await self.space_of(target, user)
        return await self.files.resolve(user, space_id, names)

    async def resolve_or_none(self, target: Target, user: User) -> Chain | None:
        try:
            return await self.resolve(target, user)
        except NotFound:
            return None

    async def resolve_slot(self, target: Target, user: User) -> tuple[Chain, str, Chain | None]:
        """Parent chain, last name and the existing chain (or None) in one storage round trip;
        409 when the parent is missing or no folder."""
        if not target.names:
            raise DavError(405, "the space root already exists")
        space_id = target.space_id if target.rid is not None else await self.space_of(target, user)
        try:
            parent, node = await self.files.resolve_slot(user, space_id, target.names, target.rid)
        except NotFound:
            if target.rid is not None and len(target.names) == 1:
                raise  # the resource the URL names by id is itself missing (or not the caller's to see)
            raise DavError(409, "the parent folder does not exist") from None
        if not parent[-1].is_folder:
            raise DavError(409, "the parent is not a folder")
        return parent, target.names[-1], ([*parent, node] if node is not None else None)



async def check_if_header(dav: DavContext, req: Request, target: Target, chain: Chain | None,
                          user: User) -> frozenset[str]:
    """Evaluates the `If` header (412 when no list holds) and returns the submitted lock tokens."""
    header = req.header("if")
    if not header:
        return frozenset()
    lists = conditions.parse_if(header)

    async def chain_for(tag: str | None) -> Chain | None:
        if tag is None:
            return chain
        try:
            tagged = match(urlsplit(tag).path.encode("utf-8", "surrogateescape"), user)
        except (DavError, StorageError):
            return None
        if tagged is None:
            return None
        try:
            tagged = await dav.rewrite(tagged, user)
        except StorageError:
            return None
        if tagged.kind == "jail":
            return None
        return await dav.resolve_or_none(tagged, user)

    for lst in lists:
        resource = await chain_for(lst.resource)
        node = resource[-1] if resource else None
        tokens = {lk.token for lk in locking.covering_locks(resource)} if resource else set()
        if resource is None and chain is None and lst.resource is None:
            # an unmapped URL: locks of the parent folders still cover it
            try:
                parent = await dav.resolve(target, user, target.names[:-1])
                tokens = {lk.token for lk in locking.covering_locks(parent) if lk.depth == "infinity"}
            except NotFound:
                pass
        ok = True
        for cond in lst.conditions:
            if cond.token is not None:
                holds = cond.token in tokens
            else:
                holds = node is not None and etag_matches(cond.etag or "", node)
            if holds == cond.negate:
                ok = False
                break
        if ok:
            return conditions.submitted_tokens(lists)
    raise DavError(412, "the If header precondition failed")
