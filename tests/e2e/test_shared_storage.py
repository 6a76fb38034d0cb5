"""Two server processes on one data directory, as two machines on one NFS export would run: writes
through either are seen at once through the other, concurrent changes from both keep the tree whole,
and `storage check` finds it consistent afterwards."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.davhelp import Dav

pytestmark = pytest.mark.e2e
THREADS = 4
OPS = 60


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(tmp_path, workers=2)
    first.init()
    first.start()
    second = ServerProcess(tmp_path, workers=2)  # same data and config, another port
    second.start()
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


def _client() -> httpx.Client:
    return httpx.Client(auth=("einstein", DEMO["einstein"]), timeout=60)


def test_two_servers_share_one_data_directory(two_servers: tuple[ServerProcess, ServerProcess]) -> None:
    first, second = two_servers
    with _client() as http:
        a, b = Dav(http, first.dav()), Dav(http, second.dav())
        assert a.mkcol("shared") == 201
        # read-your-writes across processes, for data and for metadata
        assert a.put("shared/hello.txt", b"from the first") == 201
        assert b.get("shared/hello.txt").content == b"from the first"
        assert b.put("shared/hello.txt", b"overwritten by the second") == 204
        assert a.get("shared/hello.txt").content == b"overwritten by the second"
        assert a.etag("shared/hello.txt") == b.etag("shared/hello.txt")
        assert b.move("shared/hello.txt", "shared/renamed.txt") == 201
        assert a.get("shared/hello.txt").status_code == 404
        assert a.stat("shared/renamed.txt").fileid == b.stat("shared/renamed.txt").fileid

    errors: list[str] = []

    def worker(index: int) -> None:
        rng = random.Random(index)
        with _client() as http:
            servers = [Dav(http, first.dav()), Dav(http, second.dav())]
            folder = f"shared/t{index}"
            servers[0].mkcol(folder)
            for op in range(OPS):
                here, there = rng.sample(servers, 2)
                name = f"{folder}/f{rng.randrange(8)}.bin"
                kind = rng.choice(["put", "put", "move", "copy", "delete", "mkcol"])
                try:
                    if kind == "put":
                        data = rng.randbytes(rng.randrange(1, 200_000))
                        status = here.put(name, data)
                        seen = there.get(name)
                        if status in (201, 204) and seen.content != data:
                            errors.append(f"{name}: written through one server, read other bytes through the other")
                    elif kind == "move":
                        here.move(name, f"shared/t{rng.randrange(THREADS)}/m{index}-{op}.bin")
                    elif kind == "copy":
                        here.client.request("COPY", here.url(name),
                                            headers={"Destination": there.url(f"{folder}/c{op}.bin")})
                    elif kind == "delete":
                        here.delete(name)
                    else:
                        here.mkcol(f"{folder}/d{op}")
                except httpx.HTTPError as exc:
                    errors.append(f"{kind} {name}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors[:10]

    with _client() as http:
        a, b = Dav(http, first.dav()), Dav(http, second.dav())
        seen_a, seen_b = a.manifest(""), b.manifest("")
        assert sum(v["type"] == "file" for v in seen_a.values()) > 10, "the workload must have left files"
        assert {k: (v["type"], v.get("sha1"), v["fileid"], v["etag"]) for k, v in seen_a.items()} == \
               {k: (v["type"], v.get("sha1"), v["fileid"], v["etag"]) for k, v in seen_b.items()}
        for path, info in seen_a.items():
            if info["type"] == "file":
                assert info["entry"].sha1 == info["sha1"], f"{path}: content differs from its checksum"
        total = sum(v["size"] for v in seen_a.values() if v["type"] == "file")
        root = http.request("PROPFIND", first.dav(), headers={"Depth": "0"},
                            content='<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
                                    "<d:prop><oc:size/></d:prop></d:propfind>").text
        assert f"<oc:size>{total}</oc:size>" in root, "the tree size must add up to the files"
    second.stop()
    first.stop()
    check = first.cli("storage", "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_share_made_through_one_server_works_through_the_other(two_servers) -> None:
    first, second = two_servers
    ocs = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
    with _client() as owner, httpx.Client(auth=("marie", DEMO["marie"]), timeout=60) as marie:
        assert owner.request("MKCOL", f"{first.dav()}/across").status_code == 201
        assert owner.put(f"{first.dav()}/across/f.txt", content=b"one data directory").status_code == 201
        made = owner.post(first.base_url + ocs, data={"path": "/across", "shareType": "0", "shareWith": "marie",
                                                      "permissions": "15"}, params={"format": "json"})
        assert made.status_code == 200, made.text
        share_id = made.json()["ocs"]["data"]["id"]
        got = marie.get(f"{second.dav('marie')}/Shares/across/f.txt")
        assert got.status_code == 200 and got.content == b"one data directory"
        listed = marie.get(second.base_url + ocs, params={"shared_with_me": "true", "format": "json"})
        assert [s["id"] for s in listed.json()["ocs"]["data"]] == [share_id]
        assert owner.delete(f"{second.base_url}{ocs}/{share_id}").status_code == 200
        assert marie.get(f"{first.dav('marie')}/Shares/across/f.txt").status_code == 404
