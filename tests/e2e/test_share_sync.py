"""owncloudcmd syncs folders shared with its user, under Shares/: a read-write share carries the
recipient's edits to the owner; in a read-only share local edits are refused and the server's
version restored (the client reads that from oc:permissions, as against oCIS)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import owncloudcmd

pytestmark = pytest.mark.e2e
OCS = "/ocs/v1.php/apps/files_sharing/api/v1/shares"


def sync(server: ServerProcess, folder: str, local: Path, work: Path) -> str:
    proc = owncloudcmd("marie", DEMO["marie"], local, f"{server.base_url}/remote.php/webdav/{folder}", work)
    return proc.stdout + proc.stderr


@pytest.mark.timeout(600)
def test_owncloudcmd_syncs_shares(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    server = ServerProcess(tmp_path / "server")
    server.init()
    server.start()
    try:
        with server.client("einstein") as owner, server.client("marie") as marie:
            home = server.dav("einstein")
            for folder in ("Team", "Team/docs", "Readonly"):
                assert owner.request("MKCOL", f"{home}/{folder}").status_code == 201
            assert owner.put(f"{home}/Team/docs/plan.txt", content=b"the plan").status_code == 201
            assert owner.put(f"{home}/Readonly/rules.txt", content=b"the rules").status_code == 201
            for path, perms in (("/Team", "15"), ("/Readonly", "1")):
                made = owner.post(server.base_url + OCS, data={"path": path, "shareType": "0", "shareWith": "marie",
                                             "permissions": perms})
                assert "<statuscode>100</statuscode>" in made.text, made.text

            team, work = tmp_path / "team", tmp_path / "work-team"
            team.mkdir()
            work.mkdir()
            log = sync(server, "Shares/Team", team, work)
            assert (team / "docs" / "plan.txt").read_bytes() == b"the plan", log[-3000:]
            (team / "docs" / "plan.txt").write_bytes(b"the plan, edited by marie")
            (team / "new.txt").write_bytes(b"added by marie")
            log = sync(server, "Shares/Team", team, work)
            assert owner.get(f"{home}/Team/docs/plan.txt").content == b"the plan, edited by marie", log[-3000:]
            assert owner.get(f"{home}/Team/new.txt").content == b"added by marie"

            rules, work_ro = tmp_path / "rules", tmp_path / "work-ro"
            rules.mkdir()
            work_ro.mkdir()
            sync(server, "Shares/Readonly", rules, work_ro)
            assert (rules / "rules.txt").read_bytes() == b"the rules"
            time.sleep(1.1)  # a later mtime, so the client sees a local change
            (rules / "rules.txt").write_bytes(b"changed locally")
            (rules / "sneaky.txt").write_bytes(b"not allowed")
            log = sync(server, "Shares/Readonly", rules, work_ro)
            assert owner.get(f"{home}/Readonly/rules.txt").content == b"the rules", log[-3000:]
            assert owner.get(f"{home}/Readonly/sneaky.txt").status_code == 404
            restored = [p for p in rules.iterdir() if p.name.startswith("rules")]
            assert any(p.read_bytes() == b"the rules" for p in restored), log[-3000:]
            assert marie.get(f"{server.dav('marie')}/Shares/Readonly/rules.txt").content == b"the rules"
    finally:
        server.stop()
