"""Notifications (userlog) through the OCS API, with the `userlog` consumer running on the app's
event bus: shares and space memberships reach their recipients (a group's members each, never the
one who acted) in oCIS's shape; dismissing, items that go away, expiry, a space's end, global
notifications, capabilities and bad requests."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from infiniscale.runtime import build_app
from infiniscale.settings import resolve
from tests.api.conftest import MOUNT_ID, consuming, people
from tests.api.test_drives import EDITOR, G, create_project, invite

NOTIFICATIONS = "/ocs/v2.php/apps/notifications/api/v1/notifications"
SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
USERS = {"admin": "admin", "einstein": "user", "marie": "user", "richard": "user", "moss": "user"}
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


@pytest.fixture
async def env(tmp_path) -> AsyncIterator[tuple[object, dict[str, httpx.AsyncClient], dict[str, str]]]:
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                            "OCIS_URL": "https://cloud.example.org", "PROXY_ENABLE_BASIC_AUTH": "true",
                            "STORAGE_USERS_MOUNT_ID": MOUNT_ID,
                            "USERLOG_GLOBAL_NOTIFICATIONS_SECRET": "s3cret"})
    ids = people(settings, USERS, {"physics-lovers": ["richard", "moss", "einstein"]})
    app = build_app(settings)
    async with consuming(app, app.userlog.run, USERS) as clients:
        yield app, clients, ids


async def notifications(c: httpx.AsyncClient) -> list[dict]:
    r = await c.get(NOTIFICATIONS, params={"format": "json"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["ocs"]["meta"] == {"message": "", "status": "", "statuscode": 200}
    return doc["ocs"]["data"] or []


async def until(c: httpx.AsyncClient, count: int) -> list[dict]:
    """The notifications once there are `count` of them (the consumer works in the background)."""
    deadline = time.monotonic() + 5
    while True:
        found = await notifications(c)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


async def until_subjects(c: httpx.AsyncClient, subjects: list[str]) -> list[dict]:
    """The notifications once their subjects are these (or whatever they are after 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        found = await notifications(c)
        if [n["subject"] for n in found] == subjects or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


async def share(c: httpx.AsyncClient, path: str, with_: str, share_type: int = 0, **extra) -> dict:
    r = await c.post(SHARES, params={"format": "json"},
                     data={"path": path, "shareType": str(share_type), "shareWith": with_, "permissions": "1",
                           **extra})
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]


async def test_a_share_notifies_its_recipient_in_the_ocis_shape(env):
    _app, c, ids = env
    e, m = c["einstein"], c["marie"]
    assert (await m.get(NOTIFICATIONS, params={"format": "json"})).json()["ocs"]["data"] is None
    await e.put("/remote.php/dav/files/einstein/paper.txt", content=b"E=mc2")
    shared = await share(e, "/paper.txt", "marie")
    [note] = await until(m, 1)
    assert note["app"] == "userlog" and note["user"] == "einstein"
    assert note["subject"] == note["subjectRich"] == "Resource shared"
    assert note["message"] == "Einstein shared paper.txt with you"
    assert note["messageRich"] == "{user} shared {resource} with you"
    assert note["object_type"] == "share"
    assert note["object_id"] == shared["item_source"]  # the resource id, not the share id
    assert RFC3339_NANO.match(note["datetime"]), note["datetime"]
    assert note["messageRichParameters"] == {
        "user": {"id": ids["einstein"], "name": "einstein", "displayname": "Einstein"},
        "resource": {"id": shared["item_source"], "name": "paper.txt"},
        "share": {"id": shared["id"]}}
    assert await notifications(e) == []  # the one who shared is not told


async def test_group_members_each_hear_and_dismiss_on_their_own(env):
    _app, c, _ids = env
    e = c["einstein"]
    await e.request("MKCOL", "/remote.php/dav/files/einstein/lab")
    await share(e, "/lab", "physics-lovers", share_type=1)
    [for_richard] = await until(c["richard"], 1)
    [for_moss] = await until(c["moss"], 1)
    assert for_richard["notification_id"] == for_moss["notification_id"]
    assert await notifications(e) == [] and await notifications(c["marie"]) == []
    r = await c["richard"].request("DELETE", NOTIFICATIONS, json={"ids": [for_richard["notification_id"], "nope"]})
    assert r.status_code == 200 and r.content == b""
    assert await notifications(c["richard"]) == []
    assert len(await notifications(c["moss"])) == 1  # dismissing is per user


async def test_unsharing_replaces_the_invitation_and_gone_items_vanish(env):
    _app, c, _ids = env
    e, m = c["einstein"], c["marie"]
    await e.put("/remote.php/dav/files/einstein/a.txt", content=b"a")
    await e.put("/remote.php/dav/files/einstein/b.txt", content=b"b")
    first = await share(e, "/a.txt", "marie")
    await share(e, "/b.txt", "marie")
    assert len(await until(m, 2)) == 2
    assert (await e.delete(f"{SHARES}/{first['id']}")).status_code == 200
    found = await until_subjects(m, ["Resource shared", "Resource unshared"])
    # the invitation to a.txt is gone with its share; the news of its end stays
    assert [(n["subject"], n["messageRichParameters"]["resource"]["name"]) for n in found] == [
        ("Resource shared", "b.txt"), ("Resource unshared", "a.txt")]
    assert found[1]["message"] == "Einstein unshared a.txt with you"
    await e.delete("/remote.php/dav/files/einstein/b.txt")
    assert [n["subject"] for n in await notifications(m)] == ["Resource unshared"]


