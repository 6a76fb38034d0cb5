"""GET/HEAD (ranges, conditional requests) and PUT (streamed, checksummed, conditional)."""

from __future__ import annotations

import logging
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from infiniscale import memory
from infiniscale.core import locks as locking
from infiniscale.core.checksums import parse_checksum_header
from infiniscale.core.files import Chain
from infiniscale.core.model.errors import NotFound, PreconditionFailed
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo, etag_matches
from infiniscale.core.ports.storage import BlobSource
from infiniscale.core.sharing import LINK_USER_PREFIX
from infiniscale.protocols.http import ClientDisconnected, Request, respond, respond_stream
from infiniscale.protocols.webdav import previews
from infiniscale.protocols.webdav.context import DavContext, check_if_header
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.properties import http_date, mime_type, permissions
from infiniscale.protocols.webdav.routing import Target

log = logging.getLogger("infiniscale.webdav")

SMALL_UPLOAD = 1 << 20  # bodies up to this size are read first and committed in one storage call


def node_headers(dav: DavContext, node: NodeInfo) -> list[tuple[str, str]]:
    headers = [
        ("etag", node.etag),
        ("oc-etag", node.etag),
        ("oc-fileid", dav.files.resource_id(node)),
        ("last-modified", http_date(node.mtime_ns)),
    ]
    if node.checksums.get("sha1"):
        headers.append(("oc-checksum", f"SHA1:{node.checksums['sha1']}"))
    return headers


def parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """Byte ranges as inclusive (start, end) pairs; None when the header is to be ignored;
    an empty list when no range is satisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    ranges = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash:
            return None
        first, last = first.strip(), last.strip()
        if not first:
            if not last.isdigit():
                return None
            length = int(last)
            if length == 0:
                continue
            ranges.append((max(0, size - length), size - 1))
            continue
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        if start >= size:
            continue  # unsatisfiable; 416 when no range is left
        end = int(last) if last else size - 1
        if end < start:
            return None
        ranges.append((start, min(end, size - 1)))
    if len(ranges) > 64:
        return None
    return ranges


async def get(dav: DavContext, req: Request, target: Target, user: User) -> None:
    if previews.wants_preview(req):
        await previews.serve(dav, req, target, user)
        return
    head = req.method == "HEAD"
    node, content = await _open_content(dav, target, user)
    try:
        await _send_content(dav, req, node, content, head)
    finally:
        content.close()
        memory.after_transfer(0 if head else node.size)


async def _open_content(dav: DavContext, target: Target, user: User) -> tuple[NodeInfo, BlobSource]:
    """The node and an open descriptor of its content. An overwrite that commits between reading
    the node and opening its blob removes that blob: then the node is read again."""
    for _attempt in range(5):
        chain = await dav.resolve(target, user)
        node = chain[-1]
        if node.is_folder:
            raise DavError(405, "cannot download a folder", "Sabre\\DAV\\Exception\\MethodNotAllowed")
        if user.id.startswith(LINK_USER_PREFIX) and not await dav.files.allows(user, chain, "initiate_file_download"):
            raise DavError(403, "this link does not allow downloads", "Sabre\\DAV\\Exception\\Forbidden")
        try:
            return node, await dav.files.open_content(node)
        except FileNotFoundError:
            continue
    raise DavError(404, "content not found")


async def _send_content(dav: DavContext, req: Request, node: NodeInfo, content: BlobSource, head: bool) -> None:
    headers = [*node_headers(dav, node), ("accept-ranges", "bytes"),
               ("content-disposition", f"attachment; filename*=UTF-8''{quote(node.name)}; "
                                       f"filename=\"{quote(node.name)}\"")]
    if_none = req.header("if-none-match")
    if if_none and etag_matches(if_none, node):
        await respond(req.send, 304, headers)
        return
    if_match = req.header("if-match")
    if if_match and not etag_matches(if_match, node):
        raise DavError(412, "the etag does not match")
    size = content.size
    ranges = None
    range_header = req.header("range")
    if range_header and not (req.header("if-range") and req.header("if-range") != node.etag):
        ranges = parse_ranges(range_header, size)
        if ranges == []:
            await respond(req.send, 416, [*headers, ("content-range", f"bytes */{size}")])
            return
    content_type = mime_type(node.name)
    if not ranges:
        headers += [("content-type", content_type), ("content-length", str(size))]
        if head:
            await respond(req.send, 200, headers, head_only=True)
        else:
            await respond_stream(req.send, 200, headers, verified(node, content.chunks(0, size - 1)))
        return
    if len(ranges) == 1:
        start, end = ranges[0]
        headers += [("content-type", content_type), ("content-range", f"bytes {start}-{end}/{size}"),
                    ("content-length", str(end - start + 1))]
        if head:
            await respond(req.send, 206, headers, head_only=True)
        else:
            await respond_stream(req.send, 206, headers, content.chunks(start, end))
        return
    boundary = uuid.uuid4().hex
    preambles = [
        (f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
         f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n").encode()
        for start, end in ranges
    ]
    closing = f"\r\n--{boundary}--\r\n".encode()
    total = sum(len(p) for p in preambles) + sum(e - s + 1 for s, e in ranges) + len(closing)
    headers += [("content-type", f"multipart/byteranges; boundary={boundary}"),
                ("content-length", str(total))]

    async def parts() -> AsyncIterator[bytes]:
        for preamble, (start, end) in zip(preambles, ranges, strict=True):
            yield preamble
            async for chunk in content.chunks(start, end):
                yield chunk
        yield closing

    if head:
        await respond(req.send, 206, headers, head_only=True)
    else:
        await respond_stream(req.send, 206, headers, parts())


class CorruptContent(Exception):
    """Stored content no longer matches its checksum: the download is cut off before its end, so
    no client takes wrong bytes for the file."""


async def verified(node: NodeInfo, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A whole file's chunks, checked against its stored Adler-32 (cheap enough for every
    download); the last chunk goes out only once the whole content matched."""
    expected = node.checksums.get("adler32")
    if not expected:
        async for chunk in chunks:
            yield chunk
        return
    value, held = 1, None
    async for chunk in chunks:
        if held is not None:
            yield held
        value = zlib.adler32(chunk, value)
        held = chunk
    if f"{value & 0xFFFFFFFF:08x}" != expected:
        log.error("content of %s (space %s, node %s, blob %s) does not match its checksum: download "
                  "refused; run `infiniscale storage scrub`", node.name, node.space_id, node.id, node.blob_id)
        raise CorruptContent(node.id)
    if held is not None:
        yield held


