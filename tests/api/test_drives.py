"""Libre Graph drives and space membership: drive objects with oCIS's fields, the lifecycle of
project spaces (create, update, disable, restore, purge), members with the space roles, the roles
enforced on WebDAV, and quota (507, nothing left behind)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from infiniscale.core.spaces import SPACE_ROLES
from infiniscale.runtime import build_app, build_directory
from infiniscale.settings import resolve
from tests.api.conftest import MOUNT_ID, people

G = "/graph/v1.0"
GB = "/graph/v1beta1"
URL = "https://cloud.example.org"
VIEWER, EDITOR, MANAGER = (SPACE_ROLES[n].id for n in ("viewer", "editor", "manager"))
PROPS = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
         "<d:prop><oc:permissions/><d:quota-available-bytes/><d:quota-used-bytes/></d:prop></d:propfind>")

USERS = {"admin": "admin", "katherine": "spaceadmin", "einstein": "user", "marie": "user", "richard": "user"}


@pytest.fixture
def world(tmp_path):
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false", "OCIS_URL": URL,
                            "PROXY_ENABLE_BASIC_AUTH": "true", "STORAGE_USERS_MOUNT_ID": MOUNT_ID})
    ids = people(settings, USERS, {"physics-lovers": ["richard"]})
    return build_app(settings), ids


@pytest.fixture
async def clients(world) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    app, _ids = world
    transport = httpx.ASGITransport(app=app)
    made = {name: httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                    auth=(name, f"{name}-secret")) for name in USERS}
    try:
        yield made
    finally:
        for c in made.values():
            await c.aclose()


@pytest.fixture
def ids(world) -> dict[str, str]:
    return world[1]


async def create_project(c: httpx.AsyncClient, name: str = "Marketing Team", **extra) -> dict:
    r = await c.post(f"{G}/drives", json={"name": name, "description": "ads and more", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def dav(drive: dict, path: str = "") -> str:
    return f"/dav/spaces/{drive['id']}" + (f"/{path}" if path else "")


async def invite(c: httpx.AsyncClient, drive: dict, object_id: str, role: str, kind: str = "user") -> httpx.Response:
    return await c.post(f"{GB}/drives/{drive['id']}/root/invite",
                        json={"recipients": [{"objectId": object_id, "@libre.graph.recipient.type": kind}],
                              "roles": [role]})


async def permissions_letters(c: httpx.AsyncClient, url: str) -> str:
    r = await c.request("PROPFIND", url, content=PROPS, headers={"Depth": "0"})
    assert r.status_code == 207, r.text
    text = r.text
    start = text.index("<oc:permissions>") + len("<oc:permissions>") if "<oc:permissions>" in text else -1
    return "" if start < 0 else text[start:text.index("</oc:permissions>")]


async def test_personal_drive_has_the_ocis_fields(clients, ids):
    r = await clients["einstein"].get(f"{G}/me/drives")
    assert r.status_code == 200
    drives = r.json()["value"]
    assert [d["driveType"] for d in drives] == ["personal", "virtual"]
    shares = drives[1]
    jail = "a0ca6a90-a365-4782-871e-d44447bbc668$a0ca6a90-a365-4782-871e-d44447bbc668"
    assert (shares["id"], shares["name"], shares["driveAlias"]) == (jail, "Shares", "virtual/shares")
    assert shares["root"]["webDavUrl"] == f"{URL}/dav/spaces/{jail}"
    drive = drives[0]
    assert drive["id"] == f"{MOUNT_ID}${ids['einstein']}"
    assert drive["driveAlias"] == "personal/einstein"
    assert drive["owner"]["user"]["id"] == ids["einstein"]
    assert drive["root"]["id"] == f"{drive['id']}!{ids['einstein']}"
    assert drive["root"]["webDavUrl"] == f"{URL}/dav/spaces/{drive['id']}"
    assert drive["root"]["eTag"].startswith('"') and drive["root"]["eTag"].endswith('"')
    assert drive["quota"]["total"] == 0 and drive["quota"]["state"] == "normal"
    assert drive["quota"]["remaining"] > 0 and drive["quota"]["used"] == 0
    assert drive["webUrl"] == f"{URL}/f/{drive['id']}"
    assert drive["lastModifiedDateTime"].endswith("Z")
    assert "description" not in drive
    me = await clients["einstein"].get(f"{G}/me/drive")
    assert me.status_code == 200 and me.json()["id"] == drive["id"]
    beta = await clients["einstein"].get(f"{GB}/me/drives")
    assert [d["id"] for d in beta.json()["value"]] == [drive["id"], shares["id"]]
    only = await clients["einstein"].get(f"{G}/me/drives", params={"$filter": "driveType eq 'virtual'"})
    assert [d["id"] for d in only.json()["value"]] == [shares["id"]]


async def test_the_root_etag_follows_changes(clients):
    c = clients["einstein"]
    before = (await c.get(f"{G}/me/drive")).json()
    assert (await c.put(f"/dav/spaces/{before['id']}/a.txt", content=b"12345")).status_code == 201
    after = (await c.get(f"{G}/me/drive")).json()
    assert after["root"]["eTag"] != before["root"]["eTag"]
    assert after["quota"]["used"] == 5


async def test_only_admins_and_space_admins_create_project_spaces(clients):
    r = await clients["einstein"].post(f"{G}/drives", json={"name": "Nope"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "accessDenied"
    drive = await create_project(clients["katherine"], quota={"total": 5000})
    assert drive["driveType"] == "project" and drive["driveAlias"] == "project/marketing-team"
    assert drive["name"] == "Marketing Team" and drive["description"] == "ads and more"
    assert drive["quota"]["total"] == 5000 and drive["quota"]["remaining"] == 5000
    default = await create_project(clients["admin"], "Sales")
    assert default["quota"]["total"] == 1_000_000_000
    managers = drive["root"]["permissions"]
    assert len(managers) == 1 and managers[0]["roles"] == [MANAGER]
    for bad in ({"name": ""}, {"name": "a/b"}, {"name": "ok", "quota": {"total": -1}}):
        r = await clients["admin"].post(f"{G}/drives", json=bad)
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "invalidRequest"


async def test_listing_filter_and_order(clients):
    await create_project(clients["katherine"], "Alpha")
    await create_project(clients["katherine"], "Beta")
    mine = (await clients["einstein"].get(f"{G}/me/drives")).json()["value"]
    assert [d["driveType"] for d in mine] == ["personal", "virtual"]
    everything = (await clients["admin"].get(f"{G}/drives?$filter=driveType eq 'project'&$orderby=name desc")).json()
    assert [d["name"] for d in everything["value"]] == ["Beta", "Alpha"]
    own = (await clients["einstein"].get(f"{G}/drives")).json()["value"]
    assert {d["driveType"] for d in own} == {"personal"}
    r = await clients["admin"].get(f"{G}/drives?$orderby=size")
    assert r.status_code == 400
    r = await clients["admin"].get(f"{G}/drives?$filter=owner eq 'x'")
    assert r.status_code == 400


async def test_members_and_their_roles_on_webdav(clients, ids):
    k, marie, richard = clients["katherine"], clients["marie"], clients["richard"]
    drive = await create_project(k)
    assert (await k.put(dav(drive, "plan.txt"), content=b"plan")).status_code == 201
    # not a member: nothing to see
    assert (await marie.request("PROPFIND", dav(drive), headers={"Depth": "0"})).status_code == 404
    assert (await marie.get(f"{G}/drives/{drive['id']}")).status_code == 404
    r = await invite(k, drive, ids["marie"], VIEWER)
    assert r.status_code == 200, r.text
    granted = r.json()["value"][0]
    assert granted["id"] == f"u:{ids['marie']}" and granted["roles"] == [VIEWER]
    assert granted["grantedToV2"]["user"] == {"id": ids["marie"], "displayName": "Marie",
                                              "@libre.graph.userType": "Member"}
    assert drive["id"] in [d["id"] for d in (await marie.get(f"{G}/me/drives")).json()["value"]]
    assert (await marie.get(dav(drive, "plan.txt"))).content == b"plan"
    assert await permissions_letters(marie, dav(drive)) == ""
    assert (await marie.put(dav(drive, "new.txt"), content=b"x")).status_code == 403
    assert (await marie.request("MKCOL", dav(drive, "dir"))).status_code == 403
    assert (await marie.delete(dav(drive, "plan.txt"))).status_code == 403
    assert (await marie.post(dav(drive), headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3",
                                                  "Upload-Metadata": "filename bmV3LnR4dA=="})).status_code == 403
    # a viewer cannot invite
    assert (await invite(marie, drive, ids["richard"], VIEWER)).status_code == 403
    # promoted to editor
    r = await k.patch(f"{GB}/drives/{drive['id']}/root/permissions/u:{ids['marie']}", json={"roles": [EDITOR]})
    assert r.status_code == 200 and r.json()["roles"] == [EDITOR]
    assert (await marie.put(dav(drive, "new.txt"), content=b"x")).status_code == 201
    assert await permissions_letters(marie, dav(drive)) == "DNVCK"
    assert await permissions_letters(k, dav(drive)) == "RDNVCKZP"
    # a group membership reaches the group's members
    assert (await richard.request("PROPFIND", dav(drive), headers={"Depth": "0"})).status_code == 404
    assert (await invite(k, drive, ids["physics-lovers"], VIEWER, "group")).status_code == 200
    assert (await richard.request("PROPFIND", dav(drive), headers={"Depth": "0"})).status_code == 207
    listing = (await k.get(f"{GB}/drives/{drive['id']}/root/permissions")).json()
    assert {p["id"] for p in listing["value"]} == {f"u:{ids['katherine']}", f"u:{ids['marie']}",
                                                   f"g:{ids['physics-lovers']}"}
    assert {r["id"] for r in listing["@libre.graph.permissions.roles.allowedValues"]} == {VIEWER, EDITOR, MANAGER}
    # removal takes effect at once
    assert (await k.delete(f"{GB}/drives/{drive['id']}/root/permissions/u:{ids['marie']}")).status_code == 204
    assert (await marie.get(dav(drive, "plan.txt"))).status_code == 404
    # the last manager stays
    r = await k.delete(f"{GB}/drives/{drive['id']}/root/permissions/u:{ids['katherine']}")
    assert r.status_code == 403
    r = await invite(k, drive, "no-such-user", VIEWER)
    assert r.status_code == 400
    r = await invite(k, drive, ids["marie"], "not-a-role")
    assert r.status_code == 400


async def test_expired_membership_gives_no_access(clients, ids):
    k, marie = clients["katherine"], clients["marie"]
    drive = await create_project(k)
    r = await k.post(f"{GB}/drives/{drive['id']}/root/invite",
                     json={"recipients": [{"objectId": ids["marie"]}], "roles": [VIEWER],
                           "expirationDateTime": "2020-01-01T00:00:00Z"})
    assert r.status_code == 400  # in the past
    r = await k.post(f"{GB}/drives/{drive['id']}/root/invite",
                     json={"recipients": [{"objectId": ids["marie"]}], "roles": [VIEWER],
                           "expirationDateTime": "2999-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["value"][0]["expirationDateTime"] == "2999-01-01T00:00:00Z"
    assert (await marie.request("PROPFIND", dav(drive), headers={"Depth": "0"})).status_code == 207


async def test_update_rename_and_quota_permissions(clients, ids):
    k, marie = clients["katherine"], clients["marie"]
    drive = await create_project(k)
    await invite(k, drive, ids["marie"], MANAGER)
    r = await marie.patch(f"{G}/drives/{drive['id']}", json={"name": "Renamed", "description": "new"})
    assert r.status_code == 200 and r.json()["name"] == "Renamed" and r.json()["description"] == "new"
    assert r.json()["driveAlias"] == "project/marketing-team"  # the alias stays what it was made as
    # a manager who is a plain user may not change the quota; a space admin may
    assert (await marie.patch(f"{G}/drives/{drive['id']}", json={"quota": {"total": 10}})).status_code == 403
    r = await k.patch(f"{G}/drives/{drive['id']}", json={"quota": {"total": 10}})
    assert r.status_code == 200 and r.json()["quota"]["total"] == 10
    assert (await clients["einstein"].patch(f"{G}/drives/{drive['id']}", json={"name": "x"})).status_code == 404


async def test_special_image_and_readme(clients):
    k = clients["katherine"]
    drive = await create_project(k)
    assert (await k.request("MKCOL", dav(drive, ".space"))).status_code == 201
    r = await k.put(dav(drive, ".space/readme.md"), content=b"# hello")
    file_id = r.headers["oc-fileid"]
    r = await k.patch(f"{G}/drives/{drive['id']}",
                      json={"special": [{"specialFolder": {"name": "readme"}, "id": file_id}]})
    assert r.status_code == 200, r.text
    special = r.json()["special"]
    assert special[0]["specialFolder"] == {"name": "readme"} and special[0]["id"] == file_id
    assert special[0]["name"] == "readme.md" and special[0]["size"] == 7


async def test_disable_restore_purge(clients, ids):
    k, marie = clients["katherine"], clients["marie"]
    drive = await create_project(k)
    await invite(k, drive, ids["marie"], EDITOR)
    assert (await marie.delete(f"{G}/drives/{drive['id']}")).status_code == 403
    assert (await k.delete(f"{G}/drives/{drive['id']}", headers={"Purge": "T"})).status_code == 400
    assert (await k.delete(f"{G}/drives/{drive['id']}")).status_code == 204
    shown = (await k.get(f"{G}/drives/{drive['id']}")).json()
    assert shown["root"]["deleted"] == {"state": "trashed"}
    assert drive["id"] not in [d["id"] for d in (await marie.get(f"{G}/me/drives")).json()["value"]]
    assert (await marie.request("PROPFIND", dav(drive), headers={"Depth": "0"})).status_code == 404
    assert (await k.patch(f"{G}/drives/{drive['id']}", headers={"Restore": "true"}, json={})).status_code == 200
    assert (await marie.request("PROPFIND", dav(drive), headers={"Depth": "0"})).status_code == 207
    assert (await k.delete(f"{G}/drives/{drive['id']}")).status_code == 204
    assert (await k.delete(f"{G}/drives/{drive['id']}", headers={"Purge": "T"})).status_code == 204
    assert (await k.get(f"{G}/drives/{drive['id']}")).status_code == 404
    assert (await k.request("PROPFIND", dav(drive), headers={"Depth": "0"})).status_code == 404


async def test_quota_is_enforced_and_nothing_is_left_behind(clients):
    k = clients["katherine"]
    drive = await create_project(k, quota={"total": 10})
    r = await k.put(dav(drive, "big.bin"), content=b"x" * 11)
    assert r.status_code == 507 and "InsufficientStorage" in r.text
    assert (await k.get(dav(drive, "big.bin"))).status_code == 404
    assert (await k.put(dav(drive, "fits.bin"), content=b"x" * 8)).status_code == 201
    r = await k.request("PROPFIND", dav(drive), content=PROPS, headers={"Depth": "0"})
    assert "<d:quota-available-bytes>2</d:quota-available-bytes>" in r.text
    assert (await k.put(dav(drive, "more.bin"), content=b"x" * 3)).status_code == 507
    # overwriting counts only the difference
    assert (await k.put(dav(drive, "fits.bin"), content=b"x" * 10)).status_code == 204
    r = await k.post(dav(drive), headers={"Tus-Resumable": "1.0.0", "Upload-Length": "5",
                                          "Upload-Metadata": "filename dHVzLmJpbg=="})
    assert r.status_code == 507
    state = (await k.get(f"{G}/drives/{drive['id']}")).json()["quota"]
    assert state["used"] == 10 and state["remaining"] == 0 and state["state"] == "exceeded"
    assert (await k.delete(dav(drive, "fits.bin"))).status_code == 204
    assert (await k.get(f"{G}/drives/{drive['id']}")).json()["quota"]["used"] == 0


async def test_max_quota_caps_every_space(tmp_path):
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false", "OCIS_URL": URL,
                            "PROXY_ENABLE_BASIC_AUTH": "true", "STORAGE_USERS_MOUNT_ID": MOUNT_ID,
                            "OCIS_SPACES_MAX_QUOTA": "100", "GRAPH_SPACES_DEFAULT_QUOTA": "50"})
    directory = build_directory(settings)
    directory.put_user(str(uuid.uuid4()), "katherine", "k-secret", "Katherine", "k@example.org", role="spaceadmin")
    transport = httpx.ASGITransport(app=build_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 auth=("katherine", "k-secret")) as k:
        personal = (await k.get(f"{G}/me/drive")).json()
        assert personal["quota"]["total"] == 100  # unlimited becomes the cap
        assert (await k.post(f"{G}/drives", json={"name": "x", "quota": {"total": 101}})).status_code == 400
        drive = await create_project(k, "Small")
        assert drive["quota"]["total"] == 50


async def test_role_definitions(clients):
    r = await clients["einstein"].get(f"{GB}/roleManagement/permissions/roleDefinitions")
    assert r.status_code == 200
    by_id = {d["id"]: d for d in r.json()}
    assert {VIEWER, EDITOR, MANAGER} <= set(by_id)
    assert by_id[MANAGER]["rolePermissions"][0]["condition"] == "exists @Resource.Root"
    one = await clients["einstein"].get(f"{GB}/roleManagement/permissions/roleDefinitions/{EDITOR}")
    assert one.json()["displayName"] == "Can edit"


MATRIX_ACTORS = ["admin", "katherine", "marie-viewer", "marie-editor", "marie-manager", "richard"]
# who gets what, per endpoint, on a project space made by einstein's space admin colleague katherine:
# admin and spaceadmin by their global permissions, marie by her space role, richard (a plain user
# and no member) learns nothing
MATRIX = {
    "get drive": {"admin": 200, "katherine": 200, "marie-viewer": 200, "marie-editor": 200,
                  "marie-manager": 200, "richard": 404},
    "list permissions": {"admin": 404, "katherine": 200, "marie-viewer": 200, "marie-editor": 200,
                         "marie-manager": 200, "richard": 404},
    "rename": {"admin": 200, "katherine": 200, "marie-viewer": 403, "marie-editor": 403,
               "marie-manager": 200, "richard": 404},
    "set quota": {"admin": 200, "katherine": 200, "marie-viewer": 403, "marie-editor": 403,
                  "marie-manager": 403, "richard": 404},
    "invite": {"admin": 404, "katherine": 200, "marie-viewer": 403, "marie-editor": 403,
               "marie-manager": 200, "richard": 404},
    "disable": {"admin": 204, "katherine": 204, "marie-viewer": 403, "marie-editor": 403,
                "marie-manager": 204, "richard": 404},
    "list children": {"admin": 404, "katherine": 200, "marie-viewer": 200, "marie-editor": 200,
                      "marie-manager": 200, "richard": 404},
}


@pytest.mark.parametrize("endpoint", list(MATRIX))
async def test_drive_endpoints_by_role(clients, ids, endpoint):
    k = clients["katherine"]
    got = {}
    for actor in MATRIX_ACTORS:
        drive = await create_project(k, f"Matrix {actor}")
        name, _, role = actor.partition("-")
        if role:
            role_id = {"viewer": VIEWER, "editor": EDITOR, "manager": MANAGER}[role]
            assert (await invite(k, drive, ids[name], role_id)).status_code == 200
        c = clients[name]
        base = f"{G}/drives/{drive['id']}"
        if endpoint == "get drive":
            r = await c.get(base)
        elif endpoint == "list permissions":
            r = await c.get(f"{GB}/drives/{drive['id']}/root/permissions")
        elif endpoint == "rename":
            r = await c.patch(base, json={"name": "Renamed"})
        elif endpoint == "set quota":
            r = await c.patch(base, json={"quota": {"total": 12345}})
        elif endpoint == "invite":
            r = await invite(c, drive, ids["einstein"], VIEWER)
        elif endpoint == "disable":
            r = await c.delete(base)
        else:
            r = await c.get(f"{GB}/drives/{drive['id']}/root/children")
        got[actor] = r.status_code
        if r.status_code >= 400:
            assert r.json()["error"]["code"] in ("accessDenied", "itemNotFound"), r.text
    assert got == MATRIX[endpoint]


async def test_drive_items_list_and_address_the_content(clients, ids):
    c = clients["einstein"]
    drive = (await c.get(f"{G}/me/drive")).json()
    assert (await c.request("MKCOL", dav(drive, "docs"))).status_code == 201
    put = await c.put(dav(drive, "docs/report.pdf"), content=b"%PDF-1.4")
    assert (await c.put(dav(drive, "notes.txt"), content=b"hello")).status_code == 201
    children = (await c.get(f"{G}/me/drive/root/children")).json()["value"]
    assert [(i["name"], "folder" in i, i.get("file")) for i in children] == [
        ("docs", True, None), ("notes.txt", False, {"mimeType": "text/plain"})]
    notes = children[1]
    assert notes["size"] == 5 and notes["eTag"].startswith('"')
    assert notes["parentReference"] == {"driveId": drive["id"], "driveType": "personal",
                                        "id": f"{drive['id']}!{ids['einstein']}"}
    docs = children[0]
    inside = (await c.get(f"{G}/drives/{drive['id']}/items/{docs['id']}/children")).json()["value"]
    assert [(i["id"], i["name"], i["file"]["mimeType"]) for i in inside] == [
        (put.headers["oc-fileid"], "report.pdf", "application/pdf")]
    one = await c.get(f"{GB}/drives/{drive['id']}/items/{put.headers['oc-fileid']}")
    assert one.status_code == 200 and one.json()["name"] == "report.pdf"
    assert one.json()["parentReference"]["id"] == docs["id"]
    assert (await c.get(f"{G}/drives/{drive['id']}/items/{notes['id']}/children")).status_code == 400
    assert (await clients["marie"].get(f"{G}/drives/{drive['id']}/items/{notes['id']}")).status_code == 404
    assert (await c.get(f"{G}/drives/{drive['id']}/items/no-such-node-id")).status_code == 404


async def test_quota_holds_for_copies_and_chunked_uploads(clients, ids):
    k = clients["katherine"]
    drive = await create_project(k, quota={"total": 10})
    assert (await k.put(dav(drive, "six.bin"), content=b"x" * 6)).status_code == 201
    r = await k.request("COPY", dav(drive, "six.bin"), headers={"Destination": dav(drive, "copy.bin")})
    assert r.status_code == 507
    assert (await k.get(dav(drive, "copy.bin"))).status_code == 404
    personal = (await k.get(f"{G}/me/drive")).json()
    assert (await k.put(f"/dav/spaces/{personal['id']}/five.bin", content=b"y" * 5)).status_code == 201
    r = await k.request("COPY", f"/dav/spaces/{personal['id']}/five.bin",
                        headers={"Destination": dav(drive, "five.bin")})
    assert r.status_code == 507  # across spaces too
    assert (await k.get(dav(drive, "five.bin"))).status_code == 404
    uploads = f"/remote.php/dav/uploads/katherine/quota-{uuid.uuid4().hex}"
    assert (await k.request("MKCOL", uploads)).status_code == 201
    assert (await k.put(f"{uploads}/00000", content=b"z" * 3)).status_code == 201
    assert (await k.put(f"{uploads}/00001", content=b"z" * 3)).status_code == 201
    r = await k.request("MOVE", f"{uploads}/.file", headers={"Destination": dav(drive, "chunked.bin"),
                                                             "OC-Total-Length": "6"})
    assert r.status_code == 507
    assert (await k.get(dav(drive, "chunked.bin"))).status_code == 404
    assert (await k.get(f"{G}/drives/{drive['id']}")).json()["quota"]["used"] == 6


async def test_webdav_and_tus_inside_a_project_space(clients, ids):
    k, marie = clients["katherine"], clients["marie"]
    drive = await create_project(k, "Workspace")
    await invite(k, drive, ids["marie"], EDITOR)
    r = await marie.post(dav(drive), headers={"Tus-Resumable": "1.0.0", "Upload-Length": "11",
                                              "Upload-Metadata": "filename dHVzLnR4dA=="})  # tus.txt
    assert r.status_code == 201
    r = await marie.patch(r.headers["location"], content=b"hello world",
                          headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                                   "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204
    assert (await marie.get(dav(drive, "tus.txt"), headers={"Range": "bytes=6-10"})).content == b"world"
    assert (await marie.request("MKCOL", dav(drive, "folder"))).status_code == 201
    r = await marie.request("MOVE", dav(drive, "tus.txt"), headers={"Destination": dav(drive, "folder/moved.txt")})
    assert r.status_code == 201
    r = await marie.request("COPY", dav(drive, "folder"), headers={"Destination": dav(drive, "copied")})
    assert r.status_code == 201
    assert (await k.get(dav(drive, "copied/moved.txt"))).content == b"hello world"
    lock = await marie.request("LOCK", dav(drive, "copied/moved.txt"), content=(
        '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
        "<d:locktype><d:write/></d:locktype></d:lockinfo>"))
    assert lock.status_code == 200
    assert (await k.put(dav(drive, "copied/moved.txt"), content=b"blocked")).status_code == 423
    token = lock.headers["lock-token"]
    assert (await marie.request("UNLOCK", dav(drive, "copied/moved.txt"),
                                headers={"Lock-Token": token})).status_code == 204
    r = await marie.request("PROPPATCH", dav(drive, "folder"), content=(
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop>'
        "<x:color>blue</x:color></d:prop></d:set></d:propertyupdate>"))
    assert r.status_code == 207
    assert (await marie.delete(dav(drive, "folder"))).status_code == 204
    state = (await k.get(f"{G}/drives/{drive['id']}")).json()["quota"]
    assert state["used"] == 11  # the copy is left
