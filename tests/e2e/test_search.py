"""Search with the server as processes (two HTTP workers, the embedded NATS, the index kept by one
of them): documents are found by their content within 2 s of the upload, nobody finds what they
cannot read, and moves, renames, the trash bin and restores show in the results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests import documents
from tests.conftest import DEMO, ServerProcess

pytestmark = pytest.mark.e2e
VIEWER = "b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5"
SPACE_VIEWER = "a8d5fe5e-96e3-418d-825b-534dbdf22b99"
SPACE_EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"
NS = {"d": "DAV:", "oc": "http://owncloud.org/ns"}
WORD = "quarkblossom"
PASSWORDS = {**DEMO, "moss": "vista", "admin": "admin"}


def report(client: httpx.Client, base: str, pattern: str, limit: int = 200, path: str = "/dav/spaces/"
           ) -> httpx.Response:
    body = ('<?xml version="1.0"?><oc:search-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
            '<d:prop><oc:fileid/><oc:favorite/><oc:share-types/></d:prop>'
            f'<oc:search><oc:pattern>{pattern}</oc:pattern><oc:limit>{limit}</oc:limit></oc:search>'
            '</oc:search-files>')
    return client.request("REPORT", base + path, content=body, headers={"content-type": "application/xml"})


def hits(client: httpx.Client, base: str, pattern: str) -> dict[str, etree._Element]:
    """name -> its <d:response>"""
    r = report(client, base, pattern)
    assert r.status_code == 207, r.text
    return {el.findtext(".//oc:name", namespaces=NS): el
            for el in etree.fromstring(r.content).findall("d:response", NS)}


def eventually(check, timeout: float = 10.0) -> float:
    """Seconds until `check()` held."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path_factory.mktemp("search"), workers=2)
    s.init()
    s.start()
    yield s
    s.stop()


def client(server: ServerProcess, user: str) -> httpx.Client:
    return httpx.Client(auth=(user, PASSWORDS[user]), timeout=30)


def file_id(c: httpx.Client, url: str) -> str:
    r = c.request("PROPFIND", url, headers={"Depth": "0"},
                  content=b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/>'
                          b'</d:prop></d:propfind>')
    assert r.status_code == 207
    return etree.fromstring(r.content).findtext(".//oc:fileid", namespaces=NS)


def test_documents_are_found_by_their_words_within_two_seconds(server):
    base = server.base_url
    kinds = {"notes.txt": f"plain {WORD}1 text".encode(), "paper.pdf": documents.pdf(f"printed {WORD}1 words"),
             "letter.odt": documents.odt(f"open {WORD}1 document"), "memo.docx": documents.docx(f"word {WORD}1 file")}
    with client(server, "einstein") as c:
        assert c.request("MKCOL", f"{server.dav()}/kinds").status_code == 201
        for name, data in kinds.items():
            assert c.put(f"{server.dav()}/kinds/{name}", content=data).status_code == 201
        waited = eventually(lambda: set(hits(c, base, f"content:{WORD}1")) == set(kinds))
        assert waited < 2.0, waited
        r = report(c, base, f'(name:"*{WORD}1*" OR content:"{WORD}1")')
        assert r.headers["content-range"] == "rows 0-3/4"
        assert r.headers["dav"] == "1, 3, extended-mkcol"
        response = etree.fromstring(r.content).find("d:response", NS)
        href = response.findtext("d:href", namespaces=NS)
        assert href.startswith("/dav/spaces/") and "/kinds/" in href
        props = response.find(".//d:prop", NS)
        for name in ("oc:fileid", "oc:file-parent", "oc:name", "d:getlastmodified", "oc:permissions", "d:getetag",
                     "oc:score", "oc:highlights", "oc:favorite"):
            assert props.find(name, NS) is not None, name
        assert "<mark>" in "".join(e.findtext("oc:highlights", namespaces=NS)
                                   for e in etree.fromstring(r.content).iter("{DAV:}prop"))
        assert c.get(base + href).status_code == 200  # the href serves the file
        # the same search below /remote.php gives hrefs there; a limit cuts the page, not the total
        r = report(c, base, f"content:{WORD}1", limit=2, path="/remote.php/dav/spaces/")
        assert r.headers["content-range"] == "rows 0-1/4"
        assert all(h.text.startswith("/remote.php/dav/spaces/")
                   for h in etree.fromstring(r.content).iter("{DAV:}href"))