def _conditions(req: Request) -> tuple[int | None, tuple[str, str] | None, Callable[[NodeInfo | None], None]]:
    """X-OC-Mtime, OC-Checksum and the If-Match/If-None-Match check of a PUT."""
    mtime = _mtime_ns(req.header("x-oc-mtime"))
    checksum_header = req.header("oc-checksum")
    expected = parse_checksum_header(checksum_header) if checksum_header else None
    if_match = req.header("if-match")
    if_none = req.header("if-none-match")

    def precondition(current: NodeInfo | None) -> None:
        if if_match is not None and not etag_matches(if_match, current):
            raise PreconditionFailed("the etag does not match")
        if if_none is not None and etag_matches(if_none, current):
            raise PreconditionFailed("the resource exists")

    return mtime, expected, precondition


async def _put_small(dav: DavContext, req: Request, target: Target, user: User) -> None:
    """A small body without an If header: read it, then resolve, check and commit in one step."""
    mtime, expected, precondition = _conditions(req)
    try:
        data = await req.body(SMALL_UPLOAD)
    except ClientDisconnected:
        return

    def validate(parent: Chain, existing: Chain | None) -> None:
        if not parent[-1].is_folder:
            raise DavError(409, "the parent is not a folder")
        if existing is not None and existing[-1].is_folder:
            raise DavError(409, "a folder exists with this name", "Sabre\\DAV\\Exception\\Conflict")
        locking.require_unlocked(existing or parent, frozenset(), user.id)
        precondition(existing[-1] if existing else None)

    space_id = target.space_id if target.rid is not None else await dav.space_of(target, user)
    try:
        node, created = await dav.files.upload_small(user, space_id, target.names, data, rid=target.rid,
                                                     validate=validate, expected=expected, mtime_ns=mtime,
                                                     precondition=precondition)
    except NotFound:
        if target.rid is not None and len(target.names) == 1:
            raise  # the resource the URL names by id is itself missing (or not the caller's to see)
        raise DavError(409, "the parent folder does not exist") from None
    await _respond_written(dav, req, node, created, mtime, user)


async def _respond_written(dav: DavContext, req: Request, node: NodeInfo, created: bool, mtime: int | None,
                           user: User) -> None:
    level = (await dav.files.access(user, node.space_id, node=node))[1].level
    headers = [*node_headers(dav, node), ("oc-perm", permissions(node, level))]
    if mtime is not None:
        headers.append(("x-oc-mtime", "accepted"))
    await respond(req.send, 201 if created else 204, headers)


def _mtime_ns(header: str | None) -> int | None:
    if not header:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        raise DavError(400, "invalid X-OC-Mtime header") from None
    if seconds != seconds or seconds < 0 or seconds > 1e11:  # NaN or absurd
        raise DavError(400, "invalid X-OC-Mtime header")
    return int(seconds * 1e9)


async def put(dav: DavContext, req: Request, target: Target, user: User) -> None:
    if req.header("content-range"):
        raise DavError(501, "Content-Range is not supported on PUT",
                       "Sabre\\DAV\\Exception\\NotImplemented")
    if not target.names:
        raise DavError(409, "cannot write to the space root", "Sabre\\DAV\\Exception\\Conflict")
    dav.files.name(target.names[-1])
    length = req.header("content-length") or ""
    if not req.header("if") and length.isdigit() and int(length) <= SMALL_UPLOAD:
        await _put_small(dav, req, target, user)
        return
    parent_chain, name, existing = await dav.resolve_slot(target, user)
    if existing is not None and existing[-1].is_folder:
        raise DavError(409, "a folder exists with this name", "Sabre\\DAV\\Exception\\Conflict")
    tokens = await check_if_header(dav, req, target, existing, user)
    mtime, expected, precondition = _conditions(req)
    precondition(existing[-1] if existing else None)  # fail early, before the upload is received
    try:
        node, created = await dav.files.upload(user, parent_chain, name, req.stream(), expected=expected,
                                               mtime_ns=mtime, precondition=precondition, tokens=tokens,
                                               existing=existing,
                                               expected_size=int(length) if length.isdigit() else None)
    except ClientDisconnected:
        return
    await _respond_written(dav, req, node, created, mtime, user)
    memory.after_transfer(node.size)
