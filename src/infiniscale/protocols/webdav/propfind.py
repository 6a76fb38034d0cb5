"""PROPFIND (streamed multistatus) and PROPPATCH (dead properties, all or nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from infiniscale.core.locks import live_locks
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo, is_dead_property
from infiniscale.core.sharing import LINK_USER_PREFIX, SHARE_JAIL
from infiniscale.core.spaces import READ
from infiniscale.protocols.http import BodyTooLarge, Request, respond, respond_stream
from infiniscale.protocols.webdav import xml
from infiniscale.protocols.webdav.context import DavContext, check_if_header
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.properties import (
    ALLPROP,
    LIVE,
    PROTECTED,
    RenderContext,
    Renderer,
    lockdiscovery,
)
from infiniscale.protocols.webdav.routing import SHARES_FOLDER, Target
from infiniscale.protocols.webdav.xml import DAV, OC

MULTISTATUS_TYPE = "application/xml; charset=utf-8"
LOCKDISCOVERY = LIVE[f"{{{DAV}}}lockdiscovery"]
FAVORITE = f"{{{OC}}}favorite"
DOWNLOAD_URL = LIVE[f"{{{OC}}}downloadURL"]
STATUS_LINE = {200: "HTTP/1.1 200 OK", 403: "HTTP/1.1 403 Forbidden", 404: "HTTP/1.1 404 Not Found",
               409: "HTTP/1.1 409 Conflict", 424: "HTTP/1.1 424 Failed Dependency"}


async def read_xml(dav: DavContext, req: Request):
    try:
        body = await req.body(dav.config.max_xml_bytes)
    except BodyTooLarge:
        raise DavError(413, "the request body is too large") from None
    if not body.strip():
        return None
    return xml.parse(body)


class PropRequest:
    """What a PROPFIND asks for: allprop (plus includes), propname, or a list of properties."""

    def __init__(self, mode: str, names: tuple[str, ...] = ()) -> None:
        self.mode = mode
        self.names = names


def parse_propfind(root) -> PropRequest:
    if root is None:
        return PropRequest("allprop")
    if root.tag != f"{{{DAV}}}propfind":
        raise DavError(400, "the body must be a DAV:propfind element")
    mode, names, include = None, [], []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{DAV}}}prop":
            mode = "prop"
            names.extend(el.tag for el in child if isinstance(el.tag, str))
        elif child.tag == f"{{{DAV}}}allprop":
            mode = "allprop"
        elif child.tag == f"{{{DAV}}}propname":
            mode = "propname"
        elif child.tag == f"{{{DAV}}}include":
            include.extend(el.tag for el in child if isinstance(el.tag, str))
    if mode is None:
        raise DavError(400, "PROPFIND needs prop, allprop or propname")
    if mode == "allprop":
        return PropRequest("allprop", tuple(include))
    return PropRequest(mode, tuple(dict.fromkeys(names)))


class RenderPlan:
    """A PROPFIND's property list compiled once per request: per entry only the values are computed."""

    def __init__(self, request: PropRequest) -> None:
        self.request = request
        names = ALLPROP + request.names if request.mode == "allprop" else request.names
        self.live: list[tuple[Renderer, str, str, str]] = []  # renderer, open tag, close tag, empty tag
        self.dead: list[tuple[str, str]] = []  # property name, empty tag
        self.names = frozenset(names)
        self.needs_locks = request.mode != "prop" or f"{{{DAV}}}lockdiscovery" in self.names
        for name in dict.fromkeys(names):
            renderer = LIVE.get(name)
            empty = xml.empty_element(name)
            if renderer is None:
                self.dead.append((name, empty))
                continue
            opened = xml.element(name, "\x00")
            open_tag, close_tag = opened.split("\x00")
            self.live.append((renderer, open_tag, close_tag, empty))

    def render(self, ctx: RenderContext, href: str, node: NodeInfo, minimal: bool) -> str:
        request = self.request
        found: list[str] = []
        missing: list[str] = []
        if request.mode == "propname":
            found = [xml.empty_element(n) for n in ALLPROP if LIVE[n](ctx, node) is not None]
            found += [xml.empty_element(n) for n in node.props if is_dead_property(n)]
        else:
            listing = request.mode == "prop"
            for renderer, open_tag, close_tag, empty in self.live:
                # the lock root is this node: only its own locks are listed
                if renderer is LOCKDISCOVERY:
                    value = lockdiscovery(live_locks(node), href)
                elif renderer is DOWNLOAD_URL and not node.is_folder:
                    value = ctx.base_url + href
                else:
                    value = renderer(ctx, node)
                if value is None:
                    if listing:
                        missing.append(empty)
                elif value:
                    found.append(open_tag + value + close_tag)
                else:
                    found.append(empty)
            props = node.props
            for name, empty in self.dead:
                value = props.get(name)
                if value is not None:
                    found.append(value)
                elif listing:
                    missing.append(empty)
            if not listing and props:
                found.extend(v for k, v in props.items() if k not in self.names and is_dead_property(k))
        parts = ["<d:response><d:href>", href, "</d:href>"]
        if found or not missing:
            parts += ["<d:propstat><d:prop>", *found, "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"]
        if missing and not minimal:
            parts += ["<d:propstat><d:prop>", *missing,
                      "</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>"]
        parts.append("</d:response>")
        return "".join(parts)


