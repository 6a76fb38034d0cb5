"""TUS 1.0 (creation, creation-with-upload, checksum, expiration, termination) as oCIS serves it:
POST on a WebDAV folder URL opens an upload, the bytes go to `<public URL>/data/<upload id>`
with PATCH, HEAD tells the offset, DELETE drops the upload."""

from __future__ import annotations

import base64
import binascii

from infiniscale import memory
from infiniscale.core.checksums import parse_checksum_header
from infiniscale.core.model.errors import (
    ChecksumMismatch,
    Conflict,
    InvalidArgument,
    InvalidName,
    Locked,
    NotFound,
    PreconditionFailed,
    StorageError,
)
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.uploads import UploadSession
from infiniscale.protocols.http import ClientDisconnected, Request, respond
from infiniscale.protocols.webdav.context import DavContext
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.properties import http_date, permissions
from infiniscale.protocols.webdav.routing import Target, descend
from infiniscale.protocols.webdav.transfer import _mtime_ns, node_headers

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,checksum,expiration,termination"
CHECKSUM_ALGORITHMS = "md5,sha1,crc32,adler32"
OFFSET_STREAM = "application/offset+octet-stream"
DATA_PREFIX = "/data/"


def tus_headers(session: UploadSession | None = None) -> list[tuple[str, str]]:
    headers = [("tus-resumable", VERSION), ("cache-control", "no-store")]
    if session is not None:
        headers += [("upload-offset", str(session.offset)),
                    ("upload-expires", http_date(session.expires_ns))]
    return headers


def finished_headers(dav: DavContext, node: NodeInfo, mtime_ns: int | None, user_id: str) -> list[tuple[str, str]]:
    headers = [*node_headers(dav, node), ("oc-perm", permissions(node, dav.files.uploader_level(user_id, node)))]
    if mtime_ns is not None:
        headers.append(("x-oc-mtime", "accepted"))
    return headers


def parse_metadata(header: str | None) -> dict[str, str]:
    """`key base64,key base64,key` -> {key: text}; a key may come without a value."""
    out: dict[str, str] = {}
    if not header:
        return out
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key:
            continue
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise DavError(400, f"invalid Upload-Metadata value for {key!r}") from None
    return out


def _require_version(req: Request) -> None:
    if req.header("tus-resumable") != VERSION:
        raise DavError(412, "Tus-Resumable 1.0.0 is required", "Sabre\\DAV\\Exception\\PreconditionFailed")


def _length(value: str | None, header: str) -> int:
    if value is None or not value.strip().isdigit():
        raise DavError(412 if header == "Upload-Length" else 400, f"a valid {header} header is required")
    return int(value.strip())


async def create(dav: DavContext, req: Request, target: Target, user: User) -> None:
    """POST on a folder: opens an upload, optionally with its first bytes (or all of them)."""
    _require_version(req)
    length = _length(req.header("upload-length"), "Upload-Length")
    meta = parse_metadata(req.header("upload-metadata"))
    # a plain path relative to the folder of the request, not URL-encoded
    relative = [part for part in meta.get("filename", "").split("/") if part]
    if any(part in (".", "..") or "\x00" in part for part in relative):
        raise DavError(412, "invalid filename", "Sabre\\DAV\\Exception\\PreconditionFailed")
    if not relative:
        raise DavError(412, "the filename metadata is required", "Sabre\\DAV\\Exception\\PreconditionFailed")
    try:
        dav.files.name(relative[-1])
    except (InvalidName, InvalidArgument) as exc:
        raise DavError(412, str(exc), "Sabre\\DAV\\Exception\\PreconditionFailed") from None
    file_target = await dav.rewrite(descend(target, relative), user)
    if file_target.kind == "jail":
        raise DavError(403, "nothing can be put into the Shares folder itself")
    parent_chain, name, existing = await dav.resolve_slot(file_target, user)
    mtime = _mtime_ns(meta.get("mtime") or req.header("x-oc-mtime"))
    checksum = meta.get("checksum", "").strip()
    expected = None
    if checksum:
        try:
            expected = parse_checksum_header(checksum)
        except InvalidArgument as exc:
            raise DavError(400, str(exc)) from None
    session = await dav.uploads.create(user, parent_chain, name, length, mtime_ns=mtime, expected=expected,
                                       if_match=req.header("if-match"), existing=existing)
    headers = [("location", f"{dav.config.base_url}{DATA_PREFIX}{session.id}"), *tus_headers()]
    node = None
    if length == 0:
        node, _created = await dav.uploads.finish_empty(session)
    elif req.has_body() and (req.header("content-type") or "").startswith(OFFSET_STREAM):
        try:
            session, node, _created = await dav.uploads.write(session.id, 0, req.stream(),
                                                              _chunk_checksum(req))
        except ClientDisconnected:
            return
    await req.drain()  # a body that was not meant as upload data
    headers += [("upload-offset", str(length if node is not None else session.offset)),
                ("upload-expires", http_date(session.expires_ns))]
    if node is not None:
        headers += finished_headers(dav, node, mtime, user.id)
    await respond(req.send, 201, headers)


