"""A small WebDAV helper on httpx for checking server state independently of the client under test.

Paths are '/'-separated, relative to the user's DAV root (``.../remote.php/dav/files/<user>``), unicode allowed;
they are percent-encoded here. Manifests map a relative path to a dict with ``type`` ("file"/"dir") and, for
files, ``sha1``/``size`` of the content (from a full GET for server files, from disk for local files).
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx
from lxml import etree

DAV = "DAV:"
OC = "http://owncloud.org/ns"

PROPFIND_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
    "<d:resourcetype/><d:getcontentlength/><d:getetag/><d:getlastmodified/>"
    "<oc:id/><oc:fileid/><oc:checksums/><oc:permissions/>"
    "</d:prop></d:propfind>"
)

# names the sync engines keep in the sync root for themselves (journal, logs, per-folder exclude lists)
CLIENT_PRIVATE_PREFIXES = (".sync_", "._sync_", ".csync_journal", ".owncloudsync.log", ".nextcloudsync.log",
                           ".sync-exclude")


@dataclass
class Entry:
    """One d:response of a PROPFIND: the decoded href path and its 200-status properties."""

    path: str  # percent-decoded href path, without trailing slash
    is_dir: bool
    etag: str | None = None
    fileid: str | None = None
    id: str | None = None
    checksums: str = ""
    permissions: str | None = None
    lastmodified: str | None = None
    contentlength: int | None = None
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def sha1(self) -> str | None:
        """The SHA1 from oc:checksums (lower case), if the server sent one."""
        for token in self.checksums.split():
            kind, _, value = token.partition(":")
            if kind.upper() == "SHA1" and len(value) == 40:
                return value.lower()
        return None

    @property
    def mtime(self) -> float | None:
        if not self.lastmodified:
            return None
        return email.utils.parsedate_to_datetime(self.lastmodified).timestamp()


class Dav:
    """Plain WebDAV calls against one user's DAV root."""

    def __init__(self, client: httpx.Client, root_url: str) -> None:
        self.client = client
        self.root_url = root_url.rstrip("/")
        self.root_path = unquote(urlsplit(self.root_url).path).rstrip("/")

    def url(self, path: str) -> str:
        path = path.strip("/")
        return f"{self.root_url}/{quote(path)}" if path else f"{self.root_url}/"

    # -- plain methods, returning the status code -------------------------------------------------------------
    def mkcol(self, path: str) -> int:
        return self.client.request("MKCOL", self.url(path)).status_code

    def put(self, path: str, data: bytes, headers: dict[str, str] | None = None) -> int:
        return self.client.put(self.url(path), content=data,
                               headers={"Content-Type": "application/octet-stream", **(headers or {})}).status_code

    def delete(self, path: str) -> int:
        return self.client.delete(self.url(path)).status_code

    def move(self, src: str, dst: str, overwrite: bool = True) -> int:
        headers = {"Destination": self.url(dst), "Overwrite": "T" if overwrite else "F"}
        return self.client.request("MOVE", self.url(src), headers=headers).status_code

    def get(self, path: str) -> httpx.Response:
        return self.client.get(self.url(path))

    def get_sha1(self, path: str) -> tuple[int, str, int]:
        """Stream a GET; returns (status, sha1 hex of the body, body length)."""
        digest = hashlib.sha1()
        size = 0
        with self.client.stream("GET", self.url(path)) as resp:
            for block in resp.iter_bytes(1 << 20):
                digest.update(block)
                size += len(block)
            return resp.status_code, digest.hexdigest(), size

    # -- PROPFIND ---------------------------------------------------------------------------------------------
    def propfind(self, path: str, depth: str = "1") -> list[Entry]:
        resp = self.client.request("PROPFIND", self.url(path), content=PROPFIND_BODY,
                                   headers={"Depth": depth, "Content-Type": "application/xml; charset=utf-8"})
        assert resp.status_code == 207, f"PROPFIND {path!r} Depth {depth}: {resp.status_code} {resp.text[:500]}"
        entries = []
        for response in etree.fromstring(resp.content).iter(f"{{{DAV}}}response"):
            href = response.findtext(f"{{{DAV}}}href") or ""
            props: dict[str, etree._Element] = {}
            for propstat in response.iter(f"{{{DAV}}}propstat"):
                if " 200 " not in (propstat.findtext(f"{{{DAV}}}status") or "") + " ":
                    continue
                prop = propstat.find(f"{{{DAV}}}prop")
                for element in prop if prop is not None else []:
                    props[etree.QName(element).localname] = element
            rtype = props.get("resourcetype")

            def text(name: str, props: dict[str, etree._Element] = props) -> str | None:
                element = props.get(name)
                return None if element is None else (element.text or "").strip()

            length = text("getcontentlength")
            entries.append(Entry(
                path=unquote(urlsplit(href).path).rstrip("/"),
                is_dir=rtype is not None and rtype.find(f"{{{DAV}}}collection") is not None,
                etag=text("getetag"), fileid=text("fileid"), id=text("id"),
                checksums=" ".join(t.strip() for t in props["checksums"].itertext() if t.strip())
                if "checksums" in props else "",
                permissions=text("permissions"), lastmodified=text("getlastmodified"),
                contentlength=int(length) if length else None,
                raw={k: (v.text or "") for k, v in props.items()},
            ))
        return entries

    def stat(self, path: str) -> Entry:
        entries = self.propfind(path, "0")
        assert len(entries) == 1, f"PROPFIND {path!r} Depth 0 returned {len(entries)} responses"
        return entries[0]

    def etag(self, path: str) -> str | None:
        return self.stat(path).etag

    def manifest(self, path: str) -> dict[str, dict]:
        """Everything below ``path`` (a walk of Depth: 1 PROPFINDs), every file fetched with GET and hashed."""
        base = f"{self.root_path}/{path.strip('/')}".rstrip("/")
        result: dict[str, dict] = {}
        pending = [""]
        while pending:
            rel = pending.pop()
            entries = self.propfind(f"{path.strip('/')}/{rel}".strip("/"), "1")
            assert entries and entries[0].path == f"{base}/{rel}".rstrip("/"), (
                f"first PROPFIND response of {rel!r} is not the collection itself: "
                f"{entries[0].path if entries else None!r}")
            for entry in entries[1:]:
                assert entry.path.startswith(base + "/"), f"href {entry.path!r} outside of {base!r}"
                child = entry.path[len(base) + 1:]
                info: dict = {"type": "dir" if entry.is_dir else "file", "etag": entry.etag, "fileid": entry.fileid,
                              "id": entry.id, "entry": entry}
                if entry.is_dir:
                    pending.append(child)
                else:
                    status, sha1, size = self.get_sha1(f"{path.strip('/')}/{child}")
                    info.update(sha1=sha1, size=size, get_status=status, propsize=entry.contentlength,
                                checksum_sha1=entry.sha1, lastmodified=entry.lastmodified)
                result[child] = info
        return result


