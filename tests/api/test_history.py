"""Versions (`/dav/meta/<fileid>/v`) and trash bins (`/dav/trash-bin/<user>`,
`/dav/spaces/trash-bin/<space>`) with oCIS's hrefs, properties and status codes, in personal and
project spaces, per space role, with ETag propagation on delete, restore and version restore."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx

from tests.api.conftest import make_clients, world_for
from tests.api.test_drives import EDITOR, MANAGER, VIEWER, create_project, invite

DAV = "/remote.php/dav"
FILES = f"{DAV}/files/einstein"
ALL = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'


def hrefs(text: str) -> list[str]:
    return [unquote(h) for h in re.findall(r"<d:href>([^<]*)</d:href>", text)]


def prop(text: str, name: str) -> list[str]:
    return re.findall(rf"<{name}>([^<]*)</{name}>", text)


async def propfind(c: httpx.AsyncClient, url: str, depth: str = "1", body: str = "") -> httpx.Response:
    return await c.request("PROPFIND", url, headers={"Depth": depth}, content=body)


async def stat(c: httpx.AsyncClient, url: str) -> tuple[str, str]:
    """(file id, etag) of a resource."""
    r = await propfind(c, url, "0")
    assert r.status_code == 207, r.text
    return prop(r.text, "oc:fileid")[0], prop(r.text, "d:getetag")[0]


async def put(c: httpx.AsyncClient, url: str, data: bytes) -> None:
    r = await c.put(url, content=data)
    assert r.status_code in (201, 204), r.text


# ------------------------------------------------------------------------------------- versions

async def test_versions_are_listed_downloaded_and_restored(clients):
    c = clients["einstein"]
    for data in (b"one", b"two!", b"three"):
        await put(c, f"{FILES}/v.txt", data)
    fid, etag = await stat(c, f"{FILES}/v.txt")
    _root_id, root_etag = await stat(c, f"{FILES}/")
    r = await propfind(c, f"{DAV}/meta/{fid}/v", body=ALL)
    assert r.status_code == 207 and r.headers["content-type"].startswith("application/xml")
    listed = hrefs(r.text)
    node_id = fid.split("!")[1]
    assert listed[0] == f"{DAV}/meta/{fid}/"
    keys = [h.rsplit("/", 1)[1] for h in listed[1:]]
    assert len(keys) == 2 and all(re.fullmatch(rf"{node_id}\.REV\.\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", k)
                                  for k in keys)
    assert prop(r.text, "d:getcontentlength") == ["4", "3"]  # newest first
    assert prop(r.text, "oc:spaceid") == ["versions$", "versions$"]
    assert prop(r.text, "oc:fileid")[0] == f"versions$!{node_id}@{keys[0]}"
    assert "<oc:file-parent/>" in r.text and "<d:collection/>" in r.text  # the collection entry first
    # download a version: its own bytes, etag and checksum
    r = await c.get(f"{DAV}/meta/{fid}/v/{keys[1]}")
    assert r.status_code == 200 and r.content == b"one"
    assert r.headers["oc-fileid"] == fid and r.headers["etag"] != etag
    assert r.headers["content-disposition"].startswith("attachment")
    r = await c.get(f"{DAV}/meta/{fid}/v/{keys[1]}", headers={"Range": "bytes=1-"})
    assert r.status_code == 206 and r.content == b"ne"
    # restore: the Destination is not what decides; 204; content back, etags of file and root move
    r = await c.request("COPY", f"{DAV}/meta/{fid}/v/{keys[1]}", headers={"Destination": f"{FILES}/v.txt"})
    assert r.status_code == 204, r.text
    assert (await c.get(f"{FILES}/v.txt")).content == b"one"
    fid_after, etag_after = await stat(c, f"{FILES}/v.txt")
    assert fid_after == fid and etag_after != etag
    assert (await stat(c, f"{FILES}/"))[1] != root_etag
    r = await propfind(c, f"{DAV}/meta/{fid}/v")
    assert prop(r.text, "d:getcontentlength") == ["5", "4"]  # "three" became a version, "one" is current


async def test_version_requests_that_fail(clients):
    c = clients["einstein"]
    await put(c, f"{FILES}/f.txt", b"a")
    await put(c, f"{FILES}/f.txt", b"b")
    fid, _ = await stat(c, f"{FILES}/f.txt")
    folder_id, _ = await stat(c, f"{FILES}/")
    unknown = fid.rsplit("!", 1)[0] + "!00000000-0000-0000-0000-000000000000"
    assert (await propfind(c, f"{DAV}/meta/{unknown}/v")).status_code == 404
    assert (await propfind(c, f"{DAV}/meta/not-an-id/v")).status_code == 404
    r = await propfind(c, f"{DAV}/meta/{folder_id}/v")
    assert r.status_code == 404 or len(hrefs(r.text)) == 1
    other_key = "11111111-1111-1111-1111-111111111111.REV.2024-01-02T03:04:05Z"
    assert (await c.get(f"{DAV}/meta/{fid}/v/{other_key}")).status_code == 404
    node_id = fid.split("!")[1]
    assert (await c.get(f"{DAV}/meta/{fid}/v/{node_id}.REV.1999-01-01T00:00:00Z")).status_code == 404
    assert (await c.get(f"{DAV}/meta/{fid}/v/{node_id}.REV.garbage")).status_code == 404
    assert (await c.delete(f"{DAV}/meta/{fid}/v")).status_code == 501
    # somebody else's file: existence is not revealed
    assert (await propfind(clients["marie"], f"{DAV}/meta/{fid}/v")).status_code == 404
    r = await clients["marie"].request("COPY", f"{DAV}/meta/{fid}/v/{node_id}.REV.2024-01-02T03:04:05Z")
    assert r.status_code == 404


async def test_meta_path_for_user(clients):
    c = clients["einstein"]
    await c.request("MKCOL", f"{FILES}/deep")
    await put(c, f"{FILES}/deep/x.txt", b"x")
    fid, _ = await stat(c, f"{FILES}/deep/x.txt")
    body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
            "<d:prop><oc:meta-path-for-user/></d:prop></d:propfind>")
    r = await propfind(c, f"{DAV}/meta/{fid}", "0", body)
    assert r.status_code == 207 and prop(r.text, "oc:meta-path-for-user") == ["/deep/x.txt"]
    assert (await propfind(c, f"{DAV}/meta/{fid}", "0")).status_code == 400  # allprop is refused
    assert (await propfind(clients["marie"], f"{DAV}/meta/{fid}", "0", body)).status_code == 404


async def test_versions_by_space_role(clients, ids):
    admin = clients["admin"]
    drive = await create_project(admin, "Versions Team")
    for name, role in (("einstein", VIEWER), ("marie", EDITOR), ("richard", MANAGER)):
        assert (await invite(admin, drive, ids[name], role)).status_code == 200
    base = f"/dav/spaces/{drive['id']}"
    await put(admin, f"{base}/doc.txt", b"first")
    await put(admin, f"{base}/doc.txt", b"second")
    fid, _ = await stat(admin, f"{base}/doc.txt")
    r = await propfind(clients["einstein"], f"/dav/meta/{fid}/v")
    assert r.status_code == 403  # a space viewer sees the file, not its versions
    assert (await propfind(clients["moss"], f"/dav/meta/{fid}/v")).status_code == 404
    for name in ("marie", "richard"):
        r = await propfind(clients[name], f"/dav/meta/{fid}/v")
        assert r.status_code == 207 and len(hrefs(r.text)) == 2, name
    key = hrefs((await propfind(clients["marie"], f"/dav/meta/{fid}/v")).text)[1].rsplit("/", 1)[1]
    assert (await clients["einstein"].request("COPY", f"/dav/meta/{fid}/v/{key}")).status_code == 403
    assert (await clients["marie"].request("COPY", f"/dav/meta/{fid}/v/{key}")).status_code == 204
    assert (await admin.get(f"{base}/doc.txt")).content == b"first"


async def test_without_versioning_overwrites_keep_nothing(tmp_path):
    app, _ids = world_for(tmp_path, OCIS_DISABLE_VERSIONING="true")
    made = await make_clients(app)
    c = made["einstein"]
    try:
        await put(c, f"{FILES}/f.txt", b"a")
        await put(c, f"{FILES}/f.txt", b"b")
        fid, _ = await stat(c, f"{FILES}/f.txt")
        r = await propfind(c, f"{DAV}/meta/{fid}/v")
        assert r.status_code == 207 and len(hrefs(r.text)) == 1
    finally:
        for client in made.values():
            await client.aclose()


# ------------------------------------------------------------------------------------- trash bin

TRASH = f"{DAV}/trash-bin/einstein"


async def test_trash_lists_restores_and_purges(clients):
    c = clients["einstein"]
    await c.request("MKCOL", f"{FILES}/docs")
    await c.request("MKCOL", f"{FILES}/docs/sub")
    await put(c, f"{FILES}/docs/sub/a.txt", b"hello")
    folder_id, _ = await stat(c, f"{FILES}/docs/sub")
    _, root_etag = await stat(c, f"{FILES}/")
    assert (await c.delete(f"{FILES}/docs/sub")).status_code == 204
    _, root_after_delete = await stat(c, f"{FILES}/")
    assert root_after_delete != root_etag
    r = await propfind(c, f"{TRASH}/")
    assert r.status_code == 207
    node_id = folder_id.split("!")[1]
    assert hrefs(r.text) == [f"{TRASH}/", f"{TRASH}/{node_id}/"]
    assert prop(r.text, "oc:trashbin-original-filename") == ["sub"]
    assert prop(r.text, "oc:trashbin-original-location") == ["docs/sub"]
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000",
                        prop(r.text, "oc:trashbin-delete-datetime")[0])
    assert prop(r.text, "oc:trashbin-delete-timestamp")[0].isdigit()
    assert prop(r.text, "oc:size") == ["5"]
    assert prop(r.text, "oc:spaceid") == [folder_id.split("$")[1].split("!")[0]]  # the bare space id
    # inside the deleted folder
    r = await propfind(c, f"{TRASH}/{node_id}/")
    assert hrefs(r.text) == [f"{TRASH}/{node_id}/", f"{TRASH}/{node_id}/a.txt"]
    assert prop(r.text, "oc:trashbin-original-location") == ["docs/sub/a.txt"]
    assert prop(r.text, "d:getcontentlength") == ["5"]
    # restore to a missing parent: 409; into another user's namespace or space: 400
    r = await c.request("MOVE", f"{TRASH}/{node_id}", headers={"Destination": f"{FILES}/gone/sub"})
    assert r.status_code == 409
    r = await c.request("MOVE", f"{TRASH}/{node_id}", headers={"Destination": f"{DAV}/files/marie/sub"})
    assert r.status_code == 400
    assert (await c.request("MOVE", f"{TRASH}/{node_id}")).status_code == 400
    # restore where it was: 201, content back, etag moves again
    r = await c.request("MOVE", f"{TRASH}/{node_id}", headers={"Destination": f"{FILES}/docs/sub"})
    assert r.status_code == 201 and r.headers["oc-fileid"] == folder_id
    assert (await c.get(f"{FILES}/docs/sub/a.txt")).content == b"hello"
    assert (await stat(c, f"{FILES}/"))[1] != root_after_delete
    assert hrefs((await propfind(c, f"{TRASH}/")).text) == [f"{TRASH}/"]


async def test_restore_over_an_existing_item(clients):
    c = clients["einstein"]
    await put(c, f"{FILES}/f.txt", b"old")
    fid, _ = await stat(c, f"{FILES}/f.txt")
    await c.delete(f"{FILES}/f.txt")
    await put(c, f"{FILES}/f.txt", b"new")
    key = fid.split("!")[1]
    headers = {"Destination": f"{FILES}/f.txt", "Overwrite": "F"}
    r = await c.request("MOVE", f"{TRASH}/{key}", headers=headers)
    assert r.status_code == 412 and "PreconditionFailed" in r.text
    r = await c.request("MOVE", f"{TRASH}/{key}", headers={**headers, "Overwrite": "T"})
    assert r.status_code == 204
    assert (await c.get(f"{FILES}/f.txt")).content == b"old"
    assert prop((await propfind(c, f"{TRASH}/")).text, "oc:trashbin-original-filename") == ["f.txt"]


async def test_purge_one_and_empty_all(clients):
    c = clients["einstein"]
    for name in ("a", "b", "c"):
        await put(c, f"{FILES}/{name}.txt", name.encode())
        await c.delete(f"{FILES}/{name}.txt")
    listed = hrefs((await propfind(c, f"{TRASH}/")).text)[1:]
    assert len(listed) == 3
    assert (await c.delete(listed[0])).status_code == 204
    assert (await c.delete(listed[0])).status_code == 409
    assert len(hrefs((await propfind(c, f"{TRASH}/")).text)) == 3
    assert (await c.delete(f"{TRASH}/")).status_code == 204
    assert hrefs((await propfind(c, f"{TRASH}/")).text) == [f"{TRASH}/"]


async def test_trash_of_somebody_else_and_bad_requests(clients):
    c = clients["einstein"]
    assert (await propfind(c, f"{DAV}/trash-bin/marie/")).status_code == 404
    assert (await propfind(c, f"{DAV}/trash-bin/")).status_code == 405
    assert (await propfind(c, f"{TRASH}/", "infinity")).status_code == 400
    assert (await propfind(c, f"{TRASH}/00000000-0000-0000-0000-000000000000")).status_code == 404


async def test_project_trash_by_space_role(clients, ids):
    admin = clients["admin"]
    drive = await create_project(admin, "Trash Team")
    for name, role in (("einstein", VIEWER), ("marie", EDITOR), ("richard", MANAGER)):
        assert (await invite(admin, drive, ids[name], role)).status_code == 200
    base = f"/dav/spaces/{drive['id']}"
    trash = f"/dav/spaces/trash-bin/{drive['id']}"
    await put(admin, f"{base}/x.txt", b"x")
    fid, _ = await stat(admin, f"{base}/x.txt")
    key = fid.split("!")[1]
    assert (await clients["einstein"].delete(f"{base}/x.txt")).status_code == 403
    assert (await clients["marie"].delete(f"{base}/x.txt")).status_code == 204
    for name in ("einstein", "marie", "richard"):
        r = await propfind(clients[name], f"{trash}/")
        assert r.status_code == 207 and len(hrefs(r.text)) == 2, name
    assert (await propfind(clients["moss"], f"{trash}/")).status_code == 404
    dest = {"Destination": f"{base}/x.txt"}
    assert (await clients["einstein"].request("MOVE", f"{trash}/{key}", headers=dest)).status_code == 403
    # another space as destination is refused
    other = {"Destination": f"/dav/spaces/{fid.split('!')[0]}x/x.txt"}
    assert (await clients["marie"].request("MOVE", f"{trash}/{key}", headers=other)).status_code == 400
    assert (await clients["marie"].request("MOVE", f"{trash}/{key}", headers=dest)).status_code == 201
    assert (await admin.get(f"{base}/x.txt")).content == b"x"
    await clients["marie"].delete(f"{base}/x.txt")
    assert (await clients["marie"].delete(f"{trash}/{key}")).status_code == 403  # only managers purge
    assert (await clients["marie"].delete(f"{trash}/")).status_code == 403
    assert (await clients["richard"].delete(f"{trash}/{key}")).status_code == 204
    assert len(hrefs((await propfind(clients["richard"], f"{trash}/")).text)) == 1


async def test_capabilities_advertise_versions_and_trash(clients):
    r = await clients["einstein"].get("/ocs/v1.php/cloud/capabilities?format=json")
    caps = r.json()["ocs"]["data"]["capabilities"]
    assert caps["files"]["undelete"] is True and caps["files"]["versioning"] is True
    assert caps["dav"]["trashbin"] == "1.0"


async def test_an_item_inside_a_deleted_folder_is_restored_alone(clients):
    c = clients["einstein"]
    await c.request("MKCOL", f"{FILES}/box")
    await c.request("MKCOL", f"{FILES}/box/inner")
    await put(c, f"{FILES}/box/inner/one.txt", b"11")
    await put(c, f"{FILES}/box/two.txt", b"222")
    box_id, _ = await stat(c, f"{FILES}/box")
    await c.delete(f"{FILES}/box")
    key = box_id.split("!")[1]
    r = await c.request("MOVE", f"{TRASH}/{key}/inner/one.txt", headers={"Destination": f"{FILES}/one.txt"})
    assert r.status_code == 201, r.text
    assert (await c.get(f"{FILES}/one.txt")).content == b"11"
    r = await propfind(c, f"{TRASH}/")
    assert prop(r.text, "oc:trashbin-original-filename") == ["box"] and prop(r.text, "oc:size") == ["3"]
    assert hrefs((await propfind(c, f"{TRASH}/{key}/inner/")).text) == [f"{TRASH}/{key}/inner/"]
    r = await c.request("MOVE", f"{TRASH}/{key}/missing.txt", headers={"Destination": f"{FILES}/m.txt"})
    assert r.status_code == 404
