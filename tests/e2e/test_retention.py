"""Retention with the server as a process: trashed items go by themselves after the configured
age and free their space; versions beyond the configured count go oldest first; the CLI does the
same on demand, with a dry run that changes nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e

DAV = "/remote.php/dav"


def trash_names(c, user: str = "einstein") -> list[str]:
    r = c.request("PROPFIND", f"{DAV}/trash-bin/{user}/", headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    return re.findall(r"<oc:trashbin-original-filename>([^<]*)<", r.text)


def version_sizes(c, file_url: str) -> list[int]:
    r = c.request("PROPFIND", file_url, headers={"Depth": "0"})
    fid = re.search(r"<oc:fileid>([^<]*)<", r.text).group(1)
    r = c.request("PROPFIND", f"{DAV}/meta/{fid}/v", headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    return [int(n) for n in re.findall(r"<d:getcontentlength>(\d+)<", r.text)]


def drive_quota(c) -> dict:
    return c.get("/graph/v1.0/me/drive").json()["quota"]


def wait_until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_trash_and_versions_expire_by_themselves(tmp_path: Path):
    server = ServerProcess(tmp_path, extra_env={
        "STORAGE_USERS_PURGE_TRASH_BIN_PERSONAL_DELETE_BEFORE": "3s",
        "INFINISCALE_VERSIONS_PERSONAL_MAX_COUNT": "2",
        "INFINISCALE_RETENTION_INTERVAL": "1s",
    })
    server.init()
    server.start()
    try:
        with server.client(base_url=server.base_url) as c:
            files = f"{DAV}/files/einstein"
            assert c.put(f"{files}/big.bin", content=b"x" * 100_000).status_code == 201
            used = drive_quota(c)["used"]
            assert c.delete(f"{files}/big.bin").status_code == 204
            assert trash_names(c) == ["big.bin"]
            assert drive_quota(c)["used"] == used - 100_000
            blobs = tmp_path / "data" / "storage" / "users"
            stored = sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file() and "blobs" in p.parts)
            assert stored >= 100_000
            for size in (1, 2, 3, 4, 5):
                assert c.put(f"{files}/v.txt", content=b"v" * size).status_code in (201, 204)
            wait_until(lambda: version_sizes(c, f"{files}/v.txt") == [4, 3])  # the two newest stay
            wait_until(lambda: trash_names(c) == [])
            stored = sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file() and "blobs" in p.parts)
            assert stored < 100_000  # the deleted file's content is gone from disk
            assert c.get(f"{files}/v.txt").content == b"vvvvv"
    finally:
        server.stop()
    assert "storage is consistent" in server.cli("storage", "check").stdout


def test_cli_purges_on_demand_with_a_dry_run(tmp_path: Path):
    server = ServerProcess(tmp_path)
    server.init()
    server.start()
    try:
        with server.client(base_url=server.base_url) as c:
            files = f"{DAV}/files/einstein"
            for name in ("a.txt", "b.txt"):
                c.put(f"{files}/{name}", content=b"abc")
                c.delete(f"{files}/{name}")
            for size in (1, 2, 3, 4):
                c.put(f"{files}/v.txt", content=b"v" * size)
            dry = server.cli("trash", "purge-expired", "--older-than", "0s", "--dry-run")
            assert "would purge 2 trash items (6 bytes)" in dry.stdout
            assert "spaces" in dry.stderr  # the progress bar
            assert sorted(trash_names(c)) == ["a.txt", "b.txt"]
            server.cli("trash", "purge-expired", "--older-than", "0s")
            assert trash_names(c) == []
            dry = server.cli("revisions", "purge", "--keep", "1", "--dry-run")
            assert "would purge 0 trash items (0 bytes) and 2 versions (3 bytes)" in dry.stdout
            assert version_sizes(c, f"{files}/v.txt") == [3, 2, 1]
            server.cli("revisions", "purge", "--keep", "1")
            assert version_sizes(c, f"{files}/v.txt") == [3]
    finally:
        server.stop()
