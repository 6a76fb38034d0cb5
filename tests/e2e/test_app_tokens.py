"""With password logins off (the default), an app token made by `infiniscale auth-app create` is what
rclone and the desktop sync engine log in with."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.e2e.clients_util import need_binary, run
from tests.e2e.davhelp import Dav, local_manifest
from tests.e2e.test_sync_clients import ENGINES, SyncClient

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def locked_down(tmp_path_factory: pytest.TempPathFactory):
    proc = ServerProcess(tmp_path_factory.mktemp("apptoken"), workers=2,
                         extra_env={"PROXY_ENABLE_BASIC_AUTH": "false"})
    proc.init()
    proc.start()
    made = proc.cli("auth-app", "create", "--user", "einstein", "--expiration", "2h", "--label", "tests")
    token = re.search(r"token: (\S+)", made.stdout)
    assert token, made.stdout
    yield proc, token.group(1)
    proc.stop()


def test_password_refused_token_accepted(locked_down):
    proc, token = locked_down
    with httpx.Client(timeout=30) as http:
        refused = http.request("PROPFIND", proc.dav(), auth=("einstein", "relativity"), headers={"Depth": "0"})
        assert refused.status_code == 401
        accepted = http.request("PROPFIND", proc.dav(), auth=("einstein", token), headers={"Depth": "0"})
        assert accepted.status_code == 207


def test_rclone_with_an_app_token(locked_down, tmp_path: Path):
    proc, token = locked_down
    binary = need_binary("rclone")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env.update(HOME=str(tmp_path), RCLONE_CONFIG=str(tmp_path / "rclone.conf"))
    (tmp_path / "rclone.conf").write_text("")
    obscured = run([binary, "obscure", token], timeout=30, env=env)
    env.update(RCLONE_CONFIG_OC_TYPE="webdav", RCLONE_CONFIG_OC_URL=proc.dav(), RCLONE_CONFIG_OC_VENDOR="owncloud",
               RCLONE_CONFIG_OC_USER="einstein", RCLONE_CONFIG_OC_PASS=obscured.stdout.strip())
    local = tmp_path / "data"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"alpha\n")
    (local / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    copied = run([binary, "copy", str(local), "oc:rclone-token"], timeout=120, env=env)
    assert copied.returncode == 0, copied.stderr
    checked = run([binary, "check", str(local), "oc:rclone-token"], timeout=120, env=env)
    assert checked.returncode == 0, checked.stderr  # by SHA1 from oc:checksums
    with httpx.Client(auth=("einstein", token), timeout=30) as http:
        got = http.get(f"{proc.dav()}/rclone-token/sub/b.bin")
        assert hashlib.sha1(got.content).hexdigest() == hashlib.sha1((local / "sub" / "b.bin").read_bytes()).hexdigest()


@pytest.mark.timeout(600)
def test_owncloudcmd_with_an_app_token(locked_down, tmp_path: Path):
    proc, token = locked_down
    local = tmp_path / "local"
    (local / "docs").mkdir(parents=True)
    (local / "docs" / "note ü.txt").write_bytes(b"synced with an app token\n")
    (local / "big.bin").write_bytes(os.urandom(12_000_000))  # more than one TUS chunk
    with httpx.Client(auth=("einstein", token), timeout=60) as http:
        dav = Dav(http, proc.dav())
        assert dav.mkcol("token-sync") == 201
        client = SyncClient(ENGINES[0], proc, "token-sync", tmp_path / "work", password=token)
        client.sync(local)
        remote = {k: v for k, v in dav.manifest("token-sync").items() if v["type"] == "file"}
    mine = {k: v for k, v in local_manifest(local).items() if v["type"] == "file"}
    assert {k: v["sha1"] for k, v in remote.items()} == {k: v["sha1"] for k, v in mine.items()}