async def test_expired_shares_tell_the_recipient(env):
    app, c, _ids = env
    e, m = c["einstein"], c["marie"]
    await e.put("/remote.php/dav/files/einstein/brief.txt", content=b"soon gone")
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    await share(e, "/brief.txt", "marie", expireDate=soon)
    await until(m, 1)
    await asyncio.sleep(1.2)
    assert await app.shares.service.expire() == 1
    found = await until_subjects(m, ["Share expired"])
    assert [(n["subject"], n["message"]) for n in found] == [("Share expired", "Access to brief.txt expired")]


async def test_space_membership_disabling_and_deletion(env):
    _app, c, ids = env
    admin, m, r = c["admin"], c["marie"], c["richard"]
    drive = await create_project(admin, "Apollo")
    await invite(admin, drive, ids["marie"], EDITOR)
    await invite(admin, drive, ids["physics-lovers"], EDITOR, kind="group")
    [added] = await until(m, 1)
    space_id = drive["id"]
    assert (added["subject"], added["message"], added["object_type"], added["object_id"]) == (
        "Space shared", "Admin added you to Space Apollo", "storagespace", space_id)
    assert added["messageRichParameters"]["space"] == {"id": space_id, "name": "Apollo"}
    assert [n["subject"] for n in await until(r, 1)] == ["Space shared"]
    assert (await admin.delete(f"{G}/drives/{space_id}")).status_code == 204
    assert (await admin.delete(f"{G}/drives/{space_id}", headers={"Purge": "T"})).status_code == 204
    # the invitation and the disabling went with the space; its deletion stays readable
    found = await until_subjects(m, ["Space deleted"])
    assert [(n["subject"], n["message"]) for n in found] == [("Space deleted", "Admin deleted Space Apollo")]
    assert [n["subject"] for n in await notifications(r)] == ["Space deleted"]  # through the group
    assert await notifications(admin) == []


async def test_removed_members_lose_the_invitation_and_learn_why(env):
    _app, c, ids = env
    admin, m = c["admin"], c["marie"]
    drive = await create_project(admin, "Gemini")
    await invite(admin, drive, ids["marie"], EDITOR)
    await until(m, 1)
    assert (await admin.delete(f"/graph/v1beta1/drives/{drive['id']}/root/permissions/u:{ids['marie']}")
            ).status_code == 204
    found = await until_subjects(m, ["Removed from Space"])
    assert [n["message"] for n in found] == ["Admin removed you from Space Gemini"]


async def test_global_deprovisioning_notice(env):
    _app, c, _ids = env
    body = {"type": "deprovision", "data": {"deprovision_date": "2027-01-31T00:00:00Z"}}
    url = f"{NOTIFICATIONS}/global"
    r = await c["marie"].post(url, json=body)
    assert r.status_code == 404 and r.json()["error"]["code"] == "itemNotFound"
    assert (await c["marie"].post(url, json=body, headers={"secret": "s3cret"})).status_code == 200
    for name in ("marie", "einstein", "admin"):
        [note] = await notifications(c[name])
        assert note["notification_id"] == "deprovision" and note["object_type"] == "resource"
        assert note["subject"] == "Instance will be shut down and deprovisioned"
        assert "2027-01-31T00:00:00Z" in note["message"] and note["messageRichParameters"] == {}
    assert (await c["admin"].post(url, json={"type": "other", "data": {}})).status_code == 400
    assert (await c["admin"].post(url, json={"type": "deprovision", "data": {"deprovision_date": "soon"}})
            ).status_code == 400
    assert (await c["admin"].request("DELETE", url, json={"ids": ["deprovision"]})).status_code == 200
    assert await notifications(c["marie"]) == []


async def test_capabilities_and_bad_requests(env):
    _app, c, _ids = env
    caps = (await c["marie"].get("/ocs/v1.php/cloud/capabilities", params={"format": "json"})).json()
    assert caps["ocs"]["data"]["capabilities"]["notifications"]["ocs-endpoints"] == ["list", "get", "delete"]
    m = c["marie"]
    for body in (b"{", b"[]", b'{"ids": "x"}', b'{"ids": [1]}', b'{"other": []}'):
        r = await m.request("DELETE", NOTIFICATIONS, content=body)
        assert r.status_code == 400, body
    assert (await m.post(NOTIFICATIONS, content=b"{}")).status_code == 405
    async with httpx.AsyncClient(transport=m._transport, base_url="http://testserver") as anonymous:
        assert (await anonymous.get(NOTIFICATIONS)).status_code == 401
