"""Activities (activitylog) through the Libre Graph API, with the `activitylog` consumer on the app's
event bus: what each file operation, share, link and space membership records, on the resource and
on the folders above it (and how deep a query looks), names as they are now, order, limit and time
window, who may ask (ListGrants) and the errors for bad queries."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from infiniscale.core.model import events
from infiniscale.core.ports.activities import ActivityQuery
from infiniscale.runtime import build_app
from infiniscale.settings import resolve
from tests.api.conftest import MOUNT_ID, consuming, people
from tests.api.test_drives import VIEWER, create_project, invite

ACTIVITIES = "/graph/v1beta1/extensions/org.libregraph/activities"
FILES = "/remote.php/dav/files/einstein"
SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
USERS = {"admin": "admin", "einstein": "user", "marie": "user", "richard": "user"}
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


@pytest.fixture
async def env(tmp_path) -> AsyncIterator[tuple[object, dict[str, httpx.AsyncClient], dict[str, str]]]:
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                            "OCIS_URL": "https://cloud.example.org", "PROXY_ENABLE_BASIC_AUTH": "true",
                            "STORAGE_USERS_MOUNT_ID": MOUNT_ID})
    ids = people(settings, USERS, {"physics-lovers": ["richard", "marie"]})
    app = build_app(settings)
    async with consuming(app, app.graph.activities.run, USERS) as clients:
        yield app, clients, ids


async def file_id(c: httpx.AsyncClient, path: str) -> str:
    r = await c.request("PROPFIND", f"{FILES}/{path}", headers={"Depth": "0"})
    assert r.status_code == 207, r.text
    return re.search(r"<oc:fileid>([^<]+)<", r.text).group(1)


async def activities(c: httpx.AsyncClient, kql: str) -> list[dict]:
    r = await c.get(ACTIVITIES, params={"kql": kql})
    assert r.status_code == 200, r.text
    return r.json()["value"]


async def until(c: httpx.AsyncClient, kql: str, count: int) -> list[dict]:
    """The activities once there are `count` of them (the consumer works in the background)."""
    deadline = time.monotonic() + 5
    while True:
        found = await activities(c, kql)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


def messages(found: list[dict]) -> list[str]:
    """Each activity's message with its variables filled in, as a client renders it."""
    out = []
    for activity in found:
        template = activity["template"]
        names = {k: v.get("displayName", v.get("name")) for k, v in template["variables"].items()}
        out.append(re.sub(r"\{(\w+)\}", lambda m, names=names: str(names[m[1]]), template["message"]))
    return out


async def test_file_operations_land_on_the_item_and_the_folders_above(env):
    _app, c, ids = env
    e = c["einstein"]
    await e.request("MKCOL", f"{FILES}/docs")
    await e.request("MKCOL", f"{FILES}/docs/deep")
    await e.put(f"{FILES}/docs/deep/a.txt", content=b"one")
    await e.put(f"{FILES}/docs/deep/a.txt", content=b"two")
    await e.request("MOVE", f"{FILES}/docs/deep/a.txt", headers={"Destination": f"{FILES}/docs/deep/b.txt"})
    await e.request("MKCOL", f"{FILES}/other")
    await e.request("MOVE", f"{FILES}/docs/deep/b.txt", headers={"Destination": f"{FILES}/other/b.txt"})
    item = await file_id(e, "other/b.txt")
    found = await until(e, f"itemid:{item}", 4)
    # names are today's: the file is b.txt now, whatever it was called then
    assert messages(found) == ["Einstein added b.txt to deep", "Einstein updated b.txt in deep",
                               "Einstein renamed a.txt to b.txt", "Einstein moved b.txt to other"]
    first = found[0]
    assert set(first) == {"id", "times", "template"} and RFC3339_NANO.match(first["times"]["recordedTime"])
    assert first["template"]["message"] == "{user} added {resource} to {folder}"
    variables = first["template"]["variables"]
    assert variables["user"] == {"id": ids["einstein"], "displayName": "Einstein"}
    assert variables["resource"] == {"id": item, "name": "b.txt"}
    assert variables["folder"]["name"] == "deep"
    assert found[2]["template"]["variables"]["oldResource"]["name"] == "a.txt"

    docs = await file_id(e, "docs")
    # docs: its own making (depth 0), deep made in it (1), the file's life in deep (2) until it moved
    assert messages(await activities(e, f"itemid:{docs} AND depth:0")) == ["Einstein added docs to Einstein"]
    assert messages(await activities(e, f"itemid:{docs} AND depth:1")) == [
        "Einstein added docs to Einstein", "Einstein added deep to docs"]
    assert messages(await activities(e, f'itemid:"{docs}" AND depth:2')) == [
        "Einstein added docs to Einstein", "Einstein added deep to docs", "Einstein added b.txt to deep",
        "Einstein updated b.txt in deep", "Einstein renamed a.txt to b.txt"]

    other = await file_id(e, "other")
    assert (await e.delete(f"{FILES}/other/b.txt")).status_code == 204
    # a deletion counts on the folder it left at depth 0, as in oCIS
    found = await until(e, f"itemid:{other} AND depth:0", 2)
    assert messages(found) == ["Einstein added other to Einstein", "Einstein deleted b.txt from other"]
    assert messages(await activities(e, f"itemid:{other} AND depth:1")) == [
        "Einstein added other to Einstein", "Einstein moved b.txt to other", "Einstein deleted b.txt from other"]

    root = item.split("!")[0]  # the space itself: at the top level the folder is the space
    everything = await activities(e, f"itemid:{root}")
    assert len(everything) == 8
    assert messages(everything)[0] == "Einstein added docs to Einstein"


