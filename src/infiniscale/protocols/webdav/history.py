"""WebDAV for versions (`/dav/meta/<fileid>/v`) and trash bins (`/dav/trash-bin/<user>`,
`/dav/spaces/trash-bin/<space id>`), with oCIS's hrefs, properties and status codes.

Version keys on the wire are `<node id>.REV.<RFC 3339 UTC time with nanoseconds>` of the replaced
content's mtime; trash keys are the deleted node's id, and `<id>/<path>` below a deleted folder.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from email.utils import formatdate
from urllib.parse import quote

from infiniscale.core.history import History
from infiniscale.core.model.errors import InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import NodeInfo, Revision, TrashItem
from infiniscale.core.sharing import LINK_USER_PREFIX
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.webdav import transfer, xml
from infiniscale.protocols.webdav.context import DavContext
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.properties import http_date
from infiniscale.protocols.webdav.propfind import MULTISTATUS_TYPE, PropRequest, parse_propfind, read_xml
from infiniscale.protocols.webdav.routing import HREF_SAFE, destination, split_segments
from infiniscale.protocols.webdav.xml import DAV, OC

META_PREFIXES = ("/remote.php/dav/meta", "/dav/meta")
TRASH_PREFIXES = ("/remote.php/dav/spaces/trash-bin", "/dav/spaces/trash-bin",
                  "/remote.php/dav/trash-bin", "/dav/trash-bin")
PREFIXES = META_PREFIXES + TRASH_PREFIXES
REV = ".REV."

# properties of a trash item, in oCIS's allprop order
ORIGINAL_FILENAME = f"{{{OC}}}trashbin-original-filename"
ORIGINAL_LOCATION = f"{{{OC}}}trashbin-original-location"
DELETE_TIMESTAMP = f"{{{OC}}}trashbin-delete-timestamp"
DELETE_DATETIME = f"{{{OC}}}trashbin-delete-datetime"
RESOURCETYPE = f"{{{DAV}}}resourcetype"
CONTENTLENGTH = f"{{{DAV}}}getcontentlength"
CONTENTTYPE = f"{{{DAV}}}getcontenttype"
LASTMODIFIED = f"{{{DAV}}}getlastmodified"
ETAG = f"{{{DAV}}}getetag"
SIZE = f"{{{OC}}}size"
SPACEID = f"{{{OC}}}spaceid"
FILEID = f"{{{OC}}}fileid"
ID = f"{{{OC}}}id"
FAVORITE = f"{{{OC}}}favorite"
FILE_PARENT = f"{{{OC}}}file-parent"
PERMISSIONS = f"{{{OC}}}permissions"
META_PATH = f"{{{OC}}}meta-path-for-user"
COLLECTION = "<d:collection/>"


def handles(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)


# ------------------------------------------------------------------------------------- rendering

def _response(href: str, values: dict[str, str | None], request: PropRequest, minimal: bool,
              always: tuple[str, ...] = ()) -> str:
    """One d:response: `values` maps property names to their XML content (None: not available
    for this entry). allprop gives every available one; `always` are reported 404 when missing."""
    if request.mode == "prop":
        names = request.names
    else:
        names = tuple(n for n, v in values.items() if v is not None) + tuple(
            n for n in always if values.get(n) is None)
    if request.mode == "propname":
        found = [xml.empty_element(n) for n in names if values.get(n) is not None]
        missing: list[str] = []
    else:
        found = [xml.element(n, values[n]) if values[n] else xml.empty_element(n)  # type: ignore[arg-type]
                 for n in names if values.get(n) is not None]
        missing = [xml.empty_element(n) for n in names if values.get(n) is None]
    parts = ["<d:response><d:href>", href, "</d:href>"]
    if found or not missing:
        parts += ["<d:propstat><d:prop>", *found, "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"]
    if missing and not minimal:
        parts += ["<d:propstat><d:prop>", *missing, "</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>"]
    parts.append("</d:response>")
    return "".join(parts)


async def _multistatus(req: Request, responses: list[str], minimal: bool) -> None:
    headers = [("content-type", MULTISTATUS_TYPE), ("dav", "1, 3, extended-mkcol"), ("vary", "Prefer")]
    if minimal:
        headers.append(("preference-applied", "return=minimal"))
    body = xml.XML_HEADER + f"<d:multistatus{xml.NS_DECL}>" + "".join(responses) + "</d:multistatus>"
    await respond(req.send, 207, headers, body.encode())


def _minimal(req: Request) -> bool:
    return "return=minimal" in (req.header("prefer") or "").lower()


def _rfc1123z(ns: int) -> str:
    """`Tue, 02 Jan 2024 03:04:05 +0000`, the form oCIS gives trash deletion times."""
    return formatdate(ns / 1e9, usegmt=False).replace("-0000", "+0000")


def version_key(rev: Revision) -> str:
    moment = datetime.datetime.fromtimestamp(int(rev.key) // 1_000_000_000, datetime.UTC)
    fraction = f"{int(rev.key) % 1_000_000_000:09d}".rstrip("0")
    return f"{rev.node_id}{REV}{moment:%Y-%m-%dT%H:%M:%S}{'.' + fraction if fraction else ''}Z"


def parse_version_key(key: str, node_id: str) -> str:
    """The storage key of a wire key (NotFound when it names another file or is malformed)."""
    owner, sep, stamp = key.partition(REV)
    if not sep or owner != node_id or not stamp.endswith("Z"):
        raise NotFound("version not found")
    whole, _, fraction = stamp[:-1].partition(".")
    try:
        moment = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    except ValueError:
        raise NotFound("version not found") from None
    if fraction and not (fraction.isdigit() and len(fraction) <= 9):
        raise NotFound("version not found")
    return str(int(moment.timestamp()) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")))


# ------------------------------------------------------------------------------------- dispatch

async def dispatch(dav: DavContext, history: History, req: Request, user: User) -> None:
    raw = req.raw_path.split(b"?", 1)[0]
    path = raw.decode("latin-1")
    if user.id.startswith(LINK_USER_PREFIX):
        raise DavError(401, "no access through a public link", "Sabre\\DAV\\Exception\\NotAuthenticated")
    for prefix in META_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            await _meta(dav, history, req, user, prefix, split_segments(raw[len(prefix):]))
            return
    for prefix in TRASH_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            await _trash(dav, history, req, user, prefix, split_segments(raw[len(prefix):]))
            return
    raise DavError(404, "not a WebDAV path")


# ------------------------------------------------------------------------------------- versions

async def _meta(dav: DavContext, history: History, req: Request, user: User, prefix: str,
                segments: list[str]) -> None:
    if not segments:
        if req.method == "PROPFIND":
            await _multistatus(req, [_response(prefix + "/", {}, PropRequest("allprop"), False)], False)
            return
        raise DavError(400, "a file id is required")
    try:
        rid = ResourceId.parse(segments[0])
    except InvalidArgument:
        raise NotFound(f"resource {segments[0]} not found") from None
    if rid.node_id is None:
        raise NotFound(f"resource {segments[0]} not found")
    base = f"{prefix}/{quote(segments[0], safe=HREF_SAFE)}"
    rest = segments[1:]
    if not rest:
        if req.method != "PROPFIND":
            raise DavError(400, "only PROPFIND is supported here")
        await _meta_path(dav, req, user, rid, base)
        return
    if rest[0] != "v" or len(rest) > 2:
        raise DavError(404, "not found")
    if req.method == "OPTIONS":
        await respond(req.send, 204, [("allow", "OPTIONS, PROPFIND, GET, HEAD, COPY"), ("dav", "1, 2")])
        return
    chain = await dav.files.resolve_id(user, rid, [])
    node = chain[-1]
    if len(rest) == 1:
        if req.method != "PROPFIND":
            raise DavError(501, "not implemented", "Sabre\\DAV\\Exception\\NotImplemented")
        await _list_versions(dav, history, req, user, chain, base)
        return
    key = parse_version_key(rest[1], node.id)
    if req.method in ("GET", "HEAD"):
        if not await dav.files.allows(user, chain, "initiate_file_download"):
            raise DavError(403, "no permission to download", "Sabre\\DAV\\Exception\\Forbidden")
        rev = await history.version(user, chain, key)
        content = await history.open_version(rev, node.space_id)
        as_version = replace(node, size=rev.size, mtime_ns=rev.mtime_ns, tmtime_ns=rev.mtime_ns,
                             blob_id=rev.blob_id, checksums=rev.checksums)
        try:
            await transfer._send_content(dav, req, as_version, content, req.method == "HEAD")
        finally:
            content.close()
        return
    if req.method == "COPY":  # oCIS restores whatever the Destination says
        await history.restore_version(user, chain, key)
        await respond(req.send, 204)
        return
    raise DavError(501, "not implemented", "Sabre\\DAV\\Exception\\NotImplemented")


async def _meta_path(dav: DavContext, req: Request, user: User, rid: ResourceId, base: str) -> None:
    request = parse_propfind(await read_xml(dav, req))
    if request.mode != "prop" or META_PATH not in request.names:
        raise DavError(400, "the request must ask for oc:meta-path-for-user")
    try:
        chain = await dav.files.resolve_id(user, rid, [])
    except NotFound:
        raise NotFound(f"resource {rid} not found") from None
    path = "/" + "/".join(n.name for n in chain[1:])
    ctx = await dav.render_context(user, chain)
    full_id = f"{ctx.storage_id}${chain[-1].space_id}!{chain[-1].id}"
    values = {META_PATH: xml.escape(path), ID: full_id, FILEID: full_id,
              SPACEID: f"{ctx.storage_id}${chain[-1].space_id}"}
    await _multistatus(req, [_response(base + "/", values, request, _minimal(req))], _minimal(req))


async def _list_versions(dav: DavContext, history: History, req: Request, user: User, chain: list[NodeInfo],
                         base: str) -> None:
    request = parse_propfind(await read_xml(dav, req))
    minimal = _minimal(req)
    versions = await history.versions(user, chain)
    node = chain[-1]
    collection = {RESOURCETYPE: COLLECTION, SIZE: "0", FAVORITE: "0", FILE_PARENT: None, ETAG: None}
    responses = [_response(base + "/", collection, request, minimal, always=(FILE_PARENT,))]
    for rev in versions:
        key = version_key(rev)
        version_id = f"versions$!{node.id}@{key}"
        as_version = replace(node, mtime_ns=rev.mtime_ns, tmtime_ns=rev.mtime_ns)
        values = {ID: version_id, FILEID: version_id, SPACEID: "versions$", ETAG: as_version.etag,
                  RESOURCETYPE: "", CONTENTLENGTH: str(rev.size), LASTMODIFIED: http_date(rev.mtime_ns),
                  FAVORITE: "0", FILE_PARENT: None}
        if request.mode == "prop":
            values[PERMISSIONS] = ""  # asked for by name only: empty, as oCIS answers it
        responses.append(_response(f"{base}/v/{quote(key, safe=HREF_SAFE)}", values, request, minimal,
                                   always=(FILE_PARENT,)))
    await _multistatus(req, responses, minimal)


# ------------------------------------------------------------------------------------- trash bin

async def _trash(dav: DavContext, history: History, req: Request, user: User, prefix: str,
                 segments: list[str]) -> None:
    if not segments:
        raise DavError(405, "a user or space is required", "Sabre\\DAV\\Exception\\MethodNotAllowed")
    head, keys = segments[0], segments[1:]
    if "/spaces/" in prefix:
        try:
            space_id = ResourceId.parse(head).space_id
        except InvalidArgument:
            raise NotFound("space not found") from None
    else:
        if head != user.username:
            raise NotFound("not found")
        space_id = await dav.files.ensure_personal_space(user)
    base = f"{prefix}/{quote(head, safe=HREF_SAFE)}/"
    if req.method == "PROPFIND":
        await _list_trash(dav, history, req, user, space_id, base, keys)
    elif req.method == "MOVE":
        if not keys:
            raise DavError(501, "not implemented", "Sabre\\DAV\\Exception\\NotImplemented")
        await _restore(dav, history, req, user, space_id, prefix, head, keys)
    elif req.method == "DELETE":
        if not keys:
            await history.empty(user, space_id)
        elif len(keys) > 1:
            raise DavError(501, "only whole trash items can be purged", "Sabre\\DAV\\Exception\\NotImplemented")
        else:
            try:
                await history.purge(user, space_id, keys[0])
            except (NotFound, InvalidArgument):
                raise DavError(409, f"key {keys[0]} not found", "Sabre\\DAV\\Exception\\Conflict") from None
        await respond(req.send, 204)
    elif req.method == "OPTIONS":
        await respond(req.send, 204, [("allow", "OPTIONS, PROPFIND, MOVE, DELETE"), ("dav", "1, 2")])
    else:
        raise DavError(501, "not implemented", "Sabre\\DAV\\Exception\\NotImplemented")


def _trash_root(href: str) -> str:
    return (f"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:resourcetype><d:collection/>"
            "</d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat><d:propstat><d:prop>"
            "<oc:trashbin-original-filename/><oc:trashbin-original-location/><oc:trashbin-delete-datetime/>"
            "<d:getcontentlength/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>")


def _item_values(node: NodeInfo, location: str, deleted_ns: int, space_id: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {
        ORIGINAL_FILENAME: xml.escape(node.name), ORIGINAL_LOCATION: xml.escape(location),
        DELETE_TIMESTAMP: str(deleted_ns // 1_000_000_000), DELETE_DATETIME: _rfc1123z(deleted_ns),
    }
    if node.is_folder:
        values |= {RESOURCETYPE: COLLECTION, SIZE: str(node.size), CONTENTTYPE: "httpd/unix-directory"}
    else:
        values |= {RESOURCETYPE: "", CONTENTLENGTH: str(node.size)}
    values[SPACEID] = space_id
    return values


def _allprop(values: dict[str, str | None]) -> dict[str, str | None]:
    """Trash items leave the content type out of allprop."""
    return {k: v for k, v in values.items() if k != CONTENTTYPE}


async def _list_trash(dav: DavContext, history: History, req: Request, user: User, space_id: str, base: str,
                      keys: list[str]) -> None:
    depth = (req.header("depth") or "1").strip().lower()
    if depth not in ("0", "1", "infinity"):
        raise DavError(400, f"Invalid Depth header value: {depth}")
    if depth == "infinity" and not dav.config.allow_depth_infinity:
        raise DavError(400, "Invalid Depth header value: infinity")
    request = parse_propfind(await read_xml(dav, req))
    minimal = _minimal(req)
    responses: list[str] = []

    def render(href: str, values: dict[str, str | None]) -> str:
        return _response(href, values if request.mode == "prop" else _allprop(values), request, minimal)

    if not keys:
        responses.append(_trash_root(base))
        if depth != "0":
            for item in await history.trash(user, space_id):
                responses.append(render(_item_href(base, [item.node.id], item.node.is_folder), _item_values(
                    item.node, item.origin_path, item.deleted_ns, space_id)))
                if depth == "infinity" and item.node.is_folder:
                    responses += await _below(history, space_id, base, item, [], item.node, render, True)
        await _multistatus(req, responses, minimal)
        return
    item, node = await history.trash_entry(user, space_id, keys[0], keys[1:])
    location = "/".join([item.origin_path, *keys[1:]])
    if depth == "0" or not node.is_folder:
        responses.append(render(_item_href(base, keys, node.is_folder),
                                _item_values(node, location, item.deleted_ns, space_id)))
    else:
        responses.append(_trash_root(_item_href(base, keys, True)))
        responses += await _below(history, space_id, base, item, keys[1:], node, render, depth == "infinity")
    await _multistatus(req, responses, minimal)


def _item_href(base: str, keys: list[str], folder: bool) -> str:
    return base + "/".join(quote(k, safe=HREF_SAFE) for k in keys) + ("/" if folder else "")


async def _below(history: History, space_id: str, base: str, item: TrashItem, names: list[str], folder: NodeInfo,
                 render, recursive: bool) -> list[str]:
    """The entries of `folder`, which is `names` inside the deleted item."""
    out = []
    for child in sorted(await history.children(space_id, folder), key=lambda c: c.name):
        keys = [item.node.id, *names, child.name]
        location = "/".join([item.origin_path, *names, child.name])
        out.append(render(_item_href(base, keys, child.is_folder),
                          _item_values(child, location, item.deleted_ns, space_id)))
        if recursive and child.is_folder:
            out += await _below(history, space_id, base, item, [*names, child.name], child, render, True)
    return out


async def _restore(dav: DavContext, history: History, req: Request, user: User, space_id: str, prefix: str,
                   head: str, keys: list[str]) -> None:
    overwrite_header = (req.header("overwrite") or "T").strip().upper()
    if overwrite_header not in ("T", "F"):
        raise DavError(400, "invalid Overwrite header")
    try:
        target = destination(req.header("destination"), req.header("host"), user)
    except (DavError, NotFound) as exc:  # oCIS answers 400 for any destination it cannot use
        raise DavError(400, f"invalid Destination: {exc}") from None
    dav_root = prefix.split("/trash-bin")[0].removesuffix("/spaces")
    wanted = f"{dav_root}/spaces/{head}" if "/spaces/" in prefix else f"{dav_root}/files/{user.username}"
    if target.kind not in ("files", "spaces") or target.prefix != wanted or not target.names:
        raise DavError(400, "the destination must be in the same space")
    target = await dav.rewrite(target, user)
    try:
        parent = await dav.files.resolve(user, space_id, target.names[:-1])
    except NotFound:
        raise DavError(409, "the destination's parent does not exist") from None
    existing = await dav.files.child(parent[-1], target.names[-1])
    if existing is not None and overwrite_header == "F":
        raise DavError(412, "the destination exists and Overwrite is F", "Sabre\\DAV\\Exception\\PreconditionFailed")
    restored, replaced = await history.restore(user, space_id, keys[0], parent, target.names[-1],
                                               overwrite_header == "T", names=keys[1:])
    await respond(req.send, 204 if replaced else 201, transfer.node_headers(dav, restored)[:3])