async def _may_list(dav: DavContext, user: User, chain: list[NodeInfo]) -> bool:
    """A file-drop link may upload into a folder but not see what is in it."""
    return not user.id.startswith(LINK_USER_PREFIX) or await dav.files.allows(user, chain, "list_container")


def _depth(dav: DavContext, req: Request) -> str:
    depth = (req.header("depth") or "1").strip().lower()
    if depth not in ("0", "1", "infinity"):
        raise DavError(400, "invalid Depth header")
    if depth == "infinity" and not dav.config.allow_depth_infinity:
        raise DavError(400, "PROPFIND with Depth: infinity is not allowed",
                       "Sabre\\DAV\\Exception\\BadRequest")
    return depth


async def propfind(dav: DavContext, req: Request, target: Target, user: User) -> None:
    depth = _depth(dav, req)
    plan = RenderPlan(parse_propfind(await read_xml(dav, req)))
    chain = await dav.resolve(target, user)
    node = chain[-1]
    minimal = "return=minimal" in (req.header("prefer") or "").lower()
    ctx = await dav.with_link(await dav.render_context(user, chain), target, user, node)
    names = target.names

    async def body() -> AsyncIterator[bytes]:
        yield (xml.XML_HEADER + f"<d:multistatus{xml.NS_DECL}>").encode()
        yield plan.render(ctx, target.href(names, node.is_folder), node, minimal).encode()
        if node.is_folder and depth != "0" and await _may_list(dav, user, chain):
            async for chunk in _descend(dav, ctx, target, names, node, plan, minimal, depth == "infinity"):
                yield chunk
            if target.kind in ("files", "legacy") and not names:
                yield (await _shares_entry(dav, user, target, chain, plan, minimal)).encode()
        yield b"</d:multistatus>"

    headers = [("content-type", MULTISTATUS_TYPE), ("dav", "1, 3, extended-mkcol"), ("vary", "Brief,Prefer")]
    if minimal:
        headers.append(("preference-applied", "return=minimal"))
    await respond_stream(req.send, 207, headers, body())


async def _jail(dav: DavContext, user: User) -> tuple[NodeInfo, list[tuple[str, NodeInfo, RenderContext]]]:
    """The Shares space rendered: its root, and per mount the shared item under the mount's name
    with the share's permissions."""
    root, mounted = await dav.files.shares_space(user)
    return root, [(name, replace(chain[-1], name=name), await dav.context_for(user, space, role, chain))
                  for name, chain, space, role in mounted]


def _jail_context(dav: DavContext, user: User) -> RenderContext:
    return RenderContext(storage_id=SHARE_JAIL, owner_username=user.username, owner_display_name=user.display_name,
                         base_url=dav.config.base_url, user_id=user.id, level=READ)


async def jail_propfind(dav: DavContext, req: Request, target: Target, user: User) -> None:
    """PROPFIND of the Shares space itself (`/dav/spaces/<share jail>`, `…/files/<user>/Shares`)."""
    depth = _depth(dav, req)
    plan = RenderPlan(parse_propfind(await read_xml(dav, req)))
    minimal = "return=minimal" in (req.header("prefer") or "").lower()
    root, entries = await _jail(dav, user)
    base = target.href([], True)
    parts = [xml.XML_HEADER + f"<d:multistatus{xml.NS_DECL}>",
             plan.render(_jail_context(dav, user), base, root, minimal)]
    if depth != "0":
        for name, node, ctx in entries:
            parts.append(plan.render(ctx, target.child_href(base, name, node.is_folder), node, minimal))
    parts.append("</d:multistatus>")
    await respond(req.send, 207, [("content-type", MULTISTATUS_TYPE), ("dav", "1, 3, extended-mkcol")],
                  "".join(parts).encode())