async def test_limit_order_and_time_window(env):
    _app, c, _ids = env
    e = c["einstein"]
    for name in ("1.txt", "2.txt", "3.txt"):
        await e.put(f"{FILES}/{name}", content=b"x")
    root = (await file_id(e, "1.txt")).split("!")[0]
    found = await until(e, f"itemid:{root}", 3)
    assert messages(found) == [f"Einstein added {n}.txt to Einstein" for n in "123"]
    newest = await activities(e, f"itemid:{root} AND limit:2 AND sort:desc")
    assert messages(newest) == ["Einstein added 3.txt to Einstein", "Einstein added 2.txt to Einstein"]
    middle = found[1]["times"]["recordedTime"]
    assert messages(await activities(e, f"itemid:{root} AND date>{middle}")) == ["Einstein added 3.txt to Einstein"]
    assert messages(await activities(e, f"itemid:{root} AND date<{middle}")) == ["Einstein added 1.txt to Einstein"]
    assert len(await activities(e, f"itemid:{root} AND date>=2000-01-01 AND date<=2999-12-31")) == 3


async def test_shares_and_links_are_recorded_with_their_sharee(env):
    _app, c, _ids = env
    e = c["einstein"]
    await e.request("MKCOL", f"{FILES}/lab")
    lab = await file_id(e, "lab")
    r = await e.post(SHARES, params={"format": "json"},
                     data={"path": "/lab", "shareType": "0", "shareWith": "marie", "permissions": "1"})
    share = r.json()["ocs"]["data"]
    await e.put(f"{SHARES}/{share['id']}", params={"format": "json"}, data={"permissions": "15"})
    await e.post(SHARES, params={"format": "json"},
                 data={"path": "/lab", "shareType": "1", "shareWith": "physics-lovers", "permissions": "1"})
    r = await e.post(SHARES, params={"format": "json"}, data={"path": "/lab", "shareType": "3", "permissions": "1",
                                                            "password": "Link-Secret-1"})
    link = r.json()["ocs"]["data"]
    await e.put(f"{SHARES}/{link['id']}", params={"format": "json"}, data={"expireDate": "2999-01-01"})
    await e.delete(f"{SHARES}/{link['id']}")
    await e.delete(f"{SHARES}/{share['id']}")
    found = await until(e, f"itemid:{lab} AND depth:0", 8)
    assert messages(found) == [
        "Einstein added lab to Einstein", "Einstein shared lab with Marie", "Einstein updated permission for the lab",
        "Einstein shared lab with physics-lovers", "Einstein shared lab via link",
        f"Einstein updated expiration date for a link {link['token']} on lab", "Einstein removed link to lab",
        "Einstein removed Marie from lab"]


