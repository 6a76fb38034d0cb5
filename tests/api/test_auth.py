"""Authentication on the wire: password logins off by default, app tokens, brute-force lockout."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from infiniscale.core import apptokens
from infiniscale.runtime import build_app, build_app_tokens, build_directory
from infiniscale.settings import resolve
from tests.api.conftest import DAV, MOUNT_ID

EINSTEIN = "4c510ada-c86b-4815-8820-42cdf82c3d51"


def make_settings(tmp_path, **env: str):
    return resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                        "OCIS_URL": "https://cloud.example.org", "STORAGE_USERS_MOUNT_ID": MOUNT_ID, **env})


@pytest.fixture
def secure(tmp_path):
    """The default: no password logins over Basic, app tokens on."""
    settings = make_settings(tmp_path, INFINISCALE_LOGIN_MAX_FAILURES="5")
    directory = build_directory(settings)
    directory.put_user(EINSTEIN, "einstein", "relativity", "Albert Einstein", "einstein@example.org")
    directory.put_user(str(uuid.uuid4()), "marie", "radioactivity", "Marie Curie", "marie@example.org")
    directory.put_user(str(uuid.uuid4()), "admin", "admin", "Admin", "admin@example.org", role="admin")
    return settings, build_app(settings)


def client(app, auth) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", auth=auth)


async def test_passwords_are_refused_when_basic_auth_is_off(secure):
    _settings, app = secure
    async with client(app, ("einstein", "relativity")) as c:
        r = await c.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic realm=")
        assert "Sabre\\DAV\\Exception\\NotAuthenticated" in r.text


async def test_app_token_lifecycle(secure):
    settings, app = secure
    token, _record = build_app_tokens(settings).create(EINSTEIN, 3600, "cli")
    async with client(app, ("einstein", token)) as c:
        assert (await c.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})).status_code == 207
        created = await c.post("/auth-app/tokens?expiry=72h&label=rclone")
        assert created.status_code == 200
        doc = created.json()
        assert len(doc["token"]) == 32 and doc["label"] == "rclone"
        assert doc["expiration_date"].endswith("Z") and doc["created_date"].endswith("Z")
        listed = (await c.get("/auth-app/tokens")).json()
        assert sorted(t["label"] for t in listed) == ["cli", "rclone"]
        assert all(t["token"] != doc["token"] and len(t["token"]) == 64 for t in listed)  # never the secret
        assert (await c.post("/auth-app/tokens?expiry=soon")).status_code == 400
        assert (await c.post("/auth-app/tokens")).status_code == 400
        assert (await c.post("/auth-app/tokens?expiry=1h&userName=marie")).status_code == 403
        assert (await c.delete("/auth-app/tokens")).status_code == 400
    async with client(app, ("einstein", doc["token"])) as second:
        r = await second.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})
        assert r.status_code == 207
        # deleting a token (here by the id a listing shows) ends it at once
        own_id = next(t["token"] for t in listed if t["label"] == "rclone")
        assert (await second.delete(f"/auth-app/tokens?token={own_id}")).status_code == 200
        assert (await second.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})).status_code == 401
    async with client(app, ("marie", token)) as wrong_user:  # a token belongs to its user only
        assert (await wrong_user.request("PROPFIND", "/remote.php/dav/files/marie/",
                                         headers={"Depth": "0"})).status_code == 401


async def test_an_expired_app_token_is_refused(secure, monkeypatch):
    settings, app = secure
    token, _record = build_app_tokens(settings).create(EINSTEIN, 3600, "an hour")
    async with client(app, ("einstein", token)) as c:
        assert (await c.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})).status_code == 207
        later = time.time() + 3601
        monkeypatch.setattr(apptokens.time, "time", lambda: later)
        assert (await c.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})).status_code == 401
        assert (await c.get("/auth-app/tokens")).status_code == 401


async def test_admins_create_tokens_for_others_only_when_allowed(tmp_path):
    settings = make_settings(tmp_path, AUTH_APP_ENABLE_IMPERSONATION="true", PROXY_ENABLE_BASIC_AUTH="true")
    directory = build_directory(settings)
    directory.put_user(EINSTEIN, "einstein", "relativity", "Albert Einstein", "einstein@example.org")
    directory.put_user(str(uuid.uuid4()), "admin", "admin", "Admin", "admin@example.org", role="admin")
    app = build_app(settings)
    async with client(app, ("einstein", "relativity")) as plain:
        assert (await plain.post("/auth-app/tokens?expiry=1h&userName=admin")).status_code == 403
    async with client(app, ("admin", "admin")) as admin:
        made = await admin.post("/auth-app/tokens?expiry=1h&userName=einstein")
        assert made.status_code == 200 and made.json()["label"] == "Generated via Impersonation API"
        assert (await admin.post("/auth-app/tokens?expiry=1h&userName=nobody")).status_code == 404
    async with client(app, ("einstein", made.json()["token"])) as c:
        assert (await c.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})).status_code == 207


async def test_repeated_failures_lock_one_account_only(tmp_path):
    settings = make_settings(tmp_path, PROXY_ENABLE_BASIC_AUTH="true", INFINISCALE_LOGIN_MAX_FAILURES="10")
    directory = build_directory(settings)
    directory.put_user(EINSTEIN, "einstein", "relativity", "Albert Einstein", "einstein@example.org")
    directory.put_user(str(uuid.uuid4()), "marie", "radioactivity", "Marie Curie", "marie@example.org")
    token, _record = build_app_tokens(settings).create(EINSTEIN, 3600, "sync")
    app = build_app(settings)
    for attempt in range(20):
        async with client(app, ("einstein", f"guess-{attempt}")) as attacker:
            r = await attacker.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})
            assert r.status_code == 401
    # locked: neither the right password nor a valid app token gets in now
    async with client(app, ("einstein", "relativity")) as owner:
        assert (await owner.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})).status_code == 401
    async with client(app, ("einstein", token)) as tool:
        assert (await tool.request("PROPFIND", f"{DAV}/", headers={"Depth": "0"})).status_code == 401
    # somebody else is not affected
    async with client(app, ("marie", "radioactivity")) as marie:
        r = await marie.request("PROPFIND", "/remote.php/dav/files/marie/", headers={"Depth": "0"})
        assert r.status_code == 207


async def test_ocs_users_for_oneself_and_for_admins(secure):
    settings, app = secure
    token, _record = build_app_tokens(settings).create(EINSTEIN, 3600, "ocs")
    async with client(app, ("einstein", token)) as c:
        me = (await c.get("/ocs/v2.php/cloud/users/einstein?format=json")).json()["ocs"]
        assert me["meta"]["statuscode"] == 200 and me["data"]["email"] == "einstein@example.org"
        other = await c.get("/ocs/v2.php/cloud/users/marie?format=json")
        assert other.status_code == 404  # not an admin: other accounts are not shown
        groups = await c.get("/ocs/v1.php/cloud/users/einstein/groups?format=json")
        assert groups.json()["ocs"]["data"] == {"groups": []}
    admin = build_directory(settings).get_by_name("admin")
    admin_token, _record = build_app_tokens(settings).create(admin.id, 3600, "ocs")
    async with client(app, ("admin", admin_token)) as c:
        marie = (await c.get("/ocs/v1.php/cloud/users/marie?format=json")).json()["ocs"]
        assert marie["meta"]["statuscode"] == 100 and marie["data"]["displayname"] == "Marie Curie"
