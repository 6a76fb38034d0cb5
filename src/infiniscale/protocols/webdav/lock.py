"""LOCK and UNLOCK (RFC 4918 §9.10-9.11): exclusive and shared write locks, refresh, timeouts."""

from __future__ import annotations

from infiniscale.core import locks as locking
from infiniscale.core.model.identity import User
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.webdav import xml
from infiniscale.protocols.webdav.context import DavContext, check_if_header
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.properties import lockdiscovery
from infiniscale.protocols.webdav.propfind import read_xml
from infiniscale.protocols.webdav.routing import Target
from infiniscale.protocols.webdav.xml import DAV


def parse_timeout(header: str | None) -> int:
    """Seconds from a `Timeout` header (first acceptable value); 0 means infinite."""
    if not header:
        return locking.DEFAULT_TIMEOUT_S
    for part in header.split(","):
        value = part.strip()
        if value.lower() == "infinite":
            return 0
        if value.lower().startswith("second-") and value[7:].isdigit():
            return max(1, int(value[7:]))
    return locking.DEFAULT_TIMEOUT_S


def _lock_body(lock, href: str) -> bytes:
    return (f'{xml.XML_HEADER}<d:prop xmlns:d="DAV:"><d:lockdiscovery>{lockdiscovery([lock], href)}'
            "</d:lockdiscovery></d:prop>").encode()


async def lock(dav: DavContext, req: Request, target: Target, user: User) -> None:
    root = await read_xml(dav, req)
    timeout = parse_timeout(req.header("timeout"))
    chain = await dav.resolve_or_none(target, user)
    if root is None:
        # a refresh: the If header names the lock
        if chain is None:
            raise DavError(412, "no lock to refresh")
        tokens = await check_if_header(dav, req, target, chain, user)
        if not tokens:
            raise DavError(400, "a lock refresh needs an If header with the lock token")
        refreshed = await dav.files.refresh_lock(user, chain, tokens, timeout)
        href = target.href(target.names, chain[-1].is_folder)
        await respond(req.send, 200, [("content-type", "application/xml; charset=utf-8"),
                                      ("lock-token", f"<{refreshed.token}>")], _lock_body(refreshed, href))
        return
    if root.tag != f"{{{DAV}}}lockinfo":
        raise DavError(400, "the body must be a DAV:lockinfo element")
    scope, owner_xml = None, ""
    for child in root:
        if child.tag == f"{{{DAV}}}lockscope":
            for el in child:
                if el.tag in (f"{{{DAV}}}exclusive", f"{{{DAV}}}shared"):
                    scope = el.tag.split("}")[1]
        elif child.tag == f"{{{DAV}}}owner":
            owner_xml = xml.serialize_element(child)
        elif child.tag == f"{{{DAV}}}locktype" and not any(el.tag == f"{{{DAV}}}write" for el in child):
            raise DavError(400, "only write locks are supported")
    if scope is None:
        raise DavError(400, "lockscope is missing")
    depth = (req.header("depth") or "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise DavError(400, "invalid Depth header for LOCK")
    created = False
    if chain is None:
        parent, name, _ = await dav.resolve_slot(target, user)
        tokens = await check_if_header(dav, req, target, None, user)
        locking.require_unlocked(parent, tokens, user.id)  # creating a member changes the folder
        await dav.files.create_empty_locked(user, parent, name)
        chain = await dav.resolve(target, user)
        created = True
    else:
        await check_if_header(dav, req, target, chain, user)
    new = await dav.files.lock(user, chain, scope, depth if chain[-1].is_folder else "0", owner_xml, timeout)
    await respond(req.send, 201 if created else 200,
                  [("content-type", "application/xml; charset=utf-8"), ("lock-token", f"<{new.token}>")],
                  _lock_body(new, target.href(target.names, chain[-1].is_folder)))


async def unlock(dav: DavContext, req: Request, target: Target, user: User) -> None:
    header = (req.header("lock-token") or "").strip()
    if not header.startswith("<") or not header.endswith(">"):
        raise DavError(400, "the Lock-Token header is missing or malformed")
    chain = await dav.resolve(target, user)
    await dav.files.unlock(user, chain, header[1:-1])
    await respond(req.send, 204)
