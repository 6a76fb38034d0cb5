"""owncloudcmd syncs a project space, addressed by its WebDAV URL (`--davpath dav/spaces/<drive id>`):
the mixed tree goes up, a change made on the server comes down, and a fresh folder downloads
everything. owncloudcmd 2.11 sends its TUS uploads to the personal space whatever `--davpath` says,
so the run sets OWNCLOUD_NO_TUS=1 (PUT and chunked uploads honour the path); the test checks that
nothing lands in the personal space."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import owncloudcmd
from tests.e2e.davhelp import Dav, local_manifest, tree_diff
from tests.e2e.test_sync_clients import make_tree

pytestmark = pytest.mark.e2e
EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"


def sync(server: ServerProcess, drive_id: str, local: Path, work: Path) -> None:
    proc = owncloudcmd("einstein", DEMO["einstein"], local, server.base_url, work,
                       args=["--davpath", f"dav/spaces/{drive_id}"], env={"OWNCLOUD_NO_TUS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.timeout(600)
def test_owncloudcmd_syncs_a_project_space(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    server = ServerProcess(tmp_path / "server")
    server.init()
    server.start()
    try:
        with httpx.Client(auth=("admin", "admin"), timeout=60) as admin, server.client() as http:
            drive = admin.post(f"{server.base_url}/graph/v1.0/drives", json={"name": "Sync Team"}).json()
            users = admin.get(f"{server.base_url}/graph/v1.0/users", params={"$search": "einstein"}).json()
            einstein = next(u["id"] for u in users["value"] if u["onPremisesSamAccountName"] == "einstein")
            invited = admin.post(f"{server.base_url}/graph/v1beta1/drives/{drive['id']}/root/invite",
                                 json={"recipients": [{"objectId": einstein}], "roles": [EDITOR]})
            assert invited.status_code == 200, invited.text
            space = Dav(http, f"{server.base_url}/dav/spaces/{drive['id']}")
            personal = Dav(http, server.dav())
            personal_before = personal.manifest("")

            up = tmp_path / "up"
            up.mkdir()
            make_tree(up)
            work = tmp_path / "work"
            work.mkdir()
            sync(server, drive["id"], up, work)
            diffs = tree_diff(local_manifest(up), space.manifest(""))
            assert not diffs, diffs[:20]

            assert space.put("from-the-web.txt", b"made in the browser") == 201
            sync(server, drive["id"], up, work)
            assert (up / "from-the-web.txt").read_bytes() == b"made in the browser"

            down = tmp_path / "down"
            down.mkdir()
            sync(server, drive["id"], down, tmp_path)
            diffs = tree_diff(local_manifest(down), space.manifest(""), names=("downloaded", "on server"))
            assert not diffs, diffs[:20]
            assert personal.manifest("").keys() == personal_before.keys()  # nothing went astray
    finally:
        server.stop()