def test_nobody_finds_what_they_cannot_read(server):
    """einstein: a private file, a file in a folder shared with richard, a project space file
    that marie may view; moss gets nothing. Each file holds the same word."""
    base, word = server.base_url, f"{WORD}2"
    with client(server, "admin") as admin, client(server, "einstein") as e:
        listed = admin.get(f"{base}/graph/v1.0/users").json()["value"]
        users = {u["onPremisesSamAccountName"]: u["id"] for u in listed}
        drive_id = admin.post(f"{base}/graph/v1.0/drives", json={"name": "Lab"}).json()["id"]
        for user, role in (("einstein", SPACE_EDITOR), ("marie", SPACE_VIEWER)):
            invite = admin.post(f"{base}/graph/v1beta1/drives/{drive_id}/root/invite",
                                json={"recipients": [{"objectId": users[user]}], "roles": [role]})
            assert invite.status_code == 200, invite.text
        assert e.put(f"{base}/dav/spaces/{drive_id}/lab-{word}.txt", content=word.encode()).status_code == 201
        assert e.put(f"{server.dav()}/private-{word}.txt", content=word.encode()).status_code == 201
        assert e.request("MKCOL", f"{server.dav()}/shared").status_code == 201
        assert e.put(f"{server.dav()}/shared/shared-{word}.txt", content=word.encode()).status_code == 201
        folder = file_id(e, f"{server.dav()}/shared")
        space = folder.split("!")[0]
        shared = e.post(f"{base}/graph/v1beta1/drives/{space}/items/{folder}/invite",
                        json={"recipients": [{"objectId": users["richard"]}], "roles": [VIEWER]})
        assert shared.status_code == 200, shared.text
        expected = {"einstein": {f"lab-{word}.txt", f"private-{word}.txt", f"shared-{word}.txt"},
                    "marie": {f"lab-{word}.txt"}, "richard": {f"shared-{word}.txt"}, "moss": set()}
        eventually(lambda: set(hits(e, base, f"content:{word}")) == expected["einstein"])
        for user, names in expected.items():
            with client(server, user) as c:
                for pattern in (f"content:{word}", f'name:"*{word}*"', word[:-1] + "*"):
                    assert set(hits(c, base, pattern)) == names, (user, pattern)
        # richard reaches his hit through the share, as oCIS addresses it
        with client(server, "richard") as r:
            found = hits(r, base, f"content:{word}")[f"shared-{word}.txt"]
            href = found.findtext("d:href", namespaces=NS)
            assert href.startswith("/dav/spaces/a0ca6a90-a365-4782-871e-d44447bbc668!"), href
            assert found.findtext(".//oc:shareroot", namespaces=NS) == "/shared"
            assert r.get(base + href).content == word.encode()
        # revoking the share takes the hit away at once
        perms = e.get(f"{base}/graph/v1beta1/drives/{space}/items/{folder}/permissions").json()["value"]
        for p in perms:
            assert e.delete(f"{base}/graph/v1beta1/drives/{space}/items/{folder}/permissions/{p['id']}"
                            ).status_code == 204
        with client(server, "richard") as r:
            assert hits(r, base, f"content:{word}") == {}


def test_moves_renames_trash_and_restore_show_in_results(server):
    base, word = server.base_url, f"{WORD}3"
    with client(server, "einstein") as c:
        dav = server.dav()
        for folder in ("a", "a/inner", "b"):
            assert c.request("MKCOL", f"{dav}/{folder}").status_code == 201
        assert c.put(f"{dav}/a/inner/deep-{word}.txt", content=f"{word} deep".encode()).status_code == 201
        eventually(lambda: f"deep-{word}.txt" in hits(c, base, f"content:{word}"))
        assert c.request("MOVE", f"{dav}/a", headers={"Destination": f"{dav}/b/moved"}).status_code == 201
        eventually(lambda: "/b/moved/inner/" in hits(c, base, f"content:{word}").get(
            f"deep-{word}.txt", etree.Element("x")).findtext("d:href", "", NS))
        # scope: only below the folder given
        moved = file_id(c, f"{dav}/b/moved")
        assert set(hits(c, base, f"content:{word} AND scope:{moved}")) == {f"deep-{word}.txt"}
        assert hits(c, base, f"content:{word} AND scope:{file_id(c, dav + '/kinds')}") == {}
        # a rename: the new name is found, the old one not
        assert c.request("MOVE", f"{dav}/b/moved/inner/deep-{word}.txt",
                         headers={"Destination": f"{dav}/b/moved/inner/renamed-{word}.txt"}).status_code == 201
        eventually(lambda: set(hits(c, base, f'name:"*{word}*"')) == {f"renamed-{word}.txt"})
        # trashed with its folder: gone; restored: back, content still found
        assert c.delete(f"{dav}/b/moved").status_code == 204
        eventually(lambda: hits(c, base, f"content:{word}") == {})
        trash = c.request("PROPFIND", f"{base}/remote.php/dav/trash-bin/einstein/", headers={"Depth": "1"})
        item = next(r.findtext("d:href", namespaces=NS)
                    for r in etree.fromstring(trash.content).findall("d:response", NS)
                    if r.findtext(".//oc:trashbin-original-filename", namespaces=NS) == "moved")
        assert c.request("MOVE", base + item, headers={"Destination": f"{dav}/back"}).status_code == 201
        eventually(lambda: "/back/inner/" in hits(c, base, f"content:{word}").get(
            f"renamed-{word}.txt", etree.Element("x")).findtext("d:href", "", NS))


