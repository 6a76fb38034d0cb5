"""REPORT: oc:search-files (see protocols.webdav.search), and oc:filter-files: the user's favorites
below the requested folder, with the properties the request names (oCIS routes this report wrongly,
ocis#1228; here it answers on every files URL)."""

from __future__ import annotations

from infiniscale.core.model.identity import User
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.webdav import search, xml
from infiniscale.protocols.webdav.context import DavContext
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.propfind import MULTISTATUS_TYPE, PropRequest, RenderPlan, read_xml
from infiniscale.protocols.webdav.routing import Target
from infiniscale.protocols.webdav.xml import DAV, OC


async def report(dav: DavContext, req: Request, target: Target | None, user: User) -> None:
    """`target` is None for a REPORT on the spaces root (which only searches)."""
    root = await read_xml(dav, req)
    if root is None:
        raise DavError(400, "REPORT needs a body")
    if search.local(root.tag) == "search-files":
        await search.search_files(dav, req, root, user)
        return
    if root.tag != f"{{{OC}}}filter-files" or target is None:
        raise DavError(400, "missing search-files tag")
    names: list[str] = []
    favorites_only = False
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{DAV}}}prop":
            names.extend(el.tag for el in child if isinstance(el.tag, str))
        elif child.tag == f"{{{OC}}}filter-rules":
            for rule in child:
                if rule.tag == f"{{{OC}}}favorite" and (rule.text or "").strip() in ("1", "true"):
                    favorites_only = True
    if not favorites_only:
        raise DavError(400, "filter-files needs the rule oc:favorite 1")
    chain = await dav.resolve(target, user)
    plan = RenderPlan(PropRequest("prop", tuple(dict.fromkeys(names))) if names else PropRequest("allprop"))
    ctx = await dav.render_context(user, chain)
    base = target.names
    parts = [xml.XML_HEADER, f"<d:multistatus{xml.NS_DECL}>"]
    for fav in await dav.files.favorites(user, chain[-1].space_id):
        path = [node.name for node in fav[1:]]
        ids = [node.id for node in fav]
        if chain[-1].id not in ids or path == base:  # only what lies below the requested folder
            continue
        node = fav[-1]
        parts.append(plan.render(ctx, target.href(path, node.is_folder), node, False))
    parts.append("</d:multistatus>")
    await respond(req.send, 207, [("content-type", MULTISTATUS_TYPE)], "".join(parts).encode())
