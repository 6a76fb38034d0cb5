"""owncloudcmd against trash and versions: a file deleted on the server disappears from the client
and comes back after a restore from the trash bin; a version restored on the server reaches the
client on the next sync."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import owncloudcmd

pytestmark = pytest.mark.e2e
DAV = "/remote.php/dav"


@pytest.mark.timeout(600)
def test_owncloudcmd_sees_trash_and_version_restores(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    server = ServerProcess(tmp_path / "server")
    server.init()
    server.start()
    local, work = tmp_path / "local", tmp_path / "work"
    local.mkdir()
    work.mkdir()

    def sync() -> str:
        proc = owncloudcmd("einstein", DEMO["einstein"], local, f"{server.base_url}/remote.php/webdav/Sync", work)
        return proc.stdout + proc.stderr

    try:
        with server.client("einstein", base_url=server.base_url) as c:
            files = f"{DAV}/files/einstein"
            assert c.request("MKCOL", f"{files}/Sync").status_code == 201
            assert c.put(f"{files}/Sync/keep.txt", content=b"keep me").status_code == 201
            assert c.put(f"{files}/Sync/notes.txt", content=b"version one").status_code == 201
            log = sync()
            assert (local / "keep.txt").read_bytes() == b"keep me", log[-3000:]

            # deleted on the server: gone locally; restored from the trash: back locally
            assert c.delete(f"{files}/Sync/keep.txt").status_code == 204
            log = sync()
            assert not (local / "keep.txt").exists(), log[-3000:]
            listing = c.request("PROPFIND", f"{DAV}/trash-bin/einstein/", headers={"Depth": "1"}).text
            key = re.search(r"trash-bin/einstein/([^<]+)</d:href>", listing).group(1)
            r = c.request("MOVE", f"{DAV}/trash-bin/einstein/{key}",
                          headers={"Destination": f"{server.base_url}{files}/Sync/keep.txt"})
            assert r.status_code == 201, r.text
            log = sync()
            assert (local / "keep.txt").read_bytes() == b"keep me", log[-3000:]

            # a new version on the server, then the old one restored: the client follows both
            assert c.put(f"{files}/Sync/notes.txt", content=b"version two").status_code == 204
            log = sync()
            assert (local / "notes.txt").read_bytes() == b"version two", log[-3000:]
            found = c.request("PROPFIND", f"{files}/Sync/notes.txt", headers={"Depth": "0"}).text
            fid = re.search(r"<oc:fileid>([^<]+)<", found).group(1)
            versions = c.request("PROPFIND", f"{DAV}/meta/{fid}/v", headers={"Depth": "1"}).text
            href = re.findall(r"<d:href>([^<]+/v/[^<]+)</d:href>", versions)[0]
            r = c.request("COPY", href, headers={"Destination": f"{server.base_url}{files}/Sync/notes.txt"})
            assert r.status_code == 204, r.text
            log = sync()
            assert (local / "notes.txt").read_bytes() == b"version one", log[-3000:]
    finally:
        server.stop()
