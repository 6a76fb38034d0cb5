"""Hostile input against the running server: malformed, oversized and weaponised XML (XXE, billion
laughs, external DTDs), path traversal in every encoding, overlong names, invalid UTF-8, and bad
Range, Destination, Depth, Overwrite, X-OC-Mtime, OC-Checksum and If headers.

Every such request must get a 4xx (the code the protocol defines where it defines one) with a Sabre
XML error body, never a 5xx; nothing outside the data directory may be read or written (a canary
file sits next to it, and /etc/passwd must never show up in a response); and the server must go on
serving normal requests afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess

pytestmark = pytest.mark.e2e

USER = "einstein"
DAV_PREFIX = f"/remote.php/dav/files/{USER}"
SABRE_CT = "application/xml; charset=utf-8"
XML_CT = {"Content-Type": "application/xml; charset=utf-8"}
PASSWD = Path("/etc/passwd").read_text().splitlines()[0]  # e.g. root:x:0:0:root:/root:/bin/bash
CONTENT = b"0123456789"


# ------------------------------------------------------------------------------------------- helpers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def reply(resp: httpx.Response) -> Reply:
    return Reply(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content)


def no_leak(r: Reply) -> None:
    blob = r.content + repr(r.headers).encode()
    assert PASSWD.encode() not in blob and b"root:x:0:0" not in blob, f"/etc/passwd leaked: {r.text[:300]}"


def assert_sabre_error(r: Reply, status: int | set[int]) -> None:
    """A WebDAV error: the expected status and oCIS's Sabre XML error body."""
    no_leak(r)
    expected = {status} if isinstance(status, int) else status
    assert r.status in expected, f"expected {sorted(expected)}, got {r.status}: {r.text[:400]}"
    assert r.headers.get("content-type") == SABRE_CT, (r.status, r.headers.get("content-type"), r.text[:200])
    root = ElementTree.fromstring(r.content)
    assert root.tag == "{DAV:}error", r.text
    exception = root.findtext("{http://sabredav.org/ns}exception") or ""
    assert exception.startswith("Sabre\\DAV\\Exception"), r.text
    assert root.find("{http://sabredav.org/ns}message") is not None, r.text


def soft(problems: list[str], label: str, r: Reply, status: int | set[int]) -> None:
    """assert_sabre_error, collecting the failure instead of stopping at the first."""
    try:
        assert_sabre_error(r, status)
    except AssertionError as exc:
        problems.append(f"{label}: {str(exc).splitlines()[0]}")


