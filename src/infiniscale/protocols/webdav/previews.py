"""`GET|HEAD <any DAV file URL>?preview=1&x=&y=&processor=`: a preview image, as oCIS serves it
(size snapped to its resolutions; 400 for bad sizes or a folder, 404 for what has no preview, 403
for a link without downloads or a source too large, 429 with Retry-After when every rendering slot
is busy). Beyond oCIS: an ETag, so a client revalidating gets 304 without the image."""

from __future__ import annotations

import hashlib
import random
from urllib.parse import parse_qs

from infiniscale.core.model.errors import InvalidArgument
from infiniscale.core.model.identity import User
from infiniscale.core.sharing import LINK_USER_PREFIX
from infiniscale.core.thumbnails import TooLarge, TooManyRenders, parse_request
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.webdav import xml
from infiniscale.protocols.webdav.context import DavContext
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.routing import Target


def query_of(req: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(req.query_string, keep_blank_values=True).items()}


def wants_preview(req: Request) -> bool:
    return b"preview=1" in req.scope.get("query_string", b"") and query_of(req).get("preview") == "1"


async def serve(dav: DavContext, req: Request, target: Target, user: User) -> None:
    if dav.previews is None:
        raise DavError(404, "previews are disabled")
    try:
        wanted = parse_request(query_of(req))
    except InvalidArgument as exc:
        raise DavError(400, str(exc)) from None
    chain = await dav.resolve(target, user)
    node = chain[-1]
    if user.id.startswith(LINK_USER_PREFIX) and not await dav.files.allows(user, chain, "initiate_file_download"):
        raise DavError(403, "no download permission")
    try:
        image, content_type = await dav.previews.preview(node, wanted, lambda: dav.files.content_for_reading(node))
    except InvalidArgument as exc:
        raise DavError(400, str(exc)) from None
    except TooLarge as exc:
        raise DavError(403, str(exc)) from None
    except TooManyRenders:
        await respond(req.send, 429, [("content-type", "application/xml; charset=utf-8"),
                                      ("retry-after", str(random.randint(1, 14)))],
                      xml.sabre_error("Sabre\\DAV\\Exception\\TooManyRequests", "Rate limit exceeded"),
                      head_only=req.method == "HEAD")
        return
    etag = '"' + hashlib.md5(image, usedforsecurity=False).hexdigest() + '"'
    headers = [("etag", etag), ("cache-control", "private, no-cache")]
    if etag in (req.header("if-none-match") or ""):
        await respond(req.send, 304, headers, b"")
        return
    await respond(req.send, 200, [("content-type", content_type), *headers], image, head_only=req.method == "HEAD")
