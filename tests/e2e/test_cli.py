"""The commands an admin types: init, server (TLS and plain), health, version, storage check."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import VENV_BIN, ServerProcess

pytestmark = pytest.mark.e2e


def test_init_generates_secrets_and_refuses_to_overwrite(tmp_path: Path):
    proc = ServerProcess(tmp_path)
    proc.env.pop("IDM_ADMIN_PASSWORD", None)
    out = proc.cli("init").stdout
    assert "generated admin password" in out
    password = out.split("password: ")[1].split()[0]
    assert len(password) >= 16
    config = (tmp_path / "config" / "infiniscale.yaml").read_text()
    for key in ("storage_mount_id", "admin_user_id", "jwt_secret", "transfer_secret"):
        assert key in config
    assert (tmp_path / "config" / "server.crt").exists() and (tmp_path / "config" / "server.key").exists()
    again = proc.cli("init", check=False)
    assert again.returncode != 0 and "--force-overwrite" in again.stderr
    assert (tmp_path / "config" / "infiniscale.yaml").read_text() == config
    forced = proc.cli("init", "--force-overwrite", "--admin-password", "s3cret-pass")
    assert "s3cret-pass" in forced.stdout
    assert (tmp_path / "config" / "infiniscale.yaml").read_text() != config


def test_version():
    out = subprocess.run([str(VENV_BIN / "infiniscale"), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("infiniscale ")


def test_help_shows_settings():
    out = subprocess.run([str(VENV_BIN / "infiniscale"), "server", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "PROXY_HTTP_ADDR" in out and "OCDAV_ALLOW_PROPFIND_DEPTH_INFINITY" in out


def test_a_wrong_setting_stops_startup_with_its_name(tmp_path: Path):
    proc = ServerProcess(tmp_path, extra_env={"PROXY_TLS": "perhaps"})
    proc.env["PROXY_TLS"] = "false"
    proc.init()
    proc.env["PROXY_TLS"] = "perhaps"
    result = proc.cli("server", check=False, timeout=30)
    assert result.returncode == 2
    assert "tls" in result.stderr and "PROXY_TLS" in result.stderr


def test_tls_server_health_and_admin_login(tmp_path: Path):
    proc = ServerProcess(tmp_path, tls=True)
    proc.init()
    proc.start()
    try:
        assert "healthy" in proc.cli("health").stdout
        r = httpx.request("PROPFIND", f"{proc.base_url}/remote.php/dav/files/admin/", auth=("admin", "admin"),
                          verify=False, headers={"Depth": "0"})
        assert r.status_code == 207
    finally:
        proc.stop()
    assert proc.cli("health", check=False).returncode == 1


def test_storage_check_on_a_used_tree(tmp_path: Path):
    proc = ServerProcess(tmp_path)
    proc.init()
    proc.start()
    try:
        with proc.client() as c:
            c.request("MKCOL", f"{proc.dav()}/a")
            c.put(f"{proc.dav()}/a/f.txt", content=b"x" * 1000)
            c.request("MOVE", f"{proc.dav()}/a", headers={"Destination": f"{proc.dav()}/b"})
            c.delete(f"{proc.dav()}/b/f.txt")
    finally:
        proc.stop()
    result = proc.cli("storage", "check", check=False)
    assert result.returncode == 0, result.stdout
    assert "storage is consistent" in result.stdout and "trashed" in result.stdout


def test_repair_runs_only_when_no_other_server_uses_the_storage(tmp_path: Path):
    first = ServerProcess(tmp_path)
    first.init()
    first.start()
    try:
        with first.client() as c:
            assert c.put(f"{first.dav()}/f.txt", content=b"x").status_code == 201
        spaces = tmp_path / "data" / "storage" / "users" / "spaces"
        garbage = next(spaces.glob("*/*/tmp"))
        leftover = garbage / "interrupted-upload"
        leftover.write_bytes(b"partial")  # what a crash would leave, reclaimed by repair
        space_dir = garbage.parent
        space_id = space_dir.parent.name + space_dir.name  # the personal space's root node has its id
        root_dir = space_dir / "nodes" / space_id[:2] / space_id
        temp_link = os.path.join(os.fsencode(root_dir), b"\xff.tmp-interrupted")  # a name that is not UTF-8
        os.symlink(b"no-such-node", temp_link)
        second = ServerProcess(tmp_path)  # same data directory, another port; `.running` says unclean
        second.start()
        try:
            assert leftover.exists(), "a second server must not repair storage another one is using"
        finally:
            second.stop()
    finally:
        first.kill()
    # alone now, after an unclean stop: the next start repairs
    third = ServerProcess(tmp_path)
    third.start()
    try:
        assert not leftover.exists() and not os.path.lexists(temp_link)
        with third.client() as c:
            assert c.get(f"{third.dav()}/f.txt").content == b"x"
    finally:
        third.stop()


def test_idm_resetpassword(tmp_path: Path):
    proc = ServerProcess(tmp_path)
    proc.init()
    changed = subprocess.run([str(VENV_BIN / "infiniscale"), "idm", "resetpassword"], env=proc.env,
                             input="a-new-secret\n", capture_output=True, text=True, timeout=60)
    assert changed.returncode == 0, changed.stderr
    assert proc.cli("idm", "resetpassword", "--user-name", "nobody", "--password", "longenough",
                    check=False).returncode == 1
    assert proc.cli("idm", "resetpassword", "--password", "short", check=False).returncode == 1
    proc.start()
    try:
        url = f"{proc.base_url}/ocs/v1.php/cloud/user?format=json"
        assert httpx.get(url, auth=("admin", "a-new-secret"), timeout=10).status_code == 200
        assert httpx.get(url, auth=("admin", "admin"), timeout=10).status_code == 401
    finally:
        proc.stop()


def test_spaces_commands_create_list_disable_restore_purge(tmp_path: Path):
    proc = ServerProcess(tmp_path)
    proc.init()
    drive_id = proc.cli("spaces", "create", "Team Alpha", "--description", "the team", "--quota", "5000",
                        "--manager", "einstein").stdout.strip()
    storage_id, _, space_id = drive_id.partition("$")
    assert storage_id and space_id
    listed = {row["id"]: row for row in json.loads(proc.cli("spaces", "list", "--json").stdout)}
    assert listed[drive_id] == {"id": drive_id, "type": "project", "name": "Team Alpha", "quota": 5000, "used": 0,
                                "disabled": False, "members": 1}
    refused = proc.cli("spaces", "purge", drive_id, check=False)
    assert refused.returncode == 1 and "disabled before" in refused.stderr
    assert "disabled space" in proc.cli("spaces", "disable", space_id).stdout
    proc.start()
    try:
        with proc.client("einstein") as http:  # the manager no longer sees a disabled space's content
            assert http.request("PROPFIND", f"{proc.base_url}/dav/spaces/{drive_id}",
                                headers={"Depth": "0"}).status_code == 404
        proc.cli("spaces", "restore", drive_id)  # the server sees it at once, no cache to wait for
        with proc.client("einstein") as http:
            assert http.request("PROPFIND", f"{proc.base_url}/dav/spaces/{drive_id}",
                                headers={"Depth": "0"}).status_code == 207
    finally:
        proc.stop()
    proc.cli("spaces", "disable", drive_id)
    proc.cli("spaces", "purge", drive_id)
    assert drive_id not in proc.cli("spaces", "list").stdout
    assert proc.cli("spaces", "list", "--type", "project").stdout == ""