async def _shares_entry(dav: DavContext, user: User, target: Target, chain: list[NodeInfo], plan: RenderPlan,
                        minimal: bool) -> str:
    """The Shares folder in a listing of the personal root, when something is mounted there (and
    no folder of that name is in the way)."""
    mounts = await dav.files.mounts(user)
    if not mounts or await dav.files.child(chain[0], SHARES_FOLDER) is not None:
        return ""
    root, _entries = await _jail(dav, user)
    return plan.render(_jail_context(dav, user), target.href([SHARES_FOLDER], True), root, minimal)


async def _descend(dav: DavContext, ctx: RenderContext, target: Target, names: list[str], folder: NodeInfo,
                   plan: RenderPlan, minimal: bool, recursive: bool) -> AsyncIterator[bytes]:
    subfolders: list[NodeInfo] = []
    base = target.href(names, True)
    child_href = target.child_href
    async for batch in dav.files.children(folder.space_id, folder, with_locks=plan.needs_locks):
        parts = []
        for child in batch:
            parts.append(plan.render(ctx, child_href(base, child.name, child.is_folder), child, minimal))
            if recursive and child.is_folder:
                subfolders.append(child)
        yield "".join(parts).encode()
    for sub in subfolders:
        async for chunk in _descend(dav, ctx, target, [*names, sub.name], sub, plan, minimal, True):
            yield chunk


async def proppatch(dav: DavContext, req: Request, target: Target, user: User) -> None:
    root = await read_xml(dav, req)
    if root is None or root.tag != f"{{{DAV}}}propertyupdate":
        raise DavError(400, "the body must be a DAV:propertyupdate element")
    chain = await dav.resolve(target, user)
    tokens = await check_if_header(dav, req, target, chain, user)
    # operations in document order; the last one for a property wins
    operations: list[tuple[str, str, str | None]] = []
    for action in root:
        if not isinstance(action.tag, str):
            continue
        if action.tag not in (f"{{{DAV}}}set", f"{{{DAV}}}remove"):
            continue
        for prop in action:
            if not isinstance(prop.tag, str) or prop.tag != f"{{{DAV}}}prop":
                continue
            for el in prop:
                if not isinstance(el.tag, str):
                    continue
                if action.tag == f"{{{DAV}}}set":
                    value = (el.text or "").strip() if el.tag == FAVORITE else xml.serialize_element(el)
                    operations.append(("set", el.tag, value))
                else:
                    operations.append(("remove", el.tag, None))
    # oc:favorite is a flag per user, not a property of the resource
    favorite: bool | None = None
    for op, name, value in operations:
        if name == FAVORITE:
            favorite = op == "set" and value in ("1", "true")
    operations = [op for op in operations if op[1] != FAVORITE]
    statuses: dict[str, int] = {FAVORITE: 200} if favorite is not None else {}
    for _op, name, _value in operations:
        statuses[name] = 403 if name in PROTECTED else 200
    failed = any(code != 200 for code in statuses.values())
    if failed:
        statuses = {name: (code if code != 200 else 424) for name, code in statuses.items()}
    else:
        set_props: dict[str, str] = {}
        remove: list[str] = []
        for op, name, value in operations:
            if op == "set" and value is not None:
                set_props[name] = value
                if name in remove:
                    remove.remove(name)
            else:
                set_props.pop(name, None)
                remove.append(name)
        if set_props or remove:
            await dav.files.update_properties(user, chain, set_props, remove, tokens)
        if favorite is not None:
            await dav.files.set_favorite(user, chain, favorite)
    by_status: dict[int, list[str]] = {}
    for name, code in statuses.items():
        by_status.setdefault(code, []).append(xml.empty_element(name))
    parts = [xml.XML_HEADER, f"<d:multistatus{xml.NS_DECL}><d:response>",
             f"<d:href>{xml.escape(target.href(target.names, chain[-1].is_folder))}</d:href>"]
    for code, elements in by_status.items():
        parts.append(f"<d:propstat><d:prop>{''.join(elements)}</d:prop><d:status>{STATUS_LINE[code]}"
                     "</d:status></d:propstat>")
    parts.append("</d:response></d:multistatus>")
    await respond(req.send, 207, [("content-type", MULTISTATUS_TYPE)], "".join(parts).encode())
