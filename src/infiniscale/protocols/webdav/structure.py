"""MKCOL, DELETE, COPY and MOVE."""

from __future__ import annotations

from infiniscale.core import locks as locking
from infiniscale.core.model.errors import AlreadyExists, PreconditionFailed
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.webdav import routing
from infiniscale.protocols.webdav.context import DavContext, check_if_header
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.routing import Target
from infiniscale.protocols.webdav.transfer import node_headers


async def mkcol(dav: DavContext, req: Request, target: Target, user: User) -> None:
    if req.has_body():
        await req.drain()
        raise DavError(415, "MKCOL with a body is not supported",
                       "Sabre\\DAV\\Exception\\UnsupportedMediaType")
    if not target.names:
        raise DavError(405, "the resource already exists", "Sabre\\DAV\\Exception\\MethodNotAllowed")
    parent, name, existing = await dav.resolve_slot(target, user)
    if existing is not None:
        raise DavError(405, "The resource you tried to create already exists",
                       "Sabre\\DAV\\Exception\\MethodNotAllowed")
    tokens = await check_if_header(dav, req, target, None, user)
    try:
        node = await dav.files.mkdir(user, parent, name, tokens)
    except AlreadyExists:
        raise DavError(405, "The resource you tried to create already exists",
                       "Sabre\\DAV\\Exception\\MethodNotAllowed") from None
    await respond(req.send, 201, [("oc-fileid", dav.files.resource_id(node)), ("oc-etag", node.etag),
                                  ("etag", node.etag)])


async def delete(dav: DavContext, req: Request, target: Target, user: User) -> None:
    chain = await dav.resolve(target, user)
    tokens = await check_if_header(dav, req, target, chain, user)
    if chain[-1].is_root:
        raise DavError(403, "the space root cannot be deleted")
    await dav.files.delete(user, chain, tokens)
    await respond(req.send, 204)


def _overwrite(req: Request) -> bool:
    value = (req.header("overwrite") or "T").strip().upper()
    if value not in ("T", "F"):
        raise DavError(400, "the Overwrite header must be T or F")
    return value == "T"


async def copy_or_move(dav: DavContext, req: Request, target: Target, user: User) -> None:
    is_move = req.method == "MOVE"
    source = await dav.resolve(target, user)
    dest = await dav.rewrite(routing.destination(req.header("destination"), req.header("host"), user), user)
    if dest.kind == "jail":
        raise DavError(403, "nothing can be put into the Shares folder itself")
    overwrite = _overwrite(req)
    depth = (req.header("depth") or "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise DavError(400, "invalid Depth header: COPY and MOVE take 0 or infinity")
    if is_move and depth != "infinity" and source[-1].is_folder:
        raise DavError(400, "MOVE of a collection requires Depth: infinity")
    src_space = source[-1].space_id
    dest_space = dest.space_id or await dav.space_of(dest, user)
    if dest.rid is not None:
        dest_space = dest.rid.space_id
    if is_move and dest_space != src_space:  # a copy streams the content across, a move cannot
        raise DavError(502, "the destination is in another space", "Sabre\\DAV\\Exception\\BadGateway")
    if not dest.names and dest.rid is None:
        raise DavError(403, "cannot overwrite the space root")
    if dest_space == src_space and dest.rid is None and target.rid is None and dest.names == target.names:
        raise DavError(403, "source and destination are the same", "Sabre\\DAV\\Exception\\Forbidden")
    parent, name, dest_existing = await dav.resolve_slot(dest, user)
    if dest_existing is not None and not overwrite:
        raise DavError(412, "the destination exists and Overwrite is F",
                       "Sabre\\DAV\\Exception\\PreconditionFailed")
    tokens = await check_if_header(dav, req, target, source, user)
    if dest_existing is not None:
        locking.require_unlocked(dest_existing, tokens, user.id)  # replacing it is a write to it

    def no_overwrite(current: NodeInfo | None) -> None:
        if current is not None and not overwrite:
            raise PreconditionFailed("the destination exists and Overwrite is F")

    try:
        if is_move:
            node, replaced = await dav.files.move(user, source, parent, name, overwrite, tokens, no_overwrite)
        else:
            node, replaced = await dav.files.copy(user, source, parent, name, overwrite, depth != "0", tokens,
                                                  no_overwrite)
    except AlreadyExists:
        raise DavError(412, "the destination exists", "Sabre\\DAV\\Exception\\PreconditionFailed") from None
    await respond(req.send, 204 if replaced else 201, node_headers(dav, node))
