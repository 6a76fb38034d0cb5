"""Libre Graph users, groups and roles: a role matrix against oCIS's permission table, then the
validation rules, OData options and error bodies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from infiniscale.core.accounts import assignment_of
from infiniscale.core.roles import ROLES
from infiniscale.runtime import application_id, build_app, build_app_tokens, build_directory
from infiniscale.settings import resolve
from tests.api.conftest import MOUNT_ID

G = "/graph/v1.0"
ROLE_NAMES = ("admin", "spaceadmin", "user", "user-light")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """One server with an actor per role, each with an app token."""
    root = tmp_path_factory.mktemp("graph")
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(root), "PROXY_TLS": "false",
                            "OCIS_URL": "https://cloud.example.org", "STORAGE_USERS_MOUNT_ID": MOUNT_ID})
    directory = build_directory(settings)
    tokens = build_app_tokens(settings)
    actors = {}
    for role in ROLE_NAMES:
        user_id = str(uuid.uuid4())
        directory.put_user(user_id, f"actor-{role}", "secret-password", f"Actor {role}", f"{role}@example.org",
                           role=role)
        actors[role] = (user_id, tokens.create(user_id, 3600, "tests")[0])
    directory.put_group(str(uuid.uuid4()), "physics-lovers", [])
    return settings, directory, build_app(settings), actors


@pytest.fixture
async def as_role(world) -> AsyncIterator:
    _settings, _directory, app, actors = world
    clients: list[httpx.AsyncClient] = []

    def make(role: str) -> httpx.AsyncClient:
        _user_id, token = actors[role]
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                              auth=(f"actor-{role}", token))
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


def fresh_user(directory, role: str = "user") -> str:
    user_id = str(uuid.uuid4())
    directory.put_user(user_id, f"u{uuid.uuid4().hex[:10]}", "a-password", "Someone", "someone@example.org",
                       role=role)
    return user_id


def fresh_group(directory, members: list[str] = ()) -> str:
    group_id = str(uuid.uuid4())
    directory.put_group(group_id, f"g{uuid.uuid4().hex[:10]}", list(members))
    return group_id


# (name, method, url builder, body builder, status for admin, status for everybody else)
def cases(world):
    _s, d, _app, _actors = world
    app_id = application_id(world[0])
    user_role = ROLES["user"].id

    def username(uid: str) -> str:
        return d.get_by_id(uid).username

    return [
        ("list users", "GET", lambda: f"{G}/users", None, 200, 403),
        ("search users", "GET", lambda: f"{G}/users?$search=actor", None, 200, 200),
        ("create user", "POST", lambda: f"{G}/users",
         lambda: {"onPremisesSamAccountName": f"n{uuid.uuid4().hex[:8]}", "displayName": "New",
                  "mail": "new@example.org", "passwordProfile": {"password": "pw-123456"}}, 201, 403),
        ("get user", "GET", lambda: f"{G}/users/{fresh_user(d)}", None, 200, 200),
        ("update user", "PATCH", lambda: f"{G}/users/{fresh_user(d)}", lambda: {"displayName": "Changed"}, 200, 403),
        ("delete user", "DELETE", lambda: f"{G}/users/{fresh_user(d)}", None, 204, 403),
        ("list groups", "GET", lambda: f"{G}/groups", None, 200, 403),
        ("search groups", "GET", lambda: f"{G}/groups?$search=physics", None, 200, 200),
        ("create group", "POST", lambda: f"{G}/groups", lambda: {"displayName": f"grp-{uuid.uuid4().hex[:8]}"},
         201, 403),
        ("get group", "GET", lambda: f"{G}/groups/{fresh_group(d)}", None, 200, 200),
        ("rename group", "PATCH", lambda: f"{G}/groups/{fresh_group(d)}",
         lambda: {"displayName": f"renamed-{uuid.uuid4().hex[:8]}"}, 204, 403),
        ("delete group", "DELETE", lambda: f"{G}/groups/{fresh_group(d)}", None, 204, 403),
        ("list members", "GET", lambda: f"{G}/groups/{fresh_group(d)}/members", None, 200, 403),
        ("add member", "POST", lambda: f"{G}/groups/{fresh_group(d)}/members/$ref",
         lambda: {"@odata.id": f"https://cloud.example.org/graph/v1.0/users/{fresh_user(d)}"}, 204, 403),
        ("remove member", "DELETE", lambda: (lambda uid: f"{G}/groups/{fresh_group(d, [username(uid)])}/members/"
                                                         f"{uid}/$ref")(fresh_user(d)), None, 204, 403),
        ("applications", "GET", lambda: f"{G}/applications", None, 200, 200),
        ("list role assignments", "GET", lambda: f"{G}/users/{fresh_user(d)}/appRoleAssignments", None, 200, 403),
        ("assign role", "POST", lambda: (lambda uid: (f"{G}/users/{uid}/appRoleAssignments", uid))(fresh_user(d)),
         "assign", 201, 403),
        ("unassign role", "DELETE", lambda: (lambda uid: f"{G}/users/{uid}/appRoleAssignments/"
                                                         f"{assignment_of(d.get_by_id(uid)).id}")(fresh_user(d)),
         None, 204, 403),
        ("get application", "GET", lambda: f"{G}/applications/{app_id}", None, 200, 200),
        ("me", "GET", lambda: f"{G}/me", None, 200, 200),
    ], app_id, user_role


@pytest.mark.parametrize("role", ROLE_NAMES)
async def test_role_matrix(world, as_role, role):
    table, app_id, _user_role = cases(world)
    client = as_role(role)
    wrong = []
    for name, method, url_of, body_of, admin_status, other_status in table:
        url = url_of()
        body = None
        if body_of == "assign":
            url, uid = url
            body = {"principalId": uid, "resourceId": app_id, "appRoleId": ROLES["spaceadmin"].id}
        elif body_of is not None:
            body = body_of()
        r = await client.request(method, url, json=body)
        expected = admin_status if role == "admin" else other_status
        if r.status_code != expected:
            wrong.append(f"{name}: {r.status_code} (expected {expected}) {r.text[:120]}")
        if r.status_code == 403:
            assert r.json()["error"]["code"] in ("accessDenied", "notAllowed"), name
    assert not wrong, f"{role}: " + "; ".join(wrong)


async def test_what_others_see_of_users(as_role):
    admin, user = as_role("admin"), as_role("user")
    full = (await admin.get(f"{G}/users?$search=actor-user")).json()["value"]
    limited = (await user.get(f"{G}/users?$search=actor-user")).json()["value"]
    assert {u["onPremisesSamAccountName"] for u in full} >= {"actor-user", "actor-user-light"}
    assert all(set(u) == {"id", "displayName", "userType"} for u in limited)
    short = await user.get(f"{G}/users?$search=ac")
    assert short.status_code == 403 and short.json()["error"]["message"] == "search term too short"
    assert (await user.get(f'{G}/users?$search="ac"')).status_code == 403  # quotes do not count
    forbidden = await user.get(f"{G}/users?$search=actor&$expand=memberOf")
    assert forbidden.status_code == 403


async def test_user_validation_and_errors(world, as_role):
    admin = as_role("admin")
    missing = await admin.post(f"{G}/users", json={"onPremisesSamAccountName": "x1"})
    body = missing.json()
    assert missing.status_code == 400 and body["error"]["code"] == "invalidRequest"
    assert body["error"]["message"] == "missing required Attribute: 'displayName'"
    assert set(body["error"]["innererror"]) == {"date", "request-id"}
    assert (await admin.post(f"{G}/users", json={"displayName": "X", "onPremisesSamAccountName": "9bad"})
            ).status_code == 400
    assert (await admin.post(f"{G}/users", json={"displayName": "X", "onPremisesSamAccountName": "okname",
                                                 "mail": "not-a-mail"})).status_code == 400
    assert (await admin.post(f"{G}/users", json={"displayName": "X", "onPremisesSamAccountName": "okname",
                                                 "id": "mine"})).status_code == 400
    made = await admin.post(f"{G}/users", json={"displayName": "Grace Hopper", "onPremisesSamAccountName": "grace",
                                                "mail": "grace@example.org",
                                                "passwordProfile": {"password": "cobol-1959"}})
    assert made.status_code == 201 and made.json()["onPremisesSamAccountName"] == "grace"
    again = await admin.post(f"{G}/users", json={"displayName": "G", "onPremisesSamAccountName": "grace"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "nameAlreadyExists"
    me = world[3]["admin"][0]
    myself = await admin.delete(f"{G}/users/{me}")
    assert myself.status_code == 403 and myself.json()["error"]["code"] == "notAllowed"
    assert (await admin.get(f"{G}/users/nobody-at-all")).status_code == 404
    # the new user is a `user`, and can use the password given
    grace = world[1].authenticate("grace", "cobol-1959")
    assert grace is not None and grace.role == "user"


async def test_groups_members_and_filters(world, as_role):
    admin = as_role("admin")
    group = (await admin.post(f"{G}/groups", json={"displayName": "sailing"})).json()
    assert (await admin.post(f"{G}/groups", json={"displayName": "sailing"})).status_code == 409
    member = world[3]["user"][0]
    ref = {"@odata.id": f"https://cloud.example.org/graph/v1.0/users/{member}"}
    assert (await admin.post(f"{G}/groups/{group['id']}/members/$ref", json=ref)).status_code == 204
    assert (await admin.post(f"{G}/groups/{group['id']}/members/$ref",
                             json={"@odata.id": "https://x/graph/v1.0/groups/abc"})).status_code == 400
    members = (await admin.get(f"{G}/groups/{group['id']}/members")).json()
    assert [m["id"] for m in members] == [member]  # a bare array, as oCIS answers
    filtered = (await admin.get(f"{G}/users", params={
        "$filter": f"memberOf/any(m:m/id eq '{group['id']}')"})).json()["value"]
    assert [u["id"] for u in filtered] == [member]
    admins = (await admin.get(f"{G}/users", params={
        "$filter": f"appRoleAssignments/any(m:m/appRoleId eq '{ROLES['admin'].id}')"})).json()["value"]
    assert all(u["onPremisesSamAccountName"] != "actor-user" for u in admins) and admins
    assert (await admin.get(f"{G}/users", params={"$filter": "mail eq 'x'"})).status_code == 501
    ordered = (await admin.get(f"{G}/users", params={"$orderby": "displayName desc", "$top": "3",
                                                      "$select": "displayName"})).json()["value"]
    names = [u["displayName"] for u in ordered]
    assert names == sorted(names, key=str.casefold, reverse=True) and len(names) == 3
    assert set(ordered[0]) == {"id", "displayName"}
    assert (await admin.get(f"{G}/users", params={"$orderby": "id"})).status_code == 400
    me = (await as_role("user").get(f"{G}/me?$expand=memberOf,appRoleAssignments")).json()
    assert [g["displayName"] for g in me["memberOf"]] == ["sailing"]
    assert me["appRoleAssignments"][0]["appRoleId"] == ROLES["user"].id
    assert (await admin.delete(f"{G}/groups/{group['id']}/members/{member}/$ref")).status_code == 204
    assert (await admin.delete(f"{G}/groups/{group['id']}/members/{member}/$ref")).status_code == 404


async def test_role_assignment_changes_permissions(world, as_role):
    _s, directory, _app, _actors = world
    admin = as_role("admin")
    app_id = application_id(world[0])
    target = fresh_user(directory)
    made = await admin.post(f"{G}/users/{target}/appRoleAssignments", json={
        "principalId": target, "resourceId": app_id, "appRoleId": ROLES["admin"].id})
    assert made.status_code == 201 and made.json()["appRoleId"] == ROLES["admin"].id
    assert directory.get_by_id(target).role == "admin"
    listed = (await admin.get(f"{G}/users/{target}/appRoleAssignments")).json()["value"]
    assert [a["appRoleId"] for a in listed] == [ROLES["admin"].id]  # one role each: replaced, not added
    wrong_app = await admin.post(f"{G}/users/{target}/appRoleAssignments", json={
        "principalId": target, "resourceId": "other", "appRoleId": ROLES["user"].id})
    assert wrong_app.status_code == 400
    own = world[3]["admin"][0]
    mine = await admin.post(f"{G}/users/{own}/appRoleAssignments", json={
        "principalId": own, "resourceId": app_id, "appRoleId": ROLES["user"].id})
    assert mine.status_code == 403 and mine.json()["error"]["code"] == "notAllowed"
    application = (await admin.get(f"{G}/applications/{app_id}")).json()
    assert {r["displayName"] for r in application["appRoles"]} == {"Admin", "Space Admin", "User", "User Light"}


async def test_change_own_password(world, as_role):
    _s, directory, _app, _actors = world
    user_id = fresh_user(directory)
    name = directory.get_by_id(user_id).username
    token = build_app_tokens(world[0]).create(user_id, 3600, "pw")[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world[2]), base_url="http://testserver",
                                 auth=(name, token)) as me:
        wrong = await me.post(f"{G}/me/changePassword", json={"currentPassword": "nope", "newPassword": "n3w-pw"})
        assert wrong.status_code == 400 and wrong.json()["error"]["message"] == "wrong current password"
        same = await me.post(f"{G}/me/changePassword", json={"currentPassword": "a-password",
                                                              "newPassword": "a-password"})
        assert same.status_code == 400
        done = await me.post(f"{G}/me/changePassword", json={"currentPassword": "a-password",
                                                              "newPassword": "n3w-password"})
        assert done.status_code == 204
        assert (await me.patch(f"{G}/me", json={"displayName": "x"})).status_code == 400
    assert directory.authenticate(name, "n3w-password") is not None


async def test_user_light_has_no_personal_space(as_role):
    guest = as_role("user-light")
    r = await guest.request("PROPFIND", "/remote.php/dav/files/actor-user-light/", headers={"Depth": "0"})
    assert r.status_code == 404
    assert (await guest.put("/remote.php/dav/files/actor-user-light/x.txt", content=b"x")).status_code in (404, 409)
    user = as_role("user")
    ok = await user.request("PROPFIND", "/remote.php/dav/files/actor-user/", headers={"Depth": "0"})
    assert ok.status_code == 207


SHAREES = "/ocs/v2.php/apps/files_sharing/api/v1/sharees"


async def test_sharees_search_users_and_groups(as_role):
    c = as_role("user")
    r = await c.get(SHAREES, params={"search": "actor-", "format": "json"})
    assert r.status_code == 200
    data = r.json()["ocs"]["data"]
    assert data["exact"] == {"users": [], "groups": [], "remotes": []} and data["remotes"] == []
    names = {u["value"]["shareWith"] for u in data["users"]}
    assert {"actor-admin", "actor-user", "actor-spaceadmin"} <= names
    entry = next(u for u in data["users"] if u["value"]["shareWith"] == "actor-admin")
    assert entry == {"label": "Actor admin", "value": {"shareType": 0, "shareWith": "actor-admin",
                                                       "shareWithAdditionalInfo": "admin@example.org",
                                                       "userType": 0}}
    exact = (await c.get(SHAREES, params={"search": "actor-admin", "format": "json"})).json()["ocs"]["data"]
    assert [u["value"]["shareWith"] for u in exact["exact"]["users"]] == ["actor-admin"]
    assert all(u["value"]["shareWith"] != "actor-admin" for u in exact["users"])
    groups = (await c.get(SHAREES, params={"search": "physics", "format": "json"})).json()["ocs"]["data"]
    assert groups["groups"] == [{"label": "physics-lovers", "value": {"shareType": 1, "shareWith": "physics-lovers",
                                                                       "shareWithAdditionalInfo": ""}}]
    missing = await c.get(SHAREES, params={"format": "json"})
    assert missing.status_code == 400 and missing.json()["ocs"]["meta"]["statuscode"] == 400
    v1 = await c.get(SHAREES.replace("v2.php", "v1.php"), params={"format": "json"})
    assert v1.status_code == 200 and v1.json()["ocs"]["meta"]["statuscode"] == 400
    short = await c.get(SHAREES, params={"search": "ac", "format": "json"})
    assert short.status_code == 403