def raw_request(
    server: ServerProcess, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> Reply:
    """A request with the path sent byte for byte (httpx would normalise dot segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        token = base64.b64encode(f"{USER}:{DEMO[USER]}".encode()).decode()
        conn.putheader("Authorization", f"Basic {token}")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def rel(folder_url: str) -> str:
    """The raw path of a folder URL."""
    return urlsplit(folder_url).path


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(USER) as c:
        yield c


@pytest.fixture
def file_url(folder: str, client: httpx.Client) -> str:
    url = f"{folder}/f.txt"
    assert client.put(url, content=CONTENT).status_code == 201
    return url


def outside_snapshot(root: Path) -> dict[str, bytes]:
    """Everything in the server's directory outside the data directory (the log excluded)."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] == "data" or relative.name == "server.log":
            continue
        found[str(relative)] = path.read_bytes() if path.is_file() else b"<dir>"
    return found


@pytest.fixture(autouse=True)
def canary(server: ServerProcess) -> Iterator[Path]:
    """A canary file next to the data directory: no request may read, change or remove it, nor
    create anything beside it."""
    path = server.root / "canary.txt"
    if not path.exists():
        path.write_bytes(b"canary " + hashlib.sha256(str(server.root).encode()).hexdigest().encode())
    before = outside_snapshot(server.root)
    yield path
    after = outside_snapshot(server.root)
    assert after == before, f"files outside the data directory changed: {set(after) ^ set(before)}"


def canary_paths(server: ServerProcess) -> list[str]:
    """Raw request paths that would reach the canary (or /etc/passwd) if the server joined
    decoded paths naively, at every depth and in every spelling of `..` and `/`."""
    data_depth = len((server.root / "data" / "storage" / "users" / "spaces" / "xx" / "yy" / "nodes").parts)
    paths = []
    for dots, slash in (
        ("..", "/"),
        ("%2e%2e", "/"),
        ("%2E%2E", "/"),
        (".%2e", "/"),
        ("..", "%2F"),
        ("%2e%2e", "%2f"),
        ("..", "%5C"),
    ):
        for depth in (1, 2, 3, 5, 8, data_depth):
            up = slash.join([dots] * depth)
            paths.append(f"{DAV_PREFIX}/{up}{slash}canary.txt")
        paths.append(f"{DAV_PREFIX}/{slash.join([dots] * 30)}{slash}etc{slash}passwd")
    paths += [
        "/remote.php/webdav/../../../../../etc/passwd",
        f"/remote.php/dav/files/{USER}/%00/../../etc/passwd",
        "/remote.php/dav/files/..%2f..%2f..%2fetc%2fpasswd",
        "/remote.php/dav/spaces/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/remote.php/dav/files/{USER}/a%00.txt",
        f"/remote.php/dav/files/{USER}/a/%2e/b",
    ]
    return paths


# ------------------------------------------------------------------------------------------- XML bodies

MALFORMED = [
    b"this is not xml",
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop>',  # unclosed
    b"<x:propfind><x:prop/></x:propfind>",  # unbound prefix
    b'<d:propfind xmlns:d="DAV:"></d:propertyupdate>',  # mismatched tags
    b'<?xml version="1.0" encoding="no-such-encoding"?><d:propfind xmlns:d="DAV:"/>',
    b'<d:propfind xmlns:d="DAV:"><d:prop>\xff\xfe\xfd</d:prop></d:propfind>',  # invalid UTF-8
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind><second/>',  # two roots
    b'<d:propfind xmlns:d="DAV:"><d:prop>&#0;</d:prop></d:propfind>',  # NUL character reference
    b"\x00\x01\x02\x03",
]
WRONG_ROOT = {
    "PROPFIND": b'<d:propertyupdate xmlns:d="DAV:"/>',
    "PROPPATCH": b'<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>',
    "LOCK": b'<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>',
}


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
def test_malformed_xml_bodies_are_400(client: httpx.Client, file_url: str, method: str) -> None:
    for body in [*MALFORMED, WRONG_ROOT[method]]:
        r = reply(client.request(method, file_url, content=body, headers={**XML_CT, "Depth": "0"}))
        assert_sabre_error(r, 400)
    # nothing was locked or changed
    assert client.put(file_url, content=b"after").status_code == 204
    assert client.get(file_url).content == b"after"


def padded_body(method: str, size: int) -> bytes:
    head = {
        "PROPFIND": b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>',
        "PROPPATCH": b'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>',
        "LOCK": b'<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:owner>',
    }[method]
    tail = {
        "PROPFIND": b"</d:prop></d:propfind>",
        "PROPPATCH": b"</d:prop></d:set></d:propertyupdate>",
        "LOCK": b"</d:owner><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
        b"</d:lockinfo>",
    }[method]
    filler = b'<x:p xmlns:x="urn:x">' + b"A" * 1000 + b"</x:p>" if method != "LOCK" else b"A" * 1024
    count = (size - len(head) - len(tail)) // len(filler) + 1
    return head + filler * count + tail


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_oversized_xml_is_413(client: httpx.Client, file_url: str, method: str, framing: str) -> None:
    body = padded_body(method, (1 << 20) + 4096)
    assert len(body) > 1 << 20
    if framing == "chunked":
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        resp = client.request(method, file_url, content=iter(chunks), headers=XML_CT)
        assert "content-length" not in resp.request.headers
    else:
        resp = client.request(method, file_url, content=body, headers=XML_CT)
    assert_sabre_error(reply(resp), 413)
    # a body just below the limit is fine (PROPPATCH stores it, so take PROPFIND)
    if method == "PROPFIND":
        ok = client.request(
            method, file_url, content=padded_body(method, (1 << 20) - 4096), headers={**XML_CT, "Depth": "0"}
        )
        assert ok.status_code == 207
    assert client.put(file_url, content=b"still writable").status_code == 204


XXE_FILE = (
    '<?xml version="1.0" encoding="{enc}"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n{doc}'
)
BILLION_LAUGHS = (
    '<?xml version="1.0" encoding="{enc}"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    + "]>\n{doc}"
)
EXTERNAL_DTD = '<?xml version="1.0" encoding="{enc}"?>\n<!DOCTYPE d SYSTEM "{url}">\n{doc}'
PARAMETER_ENTITY = (
    '<?xml version="1.0" encoding="{enc}"?>\n<!DOCTYPE d [<!ENTITY % ext SYSTEM "{url}"> %ext;]>\n{doc}'
)
DOCS = {
    "PROPFIND": (
        '<d:propfind xmlns:d="DAV:"><d:prop><x:{prop} xmlns:x="urn:x">{ref}</x:{prop}></d:prop></d:propfind>'
    ),
    "PROPPATCH": (
        '<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><x:{prop} xmlns:x="urn:x">{ref}</x:{prop}>'
        "</d:prop></d:set></d:propertyupdate>"
    ),
    "LOCK": (
        '<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/>'
        "</d:locktype><d:owner>{ref}</d:owner></d:lockinfo>"
    ),
}


class ListenerSpy:
    """A TCP listener that records whether anybody connected (an external DTD being fetched)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/evil.dtd"
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def dtd_bodies(method: str, spy_url: str, canary: Path) -> list[tuple[str, bytes]]:
    bodies = []
    for enc in ("UTF-8", "UTF-16"):
        codec = "utf-16" if enc == "UTF-16" else "utf-8"  # utf-16 writes a BOM, as clients do
        for name, template, ref, url in (
            ("xxe-passwd", XXE_FILE, "&xxe;", ""),
            ("xxe-canary", XXE_FILE.replace("/etc/passwd", str(canary)), "&xxe;", ""),
            ("billion-laughs", BILLION_LAUGHS, "&lol9;", ""),
            ("external-dtd", EXTERNAL_DTD, "", spy_url),
            ("external-dtd-file", EXTERNAL_DTD, "", "file:///etc/passwd"),
            ("parameter-entity", PARAMETER_ENTITY, "", spy_url),
        ):
            text = template.format(
                enc=enc, url=url, doc=DOCS[method].format(ref=ref, prop=name.replace("-", ""))
            )
            bodies.append((f"{name}/{enc}", text.encode(codec)))
    return bodies


@pytest.mark.parametrize("method", ["PROPFIND", "PROPPATCH", "LOCK"])
def test_documents_with_a_dtd_are_refused(
    client: httpx.Client, folder: str, file_url: str, method: str, canary: Path
) -> None:
    """XXE, billion laughs, external DTDs and parameter entities: refused with 400 whatever the
    encoding of the body, quickly, without fetching anything and without storing anything."""
    spy = ListenerSpy()
    failures = []
    tokens = []
    try:
        for name, body in dtd_bodies(method, spy.url, canary):
            started = time.monotonic()
            r = reply(client.request(method, file_url, content=body, headers={**XML_CT, "Depth": "0"}))
            if "lock-token" in r.headers:
                tokens.append(r.headers["lock-token"])
            no_leak(r)
            assert canary.read_bytes().decode() not in r.text, f"{name}: the canary leaked"
            assert time.monotonic() - started < 5, f"{name}: took {time.monotonic() - started:.1f} s"
            try:
                assert_sabre_error(r, 400)
            except AssertionError as exc:
                failures.append(f"{method} {name}: {exc}")
    finally:
        spy.close()
    assert spy.connections == 0, "the server fetched an external DTD or entity"
    # whatever got through must not have poisoned the folder: its listing is well-formed XML
    listing = client.request("PROPFIND", folder, headers={"Depth": "1"})
    assert listing.status_code == 207
    no_leak(reply(listing))
    try:
        ElementTree.fromstring(listing.content)
    except ElementTree.ParseError as exc:
        failures.append(
            f"after the {method} attempts, PROPFIND of the folder returns malformed XML ({exc}): "
            f"{listing.text[-300:]}"
        )
    if client.put(file_url, content=b"still writable").status_code != 204:
        failures.append(f"after the {method} attempts the file is locked")
    # leave nothing behind that could break other suites' listings of the shared server
    for token in tokens:
        client.request("UNLOCK", file_url, headers={"Lock-Token": token})
    assert client.delete(folder).status_code == 204
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------- paths


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "MKCOL", "PROPFIND", "PROPPATCH", "MOVE", "COPY"])
def test_path_traversal_is_refused(server: ServerProcess, folder: str, canary: Path, method: str) -> None:
    canary_content = canary.read_bytes()
    headers = {}
    body = b""
    if method in ("MOVE", "COPY"):
        headers["Destination"] = f"{server.base_url}{rel(folder)}/target"
    if method == "PUT":
        body = b"overwritten by a traversal"
    if method == "PROPPATCH":
        body = (
            b'<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><x:p xmlns:x="urn:x">v</x:p></d:prop>'
            b"</d:set></d:propertyupdate>"
        )
    for path in canary_paths(server):
        r = raw_request(server, method, path, headers, body)
        assert canary_content.decode() not in r.text, f"{method} {path} returned the canary"
        if r.status == 404 and "%5C" in path and method not in ("PUT", "MKCOL"):
            assert_sabre_error(r, 404)  # a backslash is a name character here: a name that does not exist
            continue
        if r.status == 409 and method in ("PUT", "MKCOL") and "%5C" in path:
            assert_sabre_error(r, 409)  # "..\..\canary.txt" is one name, its parent does not exist
            continue
        assert_sabre_error(r, 400)
    assert canary.read_bytes() == canary_content


@pytest.mark.parametrize("method", ["MOVE", "COPY"])
def test_traversal_in_destination_is_refused(
    server: ServerProcess, client: httpx.Client, file_url: str, canary: Path, method: str
) -> None:
    canary_content = canary.read_bytes()
    for path in canary_paths(server):
        for dest in (f"{server.base_url}{path}", path):
            r = reply(client.request(method, file_url, headers={"Destination": dest}))
            if r.status == 409 and "%5C" in path:
                assert_sabre_error(r, 409)  # one odd name in a folder that does not exist
                continue
            assert_sabre_error(r, 400)
    assert canary.read_bytes() == canary_content
    assert client.get(file_url).content == CONTENT


@pytest.mark.parametrize(
    "segment",
    ["%ff", "a%ffb", "%c3%28", "%ed%a0%80", "%f8%88%80%80%80", "%c0%af"],
    ids=lambda s: s.replace("%", "x"),
)
def test_invalid_utf8_in_path_is_400(
    server: ServerProcess, client: httpx.Client, folder: str, file_url: str, segment: str
) -> None:
    for method in ("GET", "PUT", "MKCOL", "PROPFIND", "DELETE"):
        assert_sabre_error(raw_request(server, method, f"{rel(folder)}/{segment}"), 400)
    r = reply(
        client.request("MOVE", file_url, headers={"Destination": f"{server.base_url}{rel(folder)}/{segment}"})
    )
    assert_sabre_error(r, 400)
    assert client.get(file_url).content == CONTENT


def test_overlong_names_are_400(
    server: ServerProcess, client: httpx.Client, folder: str, file_url: str
) -> None:
    ok_ascii, ok_wide = "a" * 255, "日" * 85  # 255 bytes each
    long_ascii, long_wide = "a" * 256, "日" * 86  # 256 and 258 bytes
    assert client.put(f"{folder}/{quote(ok_ascii)}", content=b"x").status_code == 201
    assert client.request("MKCOL", f"{folder}/{quote(ok_wide)}").status_code == 201
    for name in (long_ascii, long_wide, "b" * 4096):
        url = f"{folder}/{quote(name)}"
        assert_sabre_error(reply(client.put(url, content=b"x")), 400)
        assert_sabre_error(reply(client.request("MKCOL", url)), 400)
        for method in ("MOVE", "COPY"):
            assert_sabre_error(reply(client.request(method, file_url, headers={"Destination": url})), 400)
        for method in ("GET", "PROPFIND", "DELETE"):
            assert_sabre_error(reply(client.request(method, url)), 404)
    assert client.get(file_url).content == CONTENT
    names = client.request("PROPFIND", folder, headers={"Depth": "1"}).text
    assert long_ascii not in names and quote(long_wide) not in names


# ------------------------------------------------------------------------------------------- headers


def test_unsatisfiable_ranges_are_416(client: httpx.Client, file_url: str) -> None:
    for header in ("bytes=100-200", "bytes=10-", "bytes=-0", "bytes=10-10,20-30"):
        r = client.get(file_url, headers={"Range": header})
        no_leak(reply(r))
        assert r.status_code == 416, (header, r.status_code)
        assert r.headers["content-range"] == f"bytes */{len(CONTENT)}", header


def test_malformed_ranges_are_ignored(client: httpx.Client, file_url: str) -> None:
    """RFC 9110 §14.2: a Range header that does not parse is ignored, the whole content is sent."""
    for header in (
        "bytes=5-2",
        "bytes=abc",
        "pages=1-2",
        "bytes=",
        "bytes=1-2-3",
        "bytes=--1",
        "bytes=-",
        "bytes=0x1-2",
        "bytes= 1 - 2 junk",
        "bytes=" + "9" * 5000,
    ):
        r = client.get(file_url, headers={"Range": header})
        assert r.status_code == 200 and r.content == CONTENT, (header[:40], r.status_code)
    # a hundred overlapping ranges: ignored (200) or refused (416), never a 100-part amplification
    r = client.get(file_url, headers={"Range": "bytes=" + ",".join(["0-9"] * 100)})
    assert r.status_code in (200, 416), r.status_code
    r = client.get(file_url, headers={"Range": "bytes=2-" + "9" * 40})
    assert r.status_code == 206 and r.content == CONTENT[2:], r.status_code


def test_bad_destination_headers(
    server: ServerProcess, client: httpx.Client, folder: str, file_url: str
) -> None:
    own = f"{server.base_url}{rel(folder)}"
    other_port = f"http://127.0.0.1:{server.port + 1 if server.port < 65535 else server.port - 1}"
    cases: list[tuple[str | None, int | set[int]]] = [
        (f"http://evil.example.org{rel(folder)}/x", 502),  # another server
        (f"{other_port}{rel(folder)}/x", 502),
        (None, 400),  # missing
        ("", 400),
        ("not a url", 400),
        ("::::", 400),
        ("http://", 400),
        ("ftp://127.0.0.1/x", 400),
        ("relative/path", 400),
        (f"{server.base_url}/ocs/v1.php/cloud/x", {400, 403, 502}),  # outside the WebDAV namespace
        (f"{server.base_url}/etc/passwd", {400, 403, 502}),
        ("/etc/passwd", {400, 403, 502}),
        (f"{server.base_url}/", {400, 403, 502}),
        (f"{server.base_url}/remote.php/dav/files/marie/stolen.txt", {403, 404, 409, 502}),  # somebody else's
        (f"{server.base_url}/remote.php/dav/files/{USER}", 403),  # the space root itself
        (f"{own}/f.txt", 403),  # the source itself
        (f"{own}/no/such/parent.txt", 409),
    ]
    for method in ("MOVE", "COPY"):
        for dest, status in cases:
            headers = {} if dest is None else {"Destination": dest}
            assert_sabre_error(reply(client.request(method, file_url, headers=headers)), status)
    assert client.get(file_url).content == CONTENT
    with server.client("marie") as marie:
        assert marie.get(f"{server.dav('marie')}/stolen.txt").status_code == 404


def test_moving_a_folder_into_itself_is_409(client: httpx.Client, folder: str) -> None:
    assert client.request("MKCOL", f"{folder}/a").status_code == 201
    assert client.request("MKCOL", f"{folder}/a/b").status_code == 201
    for method in ("MOVE", "COPY"):
        r = reply(client.request(method, f"{folder}/a", headers={"Destination": f"{folder}/a/b/c"}))
        assert_sabre_error(r, 409)
    assert client.request("PROPFIND", f"{folder}/a/b", headers={"Depth": "0"}).status_code == 207


def test_bad_depth_headers(client: httpx.Client, folder: str, file_url: str) -> None:
    problems: list[str] = []
    for depth in ("2", "foo", "-1", "1.0", "infinity,1", "0 1"):
        soft(
            problems,
            f"PROPFIND Depth {depth}",
            reply(client.request("PROPFIND", folder, headers={"Depth": depth})),
            400,
        )
    # Depth: infinity is switched off by default (OCDAV_ALLOW_PROPFIND_DEPTH_INFINITY)
    soft(
        problems,
        "PROPFIND Depth infinity",
        reply(client.request("PROPFIND", folder, headers={"Depth": "infinity"})),
        400,
    )
    # COPY and MOVE know only 0 and infinity (RFC 4918 §9.8.3, §9.9.2; Sabre answers 400 otherwise)
    assert client.request("MKCOL", f"{folder}/dir").status_code == 201
    for source in (file_url, f"{folder}/dir"):
        for method in ("COPY", "MOVE"):
            for depth in ("1", "2", "foo"):
                dest = f"{folder}/d-{method}-{depth}"
                r = reply(client.request(method, source, headers={"Destination": dest, "Depth": depth}))
                soft(problems, f"{method} Depth {depth} of {source.rsplit('/', 1)[1]}", r, 400)
                if r.status in (201, 204):  # put things back for the next attempt
                    if method == "MOVE":
                        client.request("MOVE", dest, headers={"Destination": source})
                    else:
                        client.delete(dest)
    lock = (
        b'<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/>'
        b"</d:locktype></d:lockinfo>"
    )
    for depth in ("1", "foo"):
        soft(
            problems,
            f"LOCK Depth {depth}",
            reply(client.request("LOCK", file_url, content=lock, headers={"Depth": depth})),
            400,
        )
    assert client.put(file_url, content=b"unlocked").status_code == 204
    assert not problems, "\n".join(problems)


def test_bad_overwrite_headers(client: httpx.Client, folder: str, file_url: str) -> None:
    for value in ("X", "yes", "TT", "true", "1", "F,T"):
        for method in ("MOVE", "COPY"):
            r = reply(
                client.request(
                    method, file_url, headers={"Destination": f"{folder}/o.txt", "Overwrite": value}
                )
            )
            assert_sabre_error(r, 400)
    assert client.put(f"{folder}/exists.txt", content=b"keep").status_code == 201
    r = reply(
        client.request("COPY", file_url, headers={"Destination": f"{folder}/exists.txt", "Overwrite": "F"})
    )
    assert_sabre_error(r, 412)
    assert client.get(f"{folder}/exists.txt").content == b"keep"
    assert client.get(f"{folder}/o.txt").status_code == 404


def test_bad_mtime_headers(client: httpx.Client, folder: str, file_url: str) -> None:
    for value in ("abc", "nan", "NaN", "-1", "inf", "-inf", "1e400", "12abc", "0x10", "1e12", "--1"):
        assert_sabre_error(
            reply(client.put(f"{folder}/m.txt", content=b"x", headers={"X-OC-Mtime": value})), 400
        )
        assert_sabre_error(
            reply(client.put(file_url, content=b"changed", headers={"X-OC-Mtime": value})), 400
        )
    assert client.get(f"{folder}/m.txt").status_code == 404
    assert client.get(file_url).content == CONTENT


def test_bad_and_mismatching_checksums(client: httpx.Client, folder: str, file_url: str) -> None:
    body = b"checksummed content"
    wrong_sha1 = hashlib.sha1(b"other").hexdigest()
    for value in ("SHA1:zz", "FOO:abc", "SHA1:", "garbage", ":", "SHA1 :", "SHA256:" + "0" * 64):
        assert_sabre_error(
            reply(client.put(f"{folder}/c.txt", content=body, headers={"OC-Checksum": value})), 400
        )
    for value in (f"SHA1:{wrong_sha1}", f"MD5:{hashlib.md5(b'other').hexdigest()}", "ADLER32:00000001"):
        assert_sabre_error(
            reply(client.put(f"{folder}/c.txt", content=body, headers={"OC-Checksum": value})), 400
        )
        assert_sabre_error(reply(client.put(file_url, content=body, headers={"OC-Checksum": value})), 400)
    assert client.get(f"{folder}/c.txt").status_code == 404
    assert client.get(file_url).content == CONTENT
    good = client.put(
        f"{folder}/c.txt", content=body, headers={"OC-Checksum": f"SHA1:{hashlib.sha1(body).hexdigest()}"}
    )
    assert good.status_code == 201


def test_bad_if_headers(client: httpx.Client, folder: str, file_url: str) -> None:
    for value in ("garbage", "(<unclosed", "()", "<http://x/>", "([unclosed)", "(Not)", "((<a>))", ")"):
        for method, kwargs in (("PUT", {"content": b"changed"}), ("DELETE", {}), ("MKCOL", {})):
            target = file_url if method != "MKCOL" else f"{folder}/new"
            assert_sabre_error(reply(client.request(method, target, headers={"If": value}, **kwargs)), 400)
    for value in ('(["no-such-etag"])', "(<opaquelocktoken:no-such-lock>)", f'<{file_url}> (["x"])'):
        assert_sabre_error(reply(client.put(file_url, content=b"changed", headers={"If": value})), 412)
    assert_sabre_error(reply(client.put(file_url, content=b"changed", headers={"If-Match": '"nope"'})), 412)
    assert_sabre_error(reply(client.put(file_url, content=b"changed", headers={"If-None-Match": "*"})), 412)
    assert client.get(file_url).content == CONTENT
    assert client.get(f"{folder}/new").status_code == 404


def test_mkcol_with_a_body_is_415(client: httpx.Client, folder: str) -> None:
    r = reply(client.request("MKCOL", f"{folder}/x", content=b"<d:mkcol xmlns:d='DAV:'/>", headers=XML_CT))
    assert_sabre_error(r, 415)
    assert client.request("PROPFIND", f"{folder}/x").status_code == 404


def test_unknown_methods_are_405(client: httpx.Client, file_url: str) -> None:
    for method in ("TRACE", "FOO", "PATCH", "CONNECTX"):
        assert_sabre_error(reply(client.request(method, file_url)), 405)


# ------------------------------------------------------------------------------------------- afterwards


def test_server_still_serves_normal_requests(
    server: ServerProcess, client: httpx.Client, folder: str
) -> None:
    assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
    assert client.put(f"{folder}/n.txt", content=b"normal").status_code == 201
    assert client.get(f"{folder}/n.txt").content == b"normal"
    assert (
        client.request("MOVE", f"{folder}/n.txt", headers={"Destination": f"{folder}/m.txt"}).status_code
        == 201
    )
    assert client.request("MKCOL", f"{folder}/sub").status_code == 201
    listing = client.request("PROPFIND", folder, headers={"Depth": "1"})
    assert listing.status_code == 207
    ElementTree.fromstring(listing.content)
    assert "m.txt" in listing.text and "sub/" in listing.text
    assert client.delete(f"{folder}/m.txt").status_code == 204
    root = client.request("PROPFIND", server.dav(USER), headers={"Depth": "1"})
    assert root.status_code == 207
    ElementTree.fromstring(root.content)  # no earlier test left a poisoned property behind
