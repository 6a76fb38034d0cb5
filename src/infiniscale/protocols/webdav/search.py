"""REPORT oc:search-files: KQL search over everything the caller can see, answered as oCIS does
(207, `Content-Range: rows 0-<n-1>/<total>`, hrefs below /dav/spaces or /remote.php/dav/spaces, an
item inside a received share addressed through the share). The properties oCIS always sends come
with whatever else the request names."""

from __future__ import annotations

from urllib.parse import quote

from infiniscale.core.kql import KqlError
from infiniscale.core.model.identity import User
from infiniscale.core.search import DEFAULT_LIMIT, Found
from infiniscale.core.sharing import SHARE_JAIL
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.webdav import xml
from infiniscale.protocols.webdav.context import DavContext
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.propfind import MULTISTATUS_TYPE, PropRequest, RenderPlan
from infiniscale.protocols.webdav.routing import HREF_SAFE
from infiniscale.protocols.webdav.xml import DAV, OC

ALWAYS = tuple(f"{{{ns}}}{name}" for ns, name in (
    (OC, "fileid"), (OC, "file-parent"), (OC, "name"), (DAV, "getlastmodified"), (DAV, "getcontenttype"),
    (OC, "permissions"), (OC, "tags"), (DAV, "getetag"), (DAV, "resourcetype"), (OC, "size"),
    (DAV, "getcontentlength")))
EXTRA = frozenset(f"{{{OC}}}{name}" for name in ("score", "highlights", "shareid", "shareroot", "remote-item-id"))


def local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


async def search_files(dav: DavContext, req: Request, root, user: User) -> None:
    if dav.search is None:
        raise DavError(501, "search is not enabled", "Sabre\\DAV\\Exception\\NotImplemented")
    pattern, limit, names = "", DEFAULT_LIMIT, []
    for child in root:
        if local(child.tag) == "search":
            for el in child:
                if local(el.tag) == "pattern":
                    pattern = el.text or ""
                elif local(el.tag) == "limit":
                    try:
                        limit = int((el.text or "0").strip() or 0)
                    except ValueError:
                        raise DavError(400, "error: bad request: the limit is no number") from None
        elif child.tag == f"{{{DAV}}}prop":
            names.extend(el.tag for el in child if isinstance(el.tag, str) and el.tag not in EXTRA)
    if not pattern.strip():
        raise DavError(400, "error: bad request: empty query provided")
    try:
        results = await dav.search.search(user, pattern, limit)
    except KqlError as exc:
        raise DavError(400, f"error: bad request: {exc}") from None
    prefix = "/remote.php/dav/spaces" if req.raw_path.startswith(b"/remote.php/") else "/dav/spaces"
    plan = RenderPlan(PropRequest("prop", tuple(dict.fromkeys((*ALWAYS, *names)))))
    parts = [xml.XML_HEADER, f"<d:multistatus{xml.NS_DECL}>"]
    for found in results.found:
        parts.append(await _render(dav, user, plan, prefix, found))
    parts.append("</d:multistatus>")
    headers = [("content-type", MULTISTATUS_TYPE), ("dav", "1, 3, extended-mkcol")]
    if results.found:
        headers.append(("content-range", f"rows 0-{len(results.found) - 1}/{results.total}"))
    await respond(req.send, 207, headers, "".join(parts).encode())


async def _render(dav: DavContext, user: User, plan: RenderPlan, prefix: str, found: Found) -> str:
    chain, node, share = found.chain, found.chain[-1], found.share
    ctx = await dav.render_context(user, chain)
    root = chain[found.start]
    names = [n.name for n in chain[found.start + 1:]]
    if share is None:
        head = f"{dav.files.storage_id_of(node.space_id)}${node.space_id}"
        extra = ""
    else:  # addressed through the share
        head = f"{SHARE_JAIL}!{share.id}"
        extra = (xml.element(f"{{{OC}}}shareid", xml.escape(share.id))
                 + xml.element(f"{{{OC}}}shareroot", xml.escape("/" + root.name))
                 + xml.element(f"{{{OC}}}remote-item-id", dav.files.resource_id(root)))
    href = quote("/".join((prefix, head, *names)) + ("/" if node.is_folder else ""), safe=HREF_SAFE)
    extra += xml.element(f"{{{OC}}}highlights", xml.escape(found.hit.highlights))
    extra += xml.element(f"{{{OC}}}score", repr(found.hit.score))
    rendered = plan.render(ctx, href, node, True)
    at = rendered.index("</d:prop>")  # the first propstat is the found one: fileid is always there
    return rendered[:at] + extra + rendered[at:]
