"""OCS sharing API: user and group shares of files and folders, listing by creator, path and
recipient, update, delete, accept and decline, and oCIS's status codes in v1 and v2."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from infiniscale.runtime import build_app
from infiniscale.settings import resolve
from tests.api.conftest import MOUNT_ID, people

V1 = "/ocs/v1.php/apps/files_sharing/api/v1/shares"
V2 = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
USERS = {"einstein": "user", "marie": "user", "richard": "user", "katherine": "spaceadmin"}


@pytest.fixture
async def env(tmp_path) -> AsyncIterator[tuple[dict[str, httpx.AsyncClient], dict[str, str]]]:
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                            "OCIS_URL": "https://cloud.example.org", "PROXY_ENABLE_BASIC_AUTH": "true",
                            "STORAGE_USERS_MOUNT_ID": MOUNT_ID})
    ids = people(settings, USERS, {"physics-lovers": ["richard"]})
    transport = httpx.ASGITransport(app=build_app(settings))
    clients = {name: httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                       auth=(name, f"{name}-secret"), params={"format": "json"})
               for name in USERS}
    try:
        yield clients, ids
    finally:
        for c in clients.values():
            await c.aclose()


def data(r: httpx.Response):
    return r.json()["ocs"]["data"]


def meta(r: httpx.Response) -> tuple[int, int]:
    return r.status_code, r.json()["ocs"]["meta"]["statuscode"]


async def share(c: httpx.AsyncClient, path: str, with_: str, permissions: int = 1, share_type: int = 0,
                base: str = V2, **extra) -> httpx.Response:
    return await c.post(base, data={"path": path, "shareType": str(share_type), "shareWith": with_,
                                    "permissions": str(permissions), **extra})


async def test_user_share_of_a_folder_round_trip(env):
    clients, _ids = env
    e, m = clients["einstein"], clients["marie"]
    assert (await e.request("MKCOL", "/remote.php/dav/files/einstein/Projects")).status_code == 201
    r = await share(e, "/Projects", "marie", 15)
    assert meta(r) == (200, 200), r.text
    doc = data(r)
    assert doc["id"].isdigit()
    assert (doc["share_type"], doc["uid_owner"], doc["uid_file_owner"], doc["share_with"]) == (
        0, "einstein", "einstein", "marie")
    assert (doc["permissions"], doc["item_type"], doc["mimetype"], doc["path"], doc["file_target"]) == (
        15, "folder", "httpd/unix-directory", "/Projects", "/Projects")
    assert doc["share_with_displayname"] == "Marie" and doc["share_with_additional_info"] == "marie@example.org"
    assert doc["item_source"] == doc["file_source"] and doc["item_source"].startswith(f"{MOUNT_ID}$")
    assert doc["expiration"] is None and doc["token"] == "" and doc["stime"] > 0
    share_id = doc["id"]

    assert [s["id"] for s in data(await e.get(V2))] == [share_id]
    assert [s["id"] for s in data(await e.get(V2, params={"path": "/Projects", "format": "json"}))] == [share_id]
    assert [s["id"] for s in data(await e.get(f"{V2}/{share_id}"))] == [share_id]

    received = data(await m.get(V2, params={"shared_with_me": "true", "format": "json"}))
    assert [(s["id"], s["state"], s["path"], s["file_target"]) for s in received] == [
        (share_id, 0, "/Shares/Projects", "/Shares/Projects")]
    assert data(await m.get(V2)) == []  # marie made no shares
    # the recipient cannot change or remove the owner's share
    assert meta(await m.put(f"{V2}/{share_id}", data={"permissions": "1"}))[0] == 404
    assert meta(await m.delete(f"{V2}/{share_id}"))[0] == 404

    r = await e.put(f"{V2}/{share_id}", data={"permissions": "1", "expireDate": "2099-01-31"})
    assert meta(r) == (200, 200) and data(r)["permissions"] == 1
    assert data(r)["expiration"] == "2099-01-31 23:59:59"
    assert meta(await e.put(f"{V2}/{share_id}", data={"permissions": "3"}))[0] == 400  # file-only role

    declined = await m.delete(f"{V2}/pending/{share_id}")
    assert meta(declined) == (200, 200) and data(declined)[0]["state"] == 2
    assert data(await m.get(V2, params={"shared_with_me": "true", "format": "json"})) == []
    assert [s["state"] for s in data(await m.get(V2, params={"shared_with_me": "true", "state": "all",
                                                             "format": "json"}))] == [2]
    assert data(await m.post(f"{V2}/pending/{share_id}"))[0]["state"] == 0

    assert meta(await e.delete(f"{V2}/{share_id}")) == (200, 200)
    assert data(await m.get(V2, params={"shared_with_me": "true", "format": "json"})) == []
    assert meta(await e.get(f"{V2}/{share_id}"))[0] == 404


async def test_group_share_of_a_file(env):
    clients, _ids = env
    e, r_ = clients["einstein"], clients["richard"]
    assert (await e.put("/remote.php/dav/files/einstein/notes.txt", content=b"hi")).status_code == 201
    r = await share(e, "/notes.txt", "physics-lovers", 3, share_type=1)
    assert meta(r) == (200, 200), r.text
    doc = data(r)
    assert (doc["share_type"], doc["share_with"], doc["item_type"], doc["mimetype"], doc["permissions"]) == (
        1, "physics-lovers", "file", "text/plain", 3)
    assert [s["file_target"] for s in data(await r_.get(V2, params={"shared_with_me": "true",
                                                                     "format": "json"}))] == ["/Shares/notes.txt"]
    assert data(await clients["marie"].get(V2, params={"shared_with_me": "true", "format": "json"})) == []


async def test_errors_in_v1_and_v2(env):
    clients, _ids = env
    e = clients["einstein"]
    assert (await e.request("MKCOL", "/remote.php/dav/files/einstein/Docs")).status_code == 201
    assert meta(await share(e, "/Docs", "nobody")) == (404, 404)
    assert meta(await share(e, "/Docs", "nobody", base=V1)) == (200, 404)
    assert meta(await share(e, "/missing", "marie")) == (404, 404)
    assert meta(await share(e, "/Docs", "marie", share_type=9)) == (400, 400)
    assert meta(await share(e, "/Docs", "einstein")) == (400, 400)  # oneself
    assert meta(await share(e, "/Docs", "marie", permissions=99)) == (400, 400)
    assert meta(await share(e, "/", "marie"))[0] == 403  # the space root
    assert meta(await share(e, "/Docs", "marie")) == (200, 200)
    assert meta(await share(e, "/Docs", "marie"))[0] == 403  # already shared with her
    ok_v1 = await share(e, "/Docs", "richard", base=V1)
    assert meta(ok_v1) == (200, 100)
    xml = await e.get(V1, params={"format": "xml"})
    assert xml.status_code == 200 and "<statuscode>100</statuscode>" in xml.text


async def test_only_managers_of_a_space_share_from_it(env):
    clients, ids = env
    k, m = clients["katherine"], clients["marie"]
    drive = (await k.post("/graph/v1.0/drives", json={"name": "Team"})).json()
    r = await k.post(f"/graph/v1beta1/drives/{drive['id']}/root/invite",
                     json={"recipients": [{"objectId": ids["marie"]}],
                           "roles": ["58c63c02-1d89-4572-916a-870abc5a1b7d"]})  # Space Editor
    assert r.status_code == 200
    assert (await m.request("MKCOL", f"/dav/spaces/{drive['id']}/shared")).status_code == 201
    denied = await m.post(V2, data={"space_ref": drive["id"], "path": "/shared", "shareType": "0",
                                    "shareWith": "richard", "permissions": "1"})
    assert meta(denied) == (403, 403)
    made = await k.post(V2, data={"space_ref": drive["id"], "path": "/shared", "shareType": "0",
                                  "shareWith": "richard", "permissions": "1"})
    assert meta(made) == (200, 200), made.text
    assert data(made)["path"] == "/shared" and data(made)["uid_file_owner"] == "katherine"


PROPFIND_PERMS = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
                  "<oc:permissions/></d:prop></d:propfind>")


async def test_recipients_reach_shared_items_by_id_with_the_share_role(env):
    clients, _ids = env
    e, m, r = clients["einstein"], clients["marie"], clients["richard"]
    home = "/remote.php/dav/files/einstein"
    for folder in ("Shared", "Shared/sub", "Private"):
        assert (await e.request("MKCOL", f"{home}/{folder}")).status_code == 201
    assert (await e.put(f"{home}/Shared/sub/a.txt", content=b"alpha")).status_code == 201
    assert (await e.put(f"{home}/Private/secret.txt", content=b"secret")).status_code == 201
    ids = {}
    for path in ("Shared", "Shared/sub/a.txt", "Private", "Private/secret.txt"):
        reply = await e.request("PROPFIND", f"{home}/{path}", headers={"Depth": "0"})
        ids[path] = reply.text.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
    viewer = data(await share(e, "/Shared", "marie", 1))

    shared = f"/dav/spaces/{ids['Shared']}"
    listing = await m.request("PROPFIND", shared, headers={"Depth": "1"}, content=PROPFIND_PERMS)
    assert listing.status_code == 207 and "sub/" in listing.text
    assert (await m.get(f"{shared}/sub/a.txt")).content == b"alpha"
    assert (await m.get(f"/dav/spaces/{ids['Shared/sub/a.txt']}")).content == b"alpha"
    assert (await m.put(f"{shared}/sub/new.txt", content=b"x")).status_code == 403  # a viewer
    assert (await m.delete(f"{shared}/sub/a.txt")).status_code == 403
    # nothing outside the shared folder, and nothing for somebody it was not shared with
    assert (await m.get(f"/dav/spaces/{ids['Private/secret.txt']}")).status_code == 404
    assert (await m.request("PROPFIND", f"/dav/spaces/{ids['Private']}", headers={"Depth": "0"})).status_code == 404
    assert (await r.get(f"{shared}/sub/a.txt")).status_code == 404

    # as an editor: write, create, delete inside; the shared folder itself stays
    assert meta(await e.put(f"{V2}/{viewer['id']}", data={"permissions": "15"}))[0] == 200
    assert (await m.put(f"{shared}/sub/new.txt", content=b"from marie")).status_code == 201
    assert (await e.get(f"{home}/Shared/sub/new.txt")).content == b"from marie"
    assert (await m.request("MKCOL", f"{shared}/made-by-marie")).status_code == 201
    assert (await m.delete(f"{shared}/sub/new.txt")).status_code == 204
    assert (await m.delete(shared)).status_code == 403
    moved = await m.request("MOVE", shared, headers={"Destination": f"{shared}/made-by-marie/in-here"})
    assert moved.status_code == 403
    renamed = await m.request("MOVE", f"{shared}/made-by-marie", headers={"Destination": f"{shared}/renamed"})
    assert renamed.status_code == 201  # inside the share an editor moves freely
    perms = await m.request("PROPFIND", f"{shared}/sub", headers={"Depth": "0"}, content=PROPFIND_PERMS)
    assert "<oc:permissions>DNVCK</oc:permissions>" in perms.text

    # "Can upload": create and upload, no delete
    assert meta(await e.put(f"{V2}/{viewer['id']}", data={"permissions": "4"}))[0] == 200
    assert (await m.put(f"{shared}/dropped.txt", content=b"drop")).status_code == 201
    assert (await m.delete(f"{shared}/dropped.txt")).status_code == 403

    # an unshare ends the access at once
    assert meta(await e.delete(f"{V2}/{viewer['id']}"))[0] == 200
    assert (await m.get(f"{shared}/sub/a.txt")).status_code == 404


JAIL = "/dav/spaces/a0ca6a90-a365-4782-871e-d44447bbc668$a0ca6a90-a365-4782-871e-d44447bbc668"


def hrefs(r: httpx.Response) -> list[str]:
    return [part.split("</d:href>")[0] for part in r.text.split("<d:href>")[1:]]


def first_etag(r: httpx.Response) -> str:
    return r.text.split("<d:getetag>")[1].split("</d:getetag>")[0]


async def test_the_shares_space_mounts_received_shares(env):
    clients, _ids = env
    e, m, k = clients["einstein"], clients["marie"], clients["katherine"]
    home = "/remote.php/dav/files/einstein"
    for folder in ("Shared", "Shared/sub"):
        assert (await e.request("MKCOL", f"{home}/{folder}")).status_code == 201
    assert (await e.put(f"{home}/Shared/sub/a.txt", content=b"alpha")).status_code == 201
    assert (await e.put(f"{home}/notes.txt", content=b"notes")).status_code == 201
    folder_share = data(await share(e, "/Shared", "marie", 1))
    assert meta(await share(e, "/notes.txt", "marie", 1))[0] == 200
    assert (await k.request("MKCOL", "/remote.php/dav/files/katherine/Shared")).status_code == 201
    assert meta(await share(k, "/Shared", "marie", 1))[0] == 200  # the same name: mounted as "Shared (1)"

    listing = await m.request("PROPFIND", JAIL, headers={"Depth": "1"})
    assert listing.status_code == 207
    assert hrefs(listing) == [f"{JAIL}/", f"{JAIL}/Shared/", f"{JAIL}/notes.txt", f"{JAIL}/Shared%20(1)/"]
    home_listing = await m.request("PROPFIND", "/remote.php/dav/files/marie/", headers={"Depth": "1"})
    assert "/remote.php/dav/files/marie/Shares/" in hrefs(home_listing)
    in_files = await m.request("PROPFIND", "/remote.php/dav/files/marie/Shares", headers={"Depth": "1"})
    assert hrefs(in_files)[1:] == ["/remote.php/dav/files/marie/Shares/Shared/",
                                   "/remote.php/dav/files/marie/Shares/notes.txt",
                                   "/remote.php/dav/files/marie/Shares/Shared%20(1)/"]
    deep = await m.request("PROPFIND", "/remote.php/dav/files/marie/Shares/Shared", headers={"Depth": "1"})
    assert hrefs(deep) == ["/remote.php/dav/files/marie/Shares/Shared/",
                           "/remote.php/dav/files/marie/Shares/Shared/sub/"]

    for url in (f"{JAIL}/Shared/sub/a.txt", "/remote.php/dav/files/marie/Shares/Shared/sub/a.txt",
                "/remote.php/webdav/Shares/Shared/sub/a.txt", "/dav/files/marie/Shares/Shared/sub/a.txt"):
        got = await m.get(url)
        assert got.status_code == 200 and got.content == b"alpha", url
    assert (await m.get(f"{JAIL}/notes.txt")).content == b"notes"
    assert (await m.put(f"{JAIL}/Shared/new.txt", content=b"x")).status_code == 403  # viewer

    # the Shares root changes its ETag when something below a mount changes, or a mount comes or goes
    before = first_etag(await m.request("PROPFIND", JAIL, headers={"Depth": "0"}))
    assert (await e.put(f"{home}/Shared/sub/a.txt", content=b"changed")).status_code == 204
    changed = first_etag(await m.request("PROPFIND", JAIL, headers={"Depth": "0"}))
    assert changed != before
    assert meta(await e.put(f"{V2}/{folder_share['id']}", data={"permissions": "15"}))[0] == 200
    assert (await m.put("/remote.php/dav/files/marie/Shares/Shared/new.txt", content=b"x")).status_code == 201
    assert (await e.get(f"{home}/Shared/new.txt")).content == b"x"

    # the Shares folder itself takes nothing
    assert (await m.request("MKCOL", "/remote.php/dav/files/marie/Shares")).status_code == 405
    assert (await m.put("/remote.php/dav/files/marie/Shares/loose.txt", content=b"x")).status_code == 404
    assert (await m.put("/remote.php/dav/files/marie/mine.txt", content=b"m")).status_code == 201
    moved = await m.request("MOVE", "/remote.php/dav/files/marie/mine.txt",
                            headers={"Destination": "/remote.php/dav/files/marie/Shares"})
    assert moved.status_code == 403

    # declined: unmounted
    assert meta(await m.delete(f"{V2}/pending/{folder_share['id']}"))[0] == 200
    after = await m.request("PROPFIND", JAIL, headers={"Depth": "1"})
    assert f"{JAIL}/Shared/" not in hrefs(after)
    assert first_etag(after) != changed
    assert (await m.get(f"{JAIL}/Shared/sub/a.txt")).status_code == 404


GB = "/graph/v1beta1"
VIEWER_ROLE = "b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5"
EDITOR_ROLE = "fb6c3e19-e378-47e5-b277-9732f9de6e21"


async def _item(c: httpx.AsyncClient, url: str) -> tuple[str, str]:
    """(drive id, item id) of a resource from its oc:fileid."""
    reply = await c.request("PROPFIND", url, headers={"Depth": "0"})
    fileid = reply.text.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
    return fileid.split("!")[0], fileid


async def test_graph_invite_permissions_and_shared_lists_see_the_ocs_shares(env):
    clients, ids = env
    e, m, r = clients["einstein"], clients["marie"], clients["richard"]
    home = "/remote.php/dav/files/einstein"
    assert (await e.request("MKCOL", f"{home}/Team")).status_code == 201
    drive, item = await _item(e, f"{home}/Team")
    invited = await e.post(f"{GB}/drives/{drive}/items/{item}/invite",
                           json={"recipients": [{"objectId": ids["marie"], "@libre.graph.recipient.type": "user"},
                                                {"objectId": ids["physics-lovers"],
                                                 "@libre.graph.recipient.type": "group"}],
                                 "roles": [VIEWER_ROLE]})
    assert invited.status_code == 200, invited.text
    perms = invited.json()["value"]
    assert [p["roles"] for p in perms] == [[VIEWER_ROLE], [VIEWER_ROLE]]
    assert perms[0]["grantedToV2"]["user"]["id"] == ids["marie"]
    assert perms[1]["grantedToV2"]["group"]["displayName"] == "physics-lovers"
    assert perms[0]["invitation"]["invitedBy"]["user"]["id"] == ids["einstein"]
    # the OCS API sees the same shares, under the same ids
    ocs_ids = {s["id"] for s in data(await e.get(V2))}
    assert ocs_ids == {p["id"] for p in perms}

    listed = (await e.get(f"{GB}/drives/{drive}/items/{item}/permissions")).json()
    assert {p["id"] for p in listed["value"]} == ocs_ids
    assert EDITOR_ROLE in {d["id"] for d in listed["@libre.graph.permissions.roles.allowedValues"]}
    assert "libre.graph/driveItem/upload/create" in listed["@libre.graph.permissions.actions.allowedValues"]

    changed = await e.patch(f"{GB}/drives/{drive}/items/{item}/permissions/{perms[0]['id']}",
                            json={"roles": [EDITOR_ROLE], "expirationDateTime": "2099-01-01T00:00:00Z"})
    assert changed.status_code == 200 and changed.json()["roles"] == [EDITOR_ROLE]
    assert changed.json()["expirationDateTime"] == "2099-01-01T00:00:00Z"
    assert data(await e.get(f"{V2}/{perms[0]['id']}"))[0]["permissions"] == 15

    with_me = (await m.get(f"{GB}/me/drive/sharedWithMe")).json()["value"]
    assert [(i["name"], i["@client.synchronize"], i["remoteItem"]["id"]) for i in with_me] == [("Team", True, item)]
    assert with_me[0]["remoteItem"]["shared"]["owner"]["user"]["id"] == ids["einstein"]
    assert "folder" in with_me[0] and with_me[0]["parentReference"]["driveType"] == "virtual"
    assert [i["name"] for i in (await r.get(f"{GB}/me/drive/sharedWithMe")).json()["value"]] == ["Team"]
    by_me = (await e.get(f"{GB}/me/drive/sharedByMe")).json()["value"]
    assert [(i["id"], len(i["permissions"])) for i in by_me] == [(item, 2)]

    # who may: not the recipient, not with a role that does not fit the item, not twice
    assert (await m.get(f"{GB}/drives/{drive}/items/{item}/permissions")).json()["value"][0]["id"] == perms[0]["id"]
    denied = await m.post(f"{GB}/drives/{drive}/items/{item}/invite",
                          json={"recipients": [{"objectId": ids["richard"]}], "roles": [VIEWER_ROLE]})
    assert denied.status_code == 403
    file_role = await e.post(f"{GB}/drives/{drive}/items/{item}/invite",
                             json={"recipients": [{"objectId": ids["richard"]}],
                                   "roles": ["2d00ce52-1fc2-4dbc-8b95-a73b73395f5a"]})  # FileEditor on a folder
    assert file_role.status_code == 400
    again = await e.post(f"{GB}/drives/{drive}/items/{item}/invite",
                         json={"recipients": [{"objectId": ids["marie"]}], "roles": [VIEWER_ROLE]})
    assert again.status_code == 409
    assert (await e.delete(f"{GB}/drives/{drive}/items/{item}/permissions/{perms[0]['id']}")).status_code == 204
    assert (await m.get(f"{GB}/me/drive/sharedWithMe")).json()["value"] == []
    assert (await r.delete(f"{GB}/drives/{drive}/items/{item}/permissions/{perms[1]['id']}")).status_code == 403


LINK_PROPS = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
              b"<oc:public-link-item-type/><oc:public-link-permission/><oc:public-link-share-owner/>"
              b"<oc:public-link-share-datetime/><oc:public-link-expiration/><d:resourcetype/></d:prop></d:propfind>")


def public(token: str, path: str = "") -> str:
    return f"/dav/public-files/{token}" + (f"/{path}" if path else "")


async def test_public_links_by_type_with_passwords(env):
    clients, _ids = env
    e = clients["einstein"]
    home = "/remote.php/dav/files/einstein"
    assert (await e.request("MKCOL", f"{home}/pub")).status_code == 201
    assert (await e.put(f"{home}/pub/a.txt", content=b"public text")).status_code == 201
    assert (await e.put(f"{home}/solo.txt", content=b"one file")).status_code == 201

    # a password is required by default, and must follow the policy
    assert meta(await share(e, "/pub", "", share_type=3)) == (400, 400)
    assert meta(await share(e, "/pub", "", share_type=3, password="short")) == (400, 400)
    made = await share(e, "/pub", "", share_type=3, password="correct horse", name="for the team")
    assert meta(made) == (200, 200), made.text
    link = data(made)
    token = link["token"]
    assert (link["share_type"], link["permissions"], link["name"], link["password_protected"]) == (
        3, 1, "for the team", True)
    assert link["url"] == f"https://cloud.example.org/s/{token}" and len(token) == 15
    assert link["share_with"] == "***redacted***"
    assert link["id"] in {s["id"] for s in data(await e.get(V2))}

    anonymous = httpx.AsyncClient(transport=e._transport, base_url="http://testserver")
    visitor = httpx.AsyncClient(transport=e._transport, base_url="http://testserver",
                                auth=("public", "correct horse"))
    wrong = httpx.AsyncClient(transport=e._transport, base_url="http://testserver", auth=("public", "wrong pass"))
    try:
        refused = await anonymous.request("PROPFIND", public(token), headers={"Depth": "1"})
        assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
        assert (await wrong.get(public(token, "a.txt"))).status_code == 401
        listing = await visitor.request("PROPFIND", public(token), headers={"Depth": "1"})
        assert listing.status_code == 207 and f"{public(token)}/a.txt" in listing.text
        # the root tells the visitor what the link is: a folder, view only (1), shared by einstein
        asked = await visitor.request("PROPFIND", public(token), headers={"Depth": "1"}, content=LINK_PROPS)
        root, child = asked.text.split("</d:response>")[:2]
        assert "<oc:public-link-item-type>folder</oc:public-link-item-type>" in root
        assert "<oc:public-link-permission>1</oc:public-link-permission>" in root
        assert "<oc:public-link-share-owner>einstein</oc:public-link-share-owner>" in root
        assert re.search(r"<oc:public-link-share-datetime>\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT<", root)
        assert "<oc:public-link-permission>" not in child  # only the link's root has them
        assert (await visitor.get(public(token, "a.txt"))).content == b"public text"
        assert (await visitor.put(public(token, "b.txt"), content=b"x")).status_code == 403  # view only
        assert (await anonymous.get(public("NoSuchTokenHere", "a.txt"))).status_code == 404

        # upload ("publicUpload"): add files, no delete
        assert meta(await e.put(f"{V2}/{link['id']}", data={"permissions": "5"}))[0] == 200
        assert (await visitor.put(public(token, "b.txt"), content=b"uploaded")).status_code == 201
        assert (await e.get(f"{home}/pub/b.txt")).content == b"uploaded"
        assert (await visitor.delete(public(token, "a.txt"))).status_code == 403
        # edit: delete too
        assert meta(await e.put(f"{V2}/{link['id']}", data={"permissions": "15"}))[0] == 200
        assert (await visitor.delete(public(token, "b.txt"))).status_code == 204
        # file drop: upload, but no listing and no download
        assert meta(await e.put(f"{V2}/{link['id']}", data={"permissions": "4"}))[0] == 200
        assert (await visitor.put(public(token, "dropped.txt"), content=b"drop")).status_code == 201
        drop_listing = await visitor.request("PROPFIND", public(token), headers={"Depth": "1"}, content=LINK_PROPS)
        assert "<oc:public-link-permission>4</oc:public-link-permission>" in drop_listing.text
        assert drop_listing.status_code == 207 and "a.txt" not in drop_listing.text
        assert (await visitor.get(public(token, "a.txt"))).status_code == 403
        assert (await visitor.request("MKCOL", public(token, "no-folders"))).status_code == 403
        # a new password; the old one stops working
        assert meta(await e.put(f"{V2}/{link['id']}", data={"password": "battery staple"}))[0] == 200
        assert (await visitor.request("PROPFIND", public(token), headers={"Depth": "0"})).status_code == 401
        # a file link cannot take uploads; read-only links without password are for space admins
        assert meta(await share(e, "/solo.txt", "", share_type=3, permissions=5, password="correct horse"))[0] == 400
        k = clients["katherine"]
        assert (await k.put("/remote.php/dav/files/katherine/k.txt", content=b"k")).status_code == 201
        open_link = data(await share(k, "/k.txt", "", share_type=3))
        assert open_link["password_protected"] is False
        assert (await anonymous.get(public(open_link["token"]))).content == b"k"
        # deleting the link ends access
        assert meta(await e.delete(f"{V2}/{link['id']}"))[0] == 200
        assert (await visitor.get(public(token, "a.txt"))).status_code == 404
    finally:
        for c in (anonymous, visitor, wrong):
            await c.aclose()


async def test_wrong_link_passwords_lock_the_link_for_a_while(env):
    clients, _ids = env
    e = clients["einstein"]
    assert (await e.put("/remote.php/dav/files/einstein/locked.txt", content=b"x")).status_code == 201
    token = data(await share(e, "/locked.txt", "", share_type=3, password="correct horse"))["token"]
    wrong = httpx.AsyncClient(transport=e._transport, base_url="http://testserver", auth=("public", "guessing"))
    right = httpx.AsyncClient(transport=e._transport, base_url="http://testserver", auth=("public", "correct horse"))
    try:
        statuses = [(await wrong.get(public(token))).status_code for _ in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[-1] == 429
        assert (await right.get(public(token))).status_code == 429  # locked for everybody, for a while
    finally:
        await wrong.aclose()
        await right.aclose()


async def test_graph_links_create_set_password_update(env):
    clients, _ids = env
    e = clients["einstein"]
    home = "/remote.php/dav/files/einstein"
    assert (await e.request("MKCOL", f"{home}/gl")).status_code == 201
    drive, item = await _item(e, f"{home}/gl")
    base = f"{GB}/drives/{drive}/items/{item}"
    assert (await e.post(f"{base}/createLink", json={"type": "view"})).status_code == 400  # password required
    made = await e.post(f"{base}/createLink", json={"type": "upload", "password": "correct horse",
                                                   "displayName": "drop here"})
    assert made.status_code == 200, made.text
    link = made.json()
    assert link["hasPassword"] is True and link["link"]["type"] == "upload"
    assert link["link"]["@libre.graph.displayName"] == "drop here"
    token = link["link"]["webUrl"].rsplit("/", 1)[1]
    # the OCS API sees it
    assert data(await e.get(f"{V2}/{link['id']}"))[0]["token"] == token
    listed = (await e.get(f"{base}/permissions")).json()["value"]
    assert [p["id"] for p in listed if "link" in p] == [link["id"]]
    changed = await e.patch(f"{base}/permissions/{link['id']}", json={"link": {"type": "createOnly"}})
    assert changed.status_code == 200 and changed.json()["link"]["type"] == "createOnly"
    assert (await e.post(f"{base}/permissions/{link['id']}/setPassword",
                         json={"password": "battery staple"})).status_code == 200
    async with httpx.AsyncClient(transport=e._transport, base_url="http://testserver",
                                 auth=("public", "battery staple")) as visitor:
        assert (await visitor.put(public(token, "dropped.txt"), content=b"d")).status_code == 201
    assert (await e.post(f"{base}/createLink", json={"type": "bogus", "password": "x" * 10})).status_code == 400
    assert (await e.delete(f"{base}/permissions/{link['id']}")).status_code == 204


async def test_tokeninfo_with_and_without_the_password(env):
    clients, _ids = env
    e = clients["einstein"]
    assert (await e.put("/remote.php/dav/files/einstein/t.txt", content=b"t")).status_code == 201
    token = data(await share(e, "/t.txt", "", share_type=3, password="correct horse"))["token"]
    info = "/ocs/v1.php/apps/files_sharing/api/v1/tokeninfo"
    async with httpx.AsyncClient(transport=e._transport, base_url="http://testserver") as anonymous:
        plain = await anonymous.get(f"{info}/unprotected/{token}", params={"format": "json"})
        assert plain.status_code == 200
        doc = plain.json()["ocs"]["data"]
        assert (doc["token"], doc["password_protected"]) == (token, True) and "opaque_id" not in doc
        assert doc["link_url"].endswith(f"/s/{token}")
        bad = await anonymous.get(f"{info}/protected/{token}", params={"format": "json"},
                                  auth=("public", "wrong one"))
        assert bad.json()["ocs"]["meta"]["statuscode"] == 401
        good = await anonymous.get(f"{info}/protected/{token}", params={"format": "json"},
                                   auth=("public", "correct horse"))
        assert good.json()["ocs"]["data"]["opaque_id"]
        missing = await anonymous.get(f"{info}/unprotected/NoSuchToken", params={"format": "json"})
        assert missing.json()["ocs"]["meta"]["statuscode"] == 404


async def test_share_types_show_on_the_owners_items(env):
    clients, _ids = env
    e = clients["einstein"]
    home = "/remote.php/dav/files/einstein"
    for folder in ("st-user", "st-both", "st-none"):
        assert (await e.request("MKCOL", f"{home}/{folder}")).status_code == 201
    assert meta(await share(e, "/st-user", "marie"))[0] == 200
    assert meta(await share(e, "/st-both", "physics-lovers", share_type=1))[0] == 200
    assert meta(await share(e, "/st-both", "", share_type=3, password="correct horse"))[0] == 200
    body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
            "<oc:share-types/></d:prop></d:propfind>")
    listing = (await e.request("PROPFIND", home, headers={"Depth": "1"}, content=body)).text
    entries = {part.split("</d:href>")[0].rstrip("/").rsplit("/", 1)[-1]: part
               for part in listing.split("<d:href>")[1:]}
    assert "<oc:share-type>0</oc:share-type>" in entries["st-user"]
    assert "<oc:share-type>1</oc:share-type><oc:share-type>3</oc:share-type>" in entries["st-both"]
    assert "<oc:share-type>" not in entries["st-none"]


async def test_share_changes_publish_events(tmp_path):
    import asyncio

    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                            "OCIS_URL": "https://cloud.example.org", "PROXY_ENABLE_BASIC_AUTH": "true",
                            "STORAGE_USERS_MOUNT_ID": MOUNT_ID})
    people(settings, {"einstein": "user", "marie": "user"}, {})
    app = build_app(settings)
    stream = app.webdav.dav.files.bus.subscribe("test", frozenset({
        "ShareCreated", "ShareUpdated", "ShareRemoved", "ShareStateChanged", "LinkCreated", "LinkRemoved"}))
    transport = httpx.ASGITransport(app=app)
    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", auth=(name, f"{name}-secret"),
                                 params={"format": "json"})

    async with client("einstein") as e, client("marie") as m:
        assert (await e.request("MKCOL", "/remote.php/dav/files/einstein/ev")).status_code == 201
        share_id = data(await share(e, "/ev", "marie"))["id"]
        assert meta(await e.put(f"{V2}/{share_id}", data={"permissions": "15"}))[0] == 200
        assert meta(await m.delete(f"{V2}/pending/{share_id}"))[0] == 200
        link_id = data(await share(e, "/ev", "", share_type=3, password="correct horse"))["id"]
        assert meta(await e.delete(f"{V2}/{link_id}"))[0] == 200
        assert meta(await e.delete(f"{V2}/{share_id}"))[0] == 200
    seen = [await asyncio.wait_for(anext(stream), 1) for _ in range(6)]
    assert [ev.type for ev in seen] == ["ShareCreated", "ShareUpdated", "ShareStateChanged", "LinkCreated",
                                        "LinkRemoved", "ShareRemoved"]
    assert seen[0].share_id == share_id and seen[0].grantee_type == "user" and seen[2].state == 2


def sign(url: str, user: str, key: str, date: str | None = None, expires: int = 1200) -> str:
    """A signed URL as ownCloud Web makes one."""
    import hashlib
    from datetime import UTC, datetime
    from urllib.parse import urlencode

    date = date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    query = urlencode({"OC-Credential": user, "OC-Date": date, "OC-Expires": str(expires), "OC-Verb": "GET"})
    signed = url + ("&" if "?" in url else "?") + query
    digest = hashlib.pbkdf2_hmac("sha512", signed.encode(), key.encode(), 10000, 32).hex()
    return signed + "&" + urlencode({"OC-Algo": "PBKDF2/10000-SHA512", "OC-Signature": digest})


async def test_signed_urls_download_without_credentials(env):
    clients, _ids = env
    e = clients["einstein"]
    assert (await e.put("/remote.php/dav/files/einstein/signed.txt", content=b"signed content")).status_code == 201
    key_reply = await e.get("/ocs/v1.php/cloud/user/signing-key", params={"format": "json"})
    key = key_reply.json()["ocs"]["data"]["signing-key"]
    assert key_reply.json()["ocs"]["data"]["user"] == "einstein" and len(key) == 64
    again = await e.get("/ocs/v1.php/cloud/user/signing-key", params={"format": "json"})
    assert again.json()["ocs"]["data"]["signing-key"] == key  # stable
    caps = (await e.get("/ocs/v1.php/cloud/capabilities", params={"format": "json"})).json()
    assert caps["ocs"]["data"]["capabilities"]["core"]["support-url-signing"] is True
    url = "https://cloud.example.org/remote.php/dav/files/einstein/signed.txt"
    async with httpx.AsyncClient(transport=e._transport, base_url="http://testserver") as anonymous:
        path = sign(url, "einstein", key).removeprefix("https://cloud.example.org")
        got = await anonymous.get(path)
        assert got.status_code == 200 and got.content == b"signed content"
        tampered = sign(url, "einstein", "0" * 64).removeprefix("https://cloud.example.org")
        assert (await anonymous.get(tampered)).status_code == 401
        expired = sign(url, "einstein", key, date="2020-01-01T00:00:00.000Z").removeprefix("https://cloud.example.org")
        assert (await anonymous.get(expired)).status_code == 401
        other = sign("https://cloud.example.org/remote.php/dav/files/einstein/other.txt", "einstein", key)
        wrong_path = other.replace("other.txt", "signed.txt").removeprefix("https://cloud.example.org")
        assert (await anonymous.get(wrong_path)).status_code == 401
        assert (await anonymous.put(path, content=b"x")).status_code == 401  # GET only
        # nothing may follow the signature, and what it signs may not be said twice
        expired_later = expired + "&OC-Date=2099-01-01T00:00:00.000Z&OC-Expires=999999999"
        assert (await anonymous.get(expired_later)).status_code == 401
        assert (await anonymous.get(path + "&format=json")).status_code == 401
        doubled = sign(url + "?OC-Date=2099-01-01T00:00:00.000Z", "einstein", key)  # two dates: which one?
        assert (await anonymous.get(doubled.removeprefix("https://cloud.example.org"))).status_code == 401

        # an archive URL signed for one file does not reach another one appended to it
        assert (await e.put("/remote.php/dav/files/einstein/secret.txt", content=b"secret")).status_code == 201
        ids = {}
        for name in ("signed.txt", "secret.txt"):
            found = await e.request("PROPFIND", f"/remote.php/dav/files/einstein/{name}", headers={"Depth": "0"})
            ids[name] = found.text.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
        archive = sign(f"https://cloud.example.org/archiver?id={quote(ids['signed.txt'])}&output-format=tar",
                       "einstein", key).removeprefix("https://cloud.example.org")
        got = await anonymous.get(archive)
        assert got.status_code == 200 and b"signed content" in got.content
        assert (await anonymous.get(archive + f"&id={quote(ids['secret.txt'])}")).status_code == 401


async def test_graph_mount_hide_and_unmount_in_the_shares_space(tmp_path):
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                            "OCIS_URL": "https://cloud.example.org", "PROXY_ENABLE_BASIC_AUTH": "true",
                            "STORAGE_USERS_MOUNT_ID": MOUNT_ID, "FRONTEND_AUTO_ACCEPT_SHARES": "false"})
    people(settings, {"einstein": "user", "marie": "user"}, {})
    transport = httpx.ASGITransport(app=build_app(settings))

    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", auth=(name, f"{name}-secret"),
                                 params={"format": "json"})

    async with client("einstein") as e, client("marie") as m:
        assert (await e.request("MKCOL", "/remote.php/dav/files/einstein/mnt")).status_code == 201
        share_id = data(await share(e, "/mnt", "marie"))["id"]
        pending = (await m.get(f"{GB}/me/drive/sharedWithMe")).json()["value"]
        assert [i["@client.synchronize"] for i in pending] == [False]  # not accepted: not mounted
        assert f"{JAIL}/mnt/" not in hrefs(await m.request("PROPFIND", JAIL, headers={"Depth": "1"}))
        jail = "a0ca6a90-a365-4782-871e-d44447bbc668$a0ca6a90-a365-4782-871e-d44447bbc668"
        mounted = await m.post(f"{GB}/drives/{jail}/root/children",
                               json={"name": "Mounted", "remoteItem": {"id": pending[0]["remoteItem"]["id"]}})
        assert mounted.status_code == 201, mounted.text
        assert mounted.json()["@client.synchronize"] is True and mounted.json()["name"] == "Mounted"
        assert f"{JAIL}/Mounted/" in hrefs(await m.request("PROPFIND", JAIL, headers={"Depth": "1"}))
        item = mounted.json()["id"]
        hidden = await m.patch(f"{GB}/drives/{jail}/items/{item}", json={"@UI.Hidden": True})
        assert hidden.status_code == 200 and hidden.json()["@UI.Hidden"] is True
        assert data(await m.get(V2, params={"shared_with_me": "true", "format": "json"}))[0]["hidden"] is True
        assert (await m.delete(f"{GB}/drives/{jail}/items/{item}")).status_code == 204
        assert f"{JAIL}/Mounted/" not in hrefs(await m.request("PROPFIND", JAIL, headers={"Depth": "1"}))
        assert data(await m.get(V2, params={"shared_with_me": "true", "state": "2", "format": "json"}))[0]["id"] \
            == share_id
        assert (await e.delete(f"{GB}/drives/{jail}/items/{item}")).status_code == 404  # not einstein's


async def test_tus_uploads_through_an_upload_link(env):
    import base64

    clients, _ids = env
    e = clients["einstein"]
    assert (await e.request("MKCOL", "/remote.php/dav/files/einstein/tusdrop")).status_code == 201
    token = data(await share(e, "/tusdrop", "", share_type=3, permissions=4, password="correct horse"))["token"]
    async with httpx.AsyncClient(transport=e._transport, base_url="http://testserver",
                                 auth=("public", "correct horse")) as visitor:
        name = base64.b64encode(b"via-tus.txt").decode()
        created = await visitor.post(public(token) + "/", headers={
            "Tus-Resumable": "1.0.0", "Upload-Length": "11", "Upload-Metadata": f"filename {name}"})
        assert created.status_code == 201, created.text
        done = await visitor.patch(created.headers["location"], content=b"hello drop!", headers={
            "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert done.status_code == 204
    assert (await e.get("/remote.php/dav/files/einstein/tusdrop/via-tus.txt")).content == b"hello drop!"


async def test_listing_filters_and_hiding_received_shares(env):
    clients, _ids = env
    e, m = clients["einstein"], clients["marie"]
    home = "/remote.php/dav/files/einstein"
    for folder in ("lf", "lf/a", "lf/b"):
        assert (await e.request("MKCOL", f"{home}/{folder}")).status_code == 201
    user_share = data(await share(e, "/lf/a", "marie"))["id"]
    link = data(await share(e, "/lf/b", "", share_type=3, password="correct horse"))["id"]
    parent = data(await share(e, "/lf", "marie"))["id"]
    within = data(await e.get(V2, params={"path": "/lf", "subfiles": "true", "format": "json"}))
    assert {s["id"] for s in within} == {user_share, link}
    links = data(await e.get(V2, params={"share_types": "3", "format": "json"}))
    assert [s["id"] for s in links] == [link]
    assert {s["id"] for s in data(await e.get(V2, params={"path": "/lf", "format": "json"}))} == {parent}
    assert meta(await e.get(V2, params={"share_types": "x", "format": "json"}))[0] == 400
    assert meta(await m.put(f"{V2}/pending/{user_share}", data={"hidden": "true"}))[0] == 200
    received = data(await m.get(V2, params={"shared_with_me": "true", "format": "json"}))
    assert {s["id"]: s["hidden"] for s in received} == {user_share: True, parent: False}


async def test_signed_urls_for_public_links(env):
    clients, _ids = env
    e = clients["einstein"]
    assert (await e.request("MKCOL", "/remote.php/dav/files/einstein/sp")).status_code == 201
    assert (await e.put("/remote.php/dav/files/einstein/sp/pic.txt", content=b"picture")).status_code == 201
    token = data(await share(e, "/sp", "", share_type=3, password="correct horse"))["token"]
    async with httpx.AsyncClient(transport=e._transport, base_url="http://testserver") as anonymous:
        refused = await anonymous.get("/ocs/v2.php/cloud/user/signing-key",
                                      params={"public-token": token, "format": "json"})
        assert refused.status_code == 401
        got = await anonymous.get("/ocs/v2.php/cloud/user/signing-key", params={"public-token": token,
                                                                                "format": "json"},
                                  auth=("public", "correct horse"))
        key = got.json()["ocs"]["data"]["signing-key"]
        url = f"https://cloud.example.org/dav/public-files/{token}/pic.txt"
        signed = sign(url, "public", key).removeprefix("https://cloud.example.org")
        fetched = await anonymous.get(signed)  # no password needed: the signature is the credential
        assert fetched.status_code == 200 and fetched.content == b"picture"
        forged = sign(url, "public", "f" * 64).removeprefix("https://cloud.example.org")
        assert (await anonymous.get(forged)).status_code == 401


async def test_hostile_share_requests_get_clear_errors(env):
    clients, _ids = env
    e = clients["einstein"]
    huge = await e.post(V2, content=b"path=" + b"x" * (2 << 20),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert meta(huge) == (400, 400)
    for bad in ("../../etc", "99999999999999999999999", "1;DROP", "%00"):
        assert meta(await e.get(f"{V2}/{bad}"))[0] in (400, 404)
    assert meta(await share(e, "/../../etc", "marie"))[0] == 404
    assert meta(await e.get(V2, params={"path": "/nope", "format": "json"}))[0] == 404