def sha1_path(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_manifest(root: Path) -> dict[str, dict]:
    """Same shape as :meth:`Dav.manifest` for a local directory, without the sync engine's private files."""
    result: dict[str, dict] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(CLIENT_PRIVATE_PREFIXES)]
        here = Path(dirpath)
        for name in dirnames:
            result[(here / name).relative_to(root).as_posix()] = {"type": "dir"}
        for name in filenames:
            if name.startswith(CLIENT_PRIVATE_PREFIXES):
                continue
            file = here / name
            stat = file.stat()
            result[file.relative_to(root).as_posix()] = {"type": "file", "size": stat.st_size,
                                                         "sha1": sha1_path(file), "mtime": int(stat.st_mtime)}
    return result


def tree_diff(local: dict[str, dict], remote: dict[str, dict], ignore: str | None = None,
              names: tuple[str, str] = ("local", "on server")) -> list[str]:
    """Differences between two manifests (paths, types, file contents); names matching ``ignore`` are skipped."""
    first, second = names
    skip = re.compile(ignore) if ignore else None
    diffs = []
    for key in sorted(set(local) | set(remote)):
        if skip and skip.search(key):
            continue
        if key not in remote:
            diffs.append(f"only {first}: {key}")
        elif key not in local:
            diffs.append(f"only {second}: {key}")
        elif local[key]["type"] != remote[key]["type"]:
            diffs.append(f"type differs: {key} ({local[key]['type']} {first}, {remote[key]['type']} {second})")
        elif local[key]["type"] == "file" and local[key]["sha1"] != remote[key]["sha1"]:
            diffs.append(f"content differs: {key} ({local[key]['size']} bytes {first}, "
                         f"{remote[key]['size']} bytes {second})")
    return diffs
