"""Libre Graph tags: assign and unassign by resource id, `oc:tags` in PROPFIND, the list of tags a
user can see (not others' and not those of deleted items), write access required."""

from __future__ import annotations

import re

from tests.api.test_drives import VIEWER, create_project, invite
from tests.api.test_history import FILES

TAGS = "/graph/v1.0/extensions/org.libregraph/tags"
PROPS = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
         "<d:prop><oc:tags/><oc:fileid/></d:prop></d:propfind>")


async def tags_and_id(c, url: str) -> tuple[str, str]:
    r = await c.request("PROPFIND", url, headers={"Depth": "0"}, content=PROPS)
    assert r.status_code == 207, r.text
    tags = re.search(r"<oc:tags>([^<]*)</oc:tags>|<oc:tags/>", r.text)
    return (tags.group(1) or "") if tags else "", re.search(r"<oc:fileid>([^<]+)<", r.text).group(1)


async def test_tags_are_assigned_listed_and_removed(clients):
    c = clients["einstein"]
    await c.put(f"{FILES}/report.pdf", content=b"%PDF")
    await c.request("MKCOL", f"{FILES}/trip")
    _, fid = await tags_and_id(c, f"{FILES}/report.pdf")
    _, folder_id = await tags_and_id(c, f"{FILES}/trip")
    r = await c.put(TAGS, json={"resourceId": fid, "tags": ["work", "2024", "work"]})
    assert r.status_code == 200, r.text
    assert (await c.put(TAGS, json={"resourceId": folder_id, "tags": ["holiday"]})).status_code == 200
    assert (await tags_and_id(c, f"{FILES}/report.pdf"))[0] == "work,2024"
    assert (await c.get(TAGS)).json()["value"] == ["2024", "holiday", "work"]
    assert (await clients["marie"].get(TAGS)).json()["value"] == []  # nothing of hers is tagged
    r = await c.request("DELETE", TAGS, json={"resourceId": fid, "tags": ["2024"]})
    assert r.status_code == 200
    assert (await tags_and_id(c, f"{FILES}/report.pdf"))[0] == "work"
    await c.delete(f"{FILES}/trip")
    assert (await c.get(TAGS)).json()["value"] == ["work"]  # a deleted item's tags are not listed


async def test_tagging_needs_write_access_and_a_valid_body(clients, ids):
    admin, c = clients["admin"], clients["einstein"]
    drive = await create_project(admin, "Tagged")
    assert (await invite(admin, drive, ids["einstein"], VIEWER)).status_code == 200
    await admin.put(f"/dav/spaces/{drive['id']}/plan.txt", content=b"plan")
    _, fid = await tags_and_id(admin, f"/dav/spaces/{drive['id']}/plan.txt")
    assert (await c.put(TAGS, json={"resourceId": fid, "tags": ["mine"]})).status_code == 403
    assert (await clients["marie"].put(TAGS, json={"resourceId": fid, "tags": ["x"]})).status_code == 404
    assert (await admin.put(TAGS, json={"resourceId": fid, "tags": ["plan"]})).status_code == 200
    assert (await c.get(TAGS)).json()["value"] == ["plan"]  # a viewer sees the space's tags
    for body in ({"resourceId": fid}, {"resourceId": fid, "tags": []}, {"resourceId": fid, "tags": ["a,b"]},
                 {"tags": ["a"]}, {"resourceId": "nonsense", "tags": ["a"]}):
        assert (await admin.put(TAGS, json=body)).status_code == 400, body
