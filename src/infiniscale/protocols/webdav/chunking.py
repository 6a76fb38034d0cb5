"""Chunked uploads of the sync clients.

Chunking NG (Nextcloud client, ownCloud clients without TUS): `MKCOL uploads/<user>/<id>`, one
`PUT uploads/<user>/<id>/<n>` per chunk, then `MOVE uploads/<user>/<id>/.file` to the target,
which joins the chunks in order. PROPFIND lists what arrived (for resuming), DELETE gives up.

Legacy chunking v1 (old ownCloud clients, pyocclient): `PUT <folder>/<name>-chunking-<id>-<n>-<i>`
with `OC-Chunked: 1`, in any order; the request that brings the last missing chunk creates
`<folder>/<name>` and is the only one answered with an ETag.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from infiniscale.core.model.errors import InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.protocols.http import ClientDisconnected, Request, respond
from infiniscale.protocols.webdav import routing
from infiniscale.protocols.webdav.context import DavContext, check_if_header
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.properties import http_date
from infiniscale.protocols.webdav.routing import Target
from infiniscale.protocols.webdav.transfer import _conditions, _respond_written
from infiniscale.protocols.webdav.xml import NS_DECL, XML_HEADER, escape

UPLOAD_PREFIXES = ("/remote.php/dav/uploads/", "/dav/uploads/")
V1_NAME = re.compile(r"^(?P<name>.+)-chunking-(?P<transfer>[A-Za-z0-9_]{1,64})-(?P<count>\d{1,6})-(?P<index>\d{1,6})$")
MULTISTATUS_TYPE = "application/xml; charset=utf-8"


def handles(raw_path: bytes) -> bool:
    path = raw_path.split(b"?", 1)[0]
    return any(path.startswith(prefix.encode()) or path == prefix.rstrip("/").encode()
               for prefix in UPLOAD_PREFIXES)


def _total_length(req: Request) -> int | None:
    value = req.header("oc-total-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise DavError(400, "invalid OC-Total-Length header")
    return int(value.strip())


async def uploads(dav: DavContext, req: Request, user: User) -> None:
    """Everything under `uploads/<user>/`."""
    raw = req.raw_path.split(b"?", 1)[0]
    prefix = next(p for p in UPLOAD_PREFIXES if raw.startswith(p.rstrip("/").encode()))
    segments = routing.split_segments(raw[len(prefix.rstrip("/")):])
    if not segments:
        raise DavError(404, "a user is required")
    if segments[0] not in (user.username, user.id):
        raise NotFound("resource not found")
    base_href = quote(f"{prefix}{segments[0]}/", safe=routing.HREF_SAFE)
    rest = segments[1:]
    if len(rest) > 2:
        raise NotFound("resource not found")
    method = req.method
    if not rest:
        if method == "PROPFIND":
            await req.drain()
            await _multistatus(req, [_collection(base_href)])
            return
        raise DavError(405, f"method {method} is not allowed here", "Sabre\\DAV\\Exception\\MethodNotAllowed")
    transfer = rest[0]
    if len(rest) == 1:
        if method == "MKCOL":
            if req.has_body():
                raise DavError(415, "MKCOL with a body is not supported")
            await dav.uploads.ng_create(user, transfer, _total_length(req))
            await respond(req.send, 201)
        elif method == "DELETE":
            await dav.uploads.ng_delete(user, transfer)
            await respond(req.send, 204)
        elif method == "PROPFIND":
            await req.drain()
            depth = req.header("depth", "1")
            chunks = await dav.uploads.ng_chunks(user, transfer)
            href = base_href + quote(transfer, safe=routing.HREF_SAFE) + "/"
            entries = [_collection(href)]
            if depth != "0":
                entries += [_chunk(href, name, size, mtime) for name, size, mtime in chunks]
            await _multistatus(req, entries)
        else:
            raise DavError(405, f"method {method} is not allowed on an upload",
                           "Sabre\\DAV\\Exception\\MethodNotAllowed")
        return
    chunk = rest[1]
    if method == "PUT":
        try:
            await dav.uploads.ng_put_chunk(user, transfer, chunk, req.stream())
        except ClientDisconnected:
            return
        await respond(req.send, 201)
    elif method == "MOVE" and chunk == ".file":
        await _assemble(dav, req, user, transfer)
    elif method == "DELETE":
        raise DavError(403, "chunks cannot be deleted one by one", "Sabre\\DAV\\Exception\\Forbidden")
    else:
        raise DavError(405, f"method {method} is not allowed on a chunk", "Sabre\\DAV\\Exception\\MethodNotAllowed")


async def _assemble(dav: DavContext, req: Request, user: User, transfer: str) -> None:
    target = await dav.rewrite(routing.destination(req.header("destination"), req.header("host"), user), user)
    if target.kind == "jail":
        raise DavError(403, "nothing can be put into the Shares folder itself")
    parent_chain, name, existing = await dav.resolve_slot(target, user)
    if existing is not None and existing[-1].is_folder:
        raise DavError(409, "a folder exists with this name", "Sabre\\DAV\\Exception\\Conflict")
    tokens = await check_if_header(dav, req, target, existing, user)
    mtime, expected, precondition = _conditions(req)
    precondition(existing[-1] if existing else None)
    node, created = await dav.uploads.ng_assemble(user, transfer, parent_chain, name,
                                                  total_length=_total_length(req), expected=expected,
                                                  mtime_ns=mtime, precondition=precondition, tokens=tokens,
                                                  existing=existing)
    await _respond_written(dav, req, node, created, mtime, user)


def _collection(href: str) -> str:
    return (f"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:resourcetype><d:collection/>"
            f"</d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")


def _chunk(folder_href: str, name: str, size: int, mtime_ns: int) -> str:
    return (f"<d:response><d:href>{folder_href}{escape(name)}</d:href><d:propstat><d:prop><d:resourcetype/>"
            f"<d:getcontentlength>{size}</d:getcontentlength>"
            f"<d:getlastmodified>{http_date(mtime_ns)}</d:getlastmodified>"
            f"<d:getetag>\"{mtime_ns:x}-{size:x}\"</d:getetag></d:prop>"
            f"<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")


async def _multistatus(req: Request, entries: list[str]) -> None:
    body = f"{XML_HEADER}<d:multistatus{NS_DECL}>{''.join(entries)}</d:multistatus>".encode()
    await respond(req.send, 207, [("content-type", MULTISTATUS_TYPE)], body)


# ---------------------------------------------------------------------- legacy v1

async def put_v1(dav: DavContext, req: Request, target: Target, user: User) -> bool:
    """Handles a PUT of a v1 chunk; False when the request is no such chunk."""
    if not req.header("oc-chunked") or not target.names:
        return False
    found = V1_NAME.match(target.names[-1])
    if found is None:
        return False
    count, index = int(found["count"]), int(found["index"])
    file_target = Target(target.kind, target.prefix, target.space_id, target.rid,
                         [*target.names[:-1], found["name"]])
    parent_chain, name, existing = await dav.resolve_slot(file_target, user)
    if existing is not None and existing[-1].is_folder:
        raise DavError(409, "a folder exists with this name", "Sabre\\DAV\\Exception\\Conflict")
    mtime, expected, precondition = _conditions(req)
    precondition(existing[-1] if existing else None)
    try:
        result = await dav.uploads.v1_put_chunk(user, parent_chain, name, found["transfer"], count, index,
                                                req.stream(), expected=expected, mtime_ns=mtime,
                                                precondition=precondition, existing=existing)
    except ClientDisconnected:
        return True
    except InvalidArgument as exc:
        raise DavError(400, str(exc)) from None
    if result is None:
        await respond(req.send, 201)  # not the last chunk: no ETag, the file does not exist yet
        return True
    node, created = result
    await _respond_written(dav, req, node, created, mtime, user)
    return True