def _chunk_checksum(req: Request) -> tuple[str, bytes] | None:
    header = req.header("upload-checksum")
    if not header:
        return None
    algorithm, _, value = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in ("sha1", "md5", "crc32", "adler32"):
        raise DavError(400, f"unsupported checksum algorithm {algorithm!r}")
    try:
        return algorithm, base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise DavError(400, "invalid Upload-Checksum value") from None


# ---------------------------------------------------------------------- /data/<upload id>

DATA_ERRORS: tuple[tuple[type[StorageError], int], ...] = (
    (NotFound, 404), (Locked, 423), (Conflict, 409), (PreconditionFailed, 412),
    (ChecksumMismatch, 460), (InvalidArgument, 400),
)


async def data(dav: DavContext, req: Request) -> None:
    """The upload URL a POST handed out. The unguessable id is the credential, as the transfer
    token in oCIS's URL is: a client may send its Authorization header or not."""
    session_id = req.scope["path"][len(DATA_PREFIX):].strip("/")
    try:
        await _data(dav, req, session_id)
    except DavError as exc:
        await req.drain()
        await respond(req.send, exc.status, [*tus_headers(), ("content-type", "text/plain; charset=utf-8")],
                      exc.message.encode(), head_only=req.method == "HEAD")
    except StorageError as exc:
        status = next((code for cls, code in DATA_ERRORS if isinstance(exc, cls)), 400)
        await req.drain()
        await respond(req.send, status, [*tus_headers(), ("content-type", "text/plain; charset=utf-8")],
                      str(exc).encode(), head_only=req.method == "HEAD")
    except ClientDisconnected:
        return


async def _data(dav: DavContext, req: Request, session_id: str) -> None:
    if req.method == "OPTIONS":
        await respond(req.send, 204, [("tus-resumable", VERSION), ("tus-version", VERSION),
                                      ("tus-extension", EXTENSIONS),
                                      ("tus-checksum-algorithm", CHECKSUM_ALGORITHMS)])
        return
    if req.method == "HEAD":
        _require_version(req)
        session = await dav.uploads.get(session_id)
        await respond(req.send, 200, [*tus_headers(session), ("upload-length", str(session.length))],
                      head_only=True)
        return
    if req.method == "DELETE":
        _require_version(req)
        await dav.uploads.terminate(session_id)
        await respond(req.send, 204, tus_headers())
        return
    if req.method != "PATCH":
        raise DavError(405, f"method {req.method} is not supported on an upload")
    _require_version(req)
    if not (req.header("content-type") or "").startswith(OFFSET_STREAM):
        raise DavError(415, f"Content-Type must be {OFFSET_STREAM}")
    offset = _length(req.header("upload-offset"), "Upload-Offset")
    session, node, _created = await dav.uploads.write(session_id, offset, req.stream(), _chunk_checksum(req))
    headers = tus_headers(session)
    if node is not None:
        headers += finished_headers(dav, node, session.mtime_ns, session.user_id)
    await respond(req.send, 204, headers)
    if node is not None:
        memory.after_transfer(node.size)