async def test_who_may_ask(env):
    _app, c, ids = env
    e, m = c["einstein"], c["marie"]
    await e.request("MKCOL", f"{FILES}/lab")
    lab = await file_id(e, "lab")
    await e.post(SHARES, params={"format": "json"},
                 data={"path": "/lab", "shareType": "0", "shareWith": "marie", "permissions": "1"})
    await until(e, f"itemid:{lab}", 2)
    # a plain viewer of a share may not see who did what; somebody without access learns nothing
    r = await m.get(ACTIVITIES, params={"kql": f"itemid:{lab}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "accessDenied"
    r = await c["richard"].get(ACTIVITIES, params={"kql": f"itemid:{lab}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "itemNotFound"
    assert (await c["anonymous"].get(ACTIVITIES, params={"kql": f"itemid:{lab}"})).status_code == 401

    # the members of a project space may, viewers too; joining is recorded on the space
    drive = await create_project(c["admin"], "Physics")
    assert (await invite(c["admin"], drive, ids["marie"], VIEWER)).status_code == 200
    found = await until(m, f"itemid:{drive['id']}", 2)
    assert messages(found)[-1] == "Admin added Marie as member of Physics"
    assert found[-1]["template"]["variables"]["space"] == {"id": drive["id"], "name": "Physics"}


@pytest.mark.parametrize("kql", ["", "depth:1", "itemid:x$y!z OR depth:1", "itemid:x$y!z AND depth:deep",
                                 "itemid:x$y!z AND sort:sideways", "itemid:x$y!z AND date>yesterday",
                                 "itemid:nonsense", "name:foo"])
async def test_bad_queries_are_400(env, kql):
    _app, c, _ids = env
    r = await c["einstein"].get(ACTIVITIES, params={"kql": kql} if kql else {})
    assert r.status_code == 400, (kql, r.text)
    assert r.json()["error"]["code"] == "invalidRequest"


async def test_tree_events_carry_the_folders_they_happened_in(env):
    """What the activity log links a change to comes with the event, as it was then: a batch
    recorded after a later move still places each change where it happened."""
    app, c, _ids = env
    e = c["einstein"]
    seen: list = []

    async def listen() -> None:
        async for event in app.webdav.dav.files.bus.listen():
            seen.append(event)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.05)
    await e.request("MKCOL", f"{FILES}/docs")
    await e.request("MKCOL", f"{FILES}/docs/deep")
    await e.put(f"{FILES}/docs/deep/a.txt", content=b"one")
    tus = await e.post(f"{FILES}/docs/deep/", content=b"tus", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": "3", "Upload-Metadata": "filename dC50eHQ=",
        "Content-Type": "application/offset+octet-stream"})  # t.txt, whole in the creating request
    assert tus.status_code == 201, tus.text
    await e.request("MKCOL", f"{FILES}/other")
    await e.request("COPY", f"{FILES}/docs/deep/a.txt", headers={"Destination": f"{FILES}/other/c.txt"})
    await e.request("MOVE", f"{FILES}/docs/deep/a.txt", headers={"Destination": f"{FILES}/other/b.txt"})
    await e.delete(f"{FILES}/other/b.txt")
    await asyncio.sleep(0.1)
    listener.cancel()
    node = {path: (await file_id(e, path)).split("!")[1] for path in ("docs", "docs/deep", "other")}
    space = (await file_id(e, "docs")).split("$")[1].split("!")[0]
    tree = {"ContainerCreated", "FileUploaded", "ItemCopied", "ItemMoved", "ItemTrashed"}
    assert [(ev.type, ev.ancestors) for ev in seen if ev.type in tree] == [
        ("ContainerCreated", (space,)),
        ("ContainerCreated", (space, node["docs"])),
        ("FileUploaded", (space, node["docs"], node["docs/deep"])),
        ("FileUploaded", (space, node["docs"], node["docs/deep"])),  # by TUS
        ("ContainerCreated", (space,)),
        ("ItemCopied", (space, node["other"])),
        ("ItemMoved", (space, node["other"])),
        ("ItemTrashed", (space, node["other"])),
    ]


async def test_a_redelivered_event_is_stored_once(env):
    app, c, ids = env
    e = c["einstein"]
    await e.put(f"{FILES}/once.txt", content=b"x")
    item = await file_id(e, "once.txt")
    assert len(await until(e, f"itemid:{item}", 1)) == 1
    space, node = item.split("$")[1].split("!")
    event = events.FileTouched(executant=ids["einstein"], space_id=space, node_id=node, parent_id=space,
                               name="once.txt", timestamp_ns=1)
    await asyncio.to_thread(app.graph.activities.record, [event])
    await asyncio.to_thread(app.graph.activities.record, [event])
    assert len(await activities(e, f"itemid:{item}")) == 2


async def test_a_purged_space_takes_its_activities_along(env):
    app, c, ids = env
    a = c["admin"]
    drive = await create_project(a, "Short-lived")
    space_id = drive["id"].split("$")[1]
    assert (await invite(a, drive, ids["marie"], VIEWER)).status_code == 200
    assert len(await until(a, f"itemid:{drive['id']}", 1)) == 1
    assert (await a.delete(f"/graph/v1.0/drives/{drive['id']}")).status_code == 204
    assert (await a.delete(f"/graph/v1.0/drives/{drive['id']}", headers={"Purge": "T"})).status_code == 204
    store = app.graph.activities.store
    deadline = time.monotonic() + 5
    while store.query(ActivityQuery(space_id)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert store.query(ActivityQuery(space_id)) == []
