"""A change holds for the very next request, whichever server process answers it. Two HTTP workers
each cache space records and verified passwords, so a cache that lags would let an upload past a
quota just lowered, keep a removed member inside a space, or let an old password or a deleted user
in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess, running_server

pytestmark = pytest.mark.e2e

ROUNDS = 12
# a connection stays with one worker: a new one for every request lets either worker answer
EVERY_REQUEST_ANEW = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("changes"), workers=2) as proc:
        yield proc


def personal_drive(client: httpx.Client, base: str) -> str:
    drives = client.get(f"{base}/graph/v1.0/me/drives").json()["value"]
    return next(d["id"] for d in drives if d["driveType"] == "personal")


def test_a_quota_change_holds_for_the_next_request_on_every_worker(two_workers: ServerProcess):
    base = two_workers.base_url
    body = os.urandom(50_000)
    with two_workers.client("admin", limits=EVERY_REQUEST_ANEW) as admin, \
            two_workers.client("marie", limits=EVERY_REQUEST_ANEW) as marie:
        drive = personal_drive(marie, base)
        for i in range(ROUNDS):
            # both workers read the record (and cache it) before each change
            for _ in range(4):
                assert marie.get(f"{base}/graph/v1.0/drives/{drive}").status_code == 200
            quota = 10_000 if i % 2 == 0 else 0
            res = admin.patch(f"{base}/graph/v1.0/drives/{drive}", json={"quota": {"total": quota}})
            assert res.status_code == 200, res.text
            put = marie.put(f"{two_workers.dav('marie')}/round-{i}.bin", content=body)
            assert put.status_code == (507 if quota else 201), (i, put.status_code, put.text)
            if put.status_code == 201:
                assert marie.delete(f"{two_workers.dav('marie')}/round-{i}.bin").status_code == 204


def test_a_removed_member_is_out_at_once(two_workers: ServerProcess):
    base = two_workers.base_url
    with two_workers.client("admin", limits=EVERY_REQUEST_ANEW) as admin, \
            two_workers.client("richard", limits=EVERY_REQUEST_ANEW) as richard:
        created = admin.post(f"{base}/graph/v1.0/drives", json={"name": "Records"})
        assert created.status_code == 201, created.text
        drive = created.json()["id"]
        richard_id = richard.get(f"{base}/graph/v1.0/me").json()["id"]
        url = f"{base}/dav/spaces/{drive}"
        for _ in range(ROUNDS // 2):
            invite = admin.post(f"{base}/graph/v1beta1/drives/{drive}/root/invite", json={
                "recipients": [{"objectId": richard_id}], "roles": ["a8d5fe5e-96e3-418d-825b-534dbdf22b99"]})
            assert invite.status_code == 200, invite.text
            permission = invite.json()["value"][0]["id"]
            for _ in range(4):  # in every worker's cache
                assert richard.request("PROPFIND", url, headers={"Depth": "0"}).status_code == 207
            removed = admin.delete(f"{base}/graph/v1beta1/drives/{drive}/root/permissions/{permission}")
            assert removed.status_code == 204, removed.text
            for _ in range(4):
                assert richard.request("PROPFIND", url, headers={"Depth": "0"}).status_code == 404


def test_a_new_password_and_a_deleted_user_hold_at_once(two_workers: ServerProcess):
    base = two_workers.base_url
    with two_workers.client("admin", limits=EVERY_REQUEST_ANEW) as admin:
        created = admin.post(f"{base}/graph/v1.0/users", json={
            "onPremisesSamAccountName": "fleeting", "displayName": "Fleeting", "mail": "fleeting@example.org",
            "passwordProfile": {"password": "first-secret"}})
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
    old = httpx.Client(auth=("fleeting", "first-secret"), timeout=30, limits=EVERY_REQUEST_ANEW)
    new = httpx.Client(auth=("fleeting", "second-secret"), timeout=30, limits=EVERY_REQUEST_ANEW)
    with old, new:
        for _ in range(6):  # the password is verified, and cached, by both workers
            assert old.get(f"{base}/graph/v1.0/me").status_code == 200
        changed = old.post(f"{base}/graph/v1.0/me/changePassword",
                           json={"currentPassword": "first-secret", "newPassword": "second-secret"})
        assert changed.status_code == 204, changed.text
        for _ in range(6):
            assert old.get(f"{base}/graph/v1.0/me").status_code == 401
            assert new.get(f"{base}/graph/v1.0/me").status_code == 200
        with two_workers.client("admin") as admin:
            assert admin.delete(f"{base}/graph/v1.0/users/{user_id}").status_code == 204
        for _ in range(6):
            assert new.get(f"{base}/graph/v1.0/me").status_code == 401
