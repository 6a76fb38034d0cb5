"""Small helpers shared by the real-client end-to-end tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from lxml import etree

DAV_NS = "DAV:"
OC_NS = "http://owncloud.org/ns"


def need_binary(name: str, package: str | None = None) -> str:
    """Path of a client executable; a missing client is a failure (``make test`` installs them)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package {package or name}; `make test` installs it)",
                    pytrace=False)
    return path


def run(cmd: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a client with a hard time limit; a timeout fails the test with whatever output there was."""
    try:
        return subprocess.run(list(cmd), env=dict(env) if env is not None else None, cwd=cwd, input=stdin,
                              capture_output=True, text=True, encoding="utf-8", errors="replace",
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        pytest.fail(f"{cmd[0]} did not finish within {timeout}s: {' '.join(cmd[1:])}\n"
                    f"--- stdout (tail)\n{out[-3000:]}\n--- stderr (tail)\n{err[-3000:]}", pytrace=False)


def sha1_file(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha1_bytes(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


PROPFIND_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
    "<d:resourcetype/><d:getcontentlength/><d:getetag/><d:getlastmodified/><oc:checksums/><oc:fileid/>"
    "</d:prop></d:propfind>"
)


def tree(client: httpx.Client, url: str) -> dict[str, dict]:
    """Independent view of a server folder: every entry below ``url`` (recursively, via Depth: 1
    PROPFINDs), keyed by its path relative to ``url``, with type, size, etag and checksums."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    base_path = unquote(parts.path).rstrip("/") + "/"
    result: dict[str, dict] = {}
    pending = [url.rstrip("/") + "/"]
    while pending:
        current = pending.pop()
        resp = client.request("PROPFIND", current, headers={"Depth": "1", "Content-Type": "application/xml"},
                              content=PROPFIND_BODY)
        assert resp.status_code == 207, f"PROPFIND {current}: {resp.status_code} {resp.text[:500]}"
        current_path = unquote(urlsplit(current).path).rstrip("/")
        for response in etree.fromstring(resp.content).iter(f"{{{DAV_NS}}}response"):
            raw_href = response.findtext(f"{{{DAV_NS}}}href")
            href = unquote(raw_href).rstrip("/")
            if href == current_path:
                continue
            assert href.startswith(base_path), f"href {href!r} outside of {base_path!r}"
            rel = href[len(base_path):]
            props: dict[str, etree._Element] = {}
            for propstat in response.iter(f"{{{DAV_NS}}}propstat"):
                if " 200 " not in (propstat.findtext(f"{{{DAV_NS}}}status") or ""):
                    continue
                for prop in propstat.find(f"{{{DAV_NS}}}prop"):
                    props[etree.QName(prop).localname] = prop
            rtype = props.get("resourcetype")
            is_dir = rtype is not None and rtype.find(f"{{{DAV_NS}}}collection") is not None
            entry: dict = {"type": "dir" if is_dir else "file",
                           "etag": props["getetag"].text if "getetag" in props else None,
                           "fileid": props["fileid"].text if "fileid" in props else None}
            if not is_dir:
                entry["size"] = int(props["getcontentlength"].text)
                entry["checksums"] = " ".join(props["checksums"].itertext()) if "checksums" in props else ""
            result[rel] = entry
            if is_dir:
                pending.append(origin + raw_href.rstrip("/") + "/")
    return result


OWNCLOUDCMD_EXCLUDES = "*~\n~$*\n.~lock.*\n*.part\n*.swp\n"


def owncloudcmd(user: str, password: str, local: Path, url: str, work: Path, *, args: Sequence[str] = (),
                env: Mapping[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """One owncloudcmd run with a private HOME in `work` (no settings from the machine)."""
    binary = need_binary("owncloudcmd", "owncloud-client-cmd")
    exclude = work / "exclude.lst"
    exclude.write_text(OWNCLOUDCMD_EXCLUDES)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("OWNCLOUD_", "QT_"))}
    run_env.update(HOME=str(work), XDG_CONFIG_HOME=str(work / ".config"), LANG="C.UTF-8", LC_ALL="C.UTF-8",
                   **(env or {}))
    return run([binary, "--non-interactive", "--exclude", str(exclude), "--max-sync-retries", "1", "-u", user,
                "-p", password, *args, str(local), url], timeout=timeout, env=run_env, cwd=work)