def test_bad_queries_get_400_and_a_sabre_body(server):
    with client(server, "einstein") as c:
        for pattern in ("AND x", "mtime:someday", "(unclosed", "color:red"):
            r = report(c, server.base_url, pattern)
            assert r.status_code == 400, (pattern, r.status_code)
            assert b"Sabre\\DAV\\Exception\\BadRequest" in r.content and b"bad request" in r.content
        r = c.request("REPORT", f"{server.base_url}/dav/spaces/", content=b"<x:other xmlns:x='urn:x'/>")
        assert r.status_code == 400 and b"missing search-files tag" in r.content
        caps = c.get(f"{server.base_url}/ocs/v2.php/cloud/capabilities?format=json").json()["ocs"]["data"]
        assert caps["capabilities"]["dav"]["reports"] == ["search-files"]
        assert caps["capabilities"]["files"]["full_text_search"] is True
        assert caps["capabilities"]["search"]["property"]["content"]["enabled"] is True


def test_the_index_is_rebuilt_by_the_cli(server, tmp_path: Path):
    """`search index --all-spaces` while the server keeps the index: the server's indexer does it."""
    done = server.cli("search", "index", "--all-spaces", timeout=120)
    assert "spaces" in done.stdout + done.stderr


def test_a_folder_larger_than_a_rewrite_page_moves_and_copies_whole(server):
    """A moved folder's documents are rewritten a page at a time, a copied one's committed on the way:
    every page lands."""
    from infiniscale.core.indexer import PENDING_MAX, REWRITE_PAGE

    count = REWRITE_PAGE + 150
    assert count > PENDING_MAX
    base, dav = server.base_url, server.dav()
    with client(server, "einstein") as c:
        assert c.request("MKCOL", f"{dav}/pages").status_code == 201
        for i in range(count):
            assert c.put(f"{dav}/pages/paged-{i:05d}.bin", content=b"x").status_code == 201
        assert c.request("MKCOL", f"{dav}/target").status_code == 201
        eventually(lambda: len(hits_limit(c, base, 'name:"paged-*"', count + 10)) == count, timeout=60)
        assert c.request("MOVE", f"{dav}/pages", headers={"Destination": f"{dav}/target/moved"}
                         ).status_code == 201
        moved = file_id(c, f"{dav}/target/moved")

        def all_moved() -> bool:
            found = hits_limit(c, base, f'name:"paged-*" AND scope:{moved}', count + 10)
            return len(found) == count and all("/target/moved/" in href for href in found.values())

        eventually(all_moved, timeout=60)
        # a copy is read from the storage: its documents are committed on the way, past PENDING_MAX
        assert c.request("COPY", f"{dav}/target/moved", headers={"Destination": f"{dav}/target/copied"}
                         ).status_code == 201
        copied = file_id(c, f"{dav}/target/copied")
        eventually(lambda: len(hits_limit(c, base, f'name:"paged-*" AND scope:{copied}', count + 10)) == count,
                   timeout=60)


def hits_limit(c: httpx.Client, base: str, pattern: str, limit: int) -> dict[str, str]:
    """name -> href, up to `limit` results"""
    r = report(c, base, pattern, limit=limit)
    assert r.status_code == 207, r.text
    return {el.findtext(".//oc:name", namespaces=NS): el.findtext("d:href", namespaces=NS)
            for el in etree.fromstring(r.content).findall("d:response", NS)}
