"""Who may do what with a shared folder and with the folder next to it: the owner, recipients under
each role (directly and through a group), somebody it was not shared with, and visitors of a public
link with and without its password. Every cell is checked; nothing beyond the share leaks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from infiniscale.runtime import build_app
from infiniscale.settings import resolve
from tests.api.conftest import MOUNT_ID, people

OCS = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
USERS = {"owner": "user", "viewer": "user", "editor": "user", "uploader": "user", "member": "user",
         "stranger": "user", "target": "user"}
ACTIONS = ("read", "list", "write", "delete", "share")
# per actor: the shared folder, then its sibling (never shared)
EXPECTED = {
    "owner": {"read": 200, "list": 207, "write": 201, "delete": 204, "share": 200},
    "viewer": {"read": 200, "list": 207, "write": 403, "delete": 403, "share": 404},
    "editor": {"read": 200, "list": 207, "write": 201, "delete": 204, "share": 404},
    "uploader": {"read": 200, "list": 207, "write": 201, "delete": 403, "share": 404},
    "member": {"read": 200, "list": 207, "write": 403, "delete": 403, "share": 404},
    "stranger": {"read": 404, "list": 404, "write": 404, "delete": 404, "share": 404},
    "link with password": {"read": 200, "list": 207, "write": 403, "delete": 403, "share": 401},
    "link without password": {"read": 401, "list": 401, "write": 401, "delete": 401, "share": 401},
}
SIBLING = {
    "owner": EXPECTED["owner"],
    **{actor: dict.fromkeys(ACTIONS, 404) for actor in ("viewer", "editor", "uploader", "member", "stranger")},
    "link with password": dict.fromkeys(ACTIONS, 401),
    "link without password": dict.fromkeys(ACTIONS, 401),
}


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[dict]:
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                            "OCIS_URL": "https://cloud.example.org", "PROXY_ENABLE_BASIC_AUTH": "true",
                            "STORAGE_USERS_MOUNT_ID": MOUNT_ID})
    ids = people(settings, USERS, {"readers": ["member"]})
    transport = httpx.ASGITransport(app=build_app(settings))
    clients = {name: httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                       auth=(name, f"{name}-secret")) for name in USERS}
    clients["link with password"] = httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                                      auth=("public", "link secret 1"))
    clients["link without password"] = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    owner = clients["owner"]
    home = "/remote.php/dav/files/owner"
    fileids = {}
    for folder in ("shared", "sibling"):
        assert (await owner.request("MKCOL", f"{home}/{folder}")).status_code == 201
        assert (await owner.put(f"{home}/{folder}/file.txt", content=b"content")).status_code == 201
        for actor in EXPECTED:
            assert (await owner.put(f"{home}/{folder}/doomed-{actor}.txt", content=b"x")).status_code == 201
        reply = await owner.request("PROPFIND", f"{home}/{folder}", headers={"Depth": "0"})
        fileids[folder] = reply.text.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
    for who, perms, kind in (("viewer", 1, 0), ("editor", 15, 0), ("uploader", 4, 0), ("readers", 1, 1)):
        made = await owner.post(OCS, data={"path": "/shared", "shareType": str(kind), "shareWith": who,
                                           "permissions": str(perms)}, params={"format": "json"})
        assert made.status_code == 200, made.text
    link = await owner.post(OCS, data={"path": "/shared", "shareType": "3", "password": "link secret 1"},
                            params={"format": "json"})
    token = link.json()["ocs"]["data"]["token"]
    try:
        yield {"clients": clients, "fileids": fileids, "token": token, "ids": ids}
    finally:
        for c in clients.values():
            await c.aclose()


def base(world: dict, actor: str, folder: str) -> str:
    if actor == "owner":
        return f"/remote.php/dav/files/owner/{folder}"
    if actor.startswith("link"):
        # a link reaches only its folder; the sibling is tried by id, as anybody could
        return (f"/dav/public-files/{world['token']}" if folder == "shared"
                else f"/dav/spaces/{world['fileids'][folder]}")
    return f"/dav/spaces/{world['fileids'][folder]}"


async def attempt(world: dict, actor: str, folder: str, action: str) -> int:
    c = world["clients"][actor]
    url = base(world, actor, folder)
    if action == "read":
        return (await c.get(f"{url}/file.txt")).status_code
    if action == "list":
        return (await c.request("PROPFIND", url, headers={"Depth": "1"})).status_code
    if action == "write":
        return (await c.put(f"{url}/new-{actor.replace(' ', '-')}.txt", content=b"new")).status_code
    if action == "delete":
        return (await c.delete(f"{url}/doomed-{actor}.txt")).status_code
    reply = await c.post(OCS, data={"space_ref": world["fileids"][folder], "shareType": "0",
                                    "shareWith": "target", "permissions": "1"}, params={"format": "json"})
    return reply.status_code


async def test_share_access_matrix(world):
    got, want = {}, {}
    for actor in EXPECTED:
        for folder, table in (("shared", EXPECTED), ("sibling", SIBLING)):
            for action in ACTIONS:
                key = f"{actor} / {action} / {folder}"
                got[key] = await attempt(world, actor, folder, action)
                want[key] = table[actor][action]
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, "\n".join(f"{k}: got {g}, want {w}" for k, (g, w) in wrong.items())


async def test_listings_show_nothing_beyond_the_share(world):
    viewer = world["clients"]["viewer"]
    listing = await viewer.request("PROPFIND", f"/dav/spaces/{world['fileids']['shared']}", headers={"Depth": "1"})
    assert "sibling" not in listing.text and "/remote.php/dav/files/owner" not in listing.text
    shares = await viewer.get(OCS, params={"format": "json"})
    assert shares.json()["ocs"]["data"] == []  # the owner's shares are not hers to see
    everyone = await viewer.get(OCS, params={"shared_with_me": "true", "format": "json"})
    assert [s["path"] for s in everyone.json()["ocs"]["data"]] == ["/Shares/shared"]
