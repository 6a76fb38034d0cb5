"""URL -> (space, path) for every WebDAV namespace oCIS serves, and back to hrefs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

from infiniscale.core.model.errors import InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.sharing import SHARE_JAIL, SHARE_JAIL_DRIVE
from infiniscale.protocols.webdav.errors import DavError

# prefix -> kind; longest first so /remote.php/dav/files wins over /remote.php/webdav
PREFIXES = (
    ("/remote.php/dav/public-files/", "public"),
    ("/dav/public-files/", "public"),
    ("/remote.php/dav/files/", "files"),
    ("/remote.php/dav/spaces/", "spaces"),
    ("/remote.php/webdav", "legacy"),
    ("/dav/files/", "files"),
    ("/dav/spaces/", "spaces"),
    ("/webdav", "legacy"),
)
# hrefs go into XML text unescaped: & is percent-encoded, so nothing in them needs XML escaping
HREF_SAFE = "/-_.~!$'()*+,;=:@"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.~!$'()*+,;=:@-]*")


SHARES_FOLDER = "Shares"  # where received shares appear in the personal namespaces


@dataclass(frozen=True)
class Target:
    # "files" | "spaces" | "legacy" | "jail" (the Shares space; below a mount: "spaces") | "public" |
    # "share" (a received share by id, as search results address them; becomes "spaces")
    kind: str
    prefix: str  # decoded URL prefix up to the space root, without trailing slash
    space_id: str | None  # personal space when None (resolved later from the user)
    rid: ResourceId | None  # id-based access through /dav/spaces/<resource id>
    names: list[str]
    token: str = ""  # a public link's token (kind "public") or a share's id (kind "share")

    def href(self, names: list[str], folder: bool) -> str:
        path = self.prefix + "".join("/" + n for n in names)
        if folder:
            path += "/"
        return quote(path, safe=HREF_SAFE)

    @staticmethod
    def child_href(folder_href: str, name: str, folder: bool) -> str:
        """The href of an entry of the folder whose (encoded, slash-terminated) href is given."""
        encoded = name if _PLAIN_NAME.fullmatch(name) else quote(name, safe=HREF_SAFE)
        return folder_href + encoded + ("/" if folder else "")


def descend(target: Target, names: list[str]) -> Target:
    """The target of `names` below `target`: a path into Shares/ of a personal namespace goes to
    the Shares space (TUS clients name the file by a path relative to the folder they POST to)."""
    combined = [*target.names, *names]
    if target.kind in ("files", "legacy") and combined[:1] == [SHARES_FOLDER]:
        return Target("jail", f"{target.prefix}/{SHARES_FOLDER}", None, None, combined[1:])
    return Target(target.kind, target.prefix, target.space_id, target.rid, combined)


def split_segments(raw: bytes) -> list[str]:
    """Splits a raw (still percent-encoded) path into decoded segments. Refuses what could escape
    the namespace or is no valid name: dot segments, encoded slashes, NUL, invalid UTF-8."""
    segments = []
    for part in raw.split(b"/"):
        if not part:
            continue
        decoded = unquote_to_bytes(part)
        if b"/" in decoded or b"\x00" in decoded:
            raise DavError(400, "invalid path segment")
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise DavError(400, "path is not valid UTF-8") from None
        if text in (".", ".."):
            raise DavError(400, "dot segments are not allowed")
        segments.append(text)
    return segments


def match(raw_path: bytes, user: User | None) -> Target | None:
    """The target of a request path, or None when no WebDAV namespace matches."""
    raw_path = raw_path.split(b"?", 1)[0]
    try:
        path_text = raw_path.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        return None
    for prefix, kind in PREFIXES:
        bare = prefix.rstrip("/")
        if not (path_text == bare or path_text.startswith(bare + "/")):
            continue
        rest = raw_path[len(bare):]
        segments = split_segments(rest)
        if kind == "legacy":
            if segments[:1] == [SHARES_FOLDER]:
                return Target("jail", f"{bare}/{SHARES_FOLDER}", None, None, segments[1:])
            return Target(kind, bare, None, None, segments)
        if not segments:
            raise DavError(405 if kind == "spaces" else 404, "a space or user is required")
        head, names = segments[0], segments[1:]
        if kind == "files":
            if user is not None and head not in (user.username, user.id):
                raise NotFound("resource not found")
            if names[:1] == [SHARES_FOLDER]:
                return Target("jail", f"{bare}/{head}/{SHARES_FOLDER}", None, None, names[1:])
            return Target(kind, f"{bare}/{head}", None, None, names)
        if kind == "public":
            return Target("public", f"{bare}/{head}", None, None, names, token=head)
        if head in (SHARE_JAIL_DRIVE, SHARE_JAIL):
            return Target("jail", f"{bare}/{head}", None, None, names)
        jail, _, share_id = head.rpartition("!")
        if jail in (SHARE_JAIL_DRIVE, SHARE_JAIL) and share_id:  # a received share, by its id
            return Target("share", f"{bare}/{head}", None, None, names, token=share_id)
        try:
            rid = ResourceId.parse(head)
        except InvalidArgument:
            raise NotFound("resource not found") from None
        if "!" in head:
            return Target(kind, f"{bare}/{head}", rid.space_id, rid, names)
        return Target(kind, f"{bare}/{head}", rid.space_id, None, names)
    return None


def destination(header: str | None, host: str | None, user: User | None) -> Target:
    """Parses a Destination header (absolute URL or absolute path)."""
    if not header:
        raise DavError(400, "the Destination header is missing")
    parts = urlsplit(header.strip())
    if parts.scheme and parts.scheme not in ("http", "https"):
        raise DavError(400, "invalid Destination")
    if parts.netloc and host and parts.netloc.lower() != host.lower():
        raise DavError(502, "the destination is on another server")
    raw = parts.path.encode("utf-8", "surrogateescape") if parts.path else b""
    if not raw.startswith(b"/"):
        raise DavError(400, "invalid Destination")
    target = match(raw, user)
    if target is None:
        raise DavError(502, "the destination is not served here")
    return target
