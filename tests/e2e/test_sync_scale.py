"""A large first sync with the ownCloud desktop engine: 5 000 files, 1 GiB in all, then a no-op sync
that must transfer nothing (counted on the server's access log, not taken from the client)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.e2e.davhelp import Dav, local_manifest
from tests.e2e.test_sync_clients import ENGINES, SyncClient

pytestmark = pytest.mark.e2e

FILES = 5_000
TOTAL = 1 << 30
FOLDERS = 50


def make_tree(root: Path, seed: int = 5000) -> int:
    """FILES files in FOLDERS folders, sizes spread around the mean, TOTAL bytes exactly."""
    rng = random.Random(seed)
    weights = [rng.uniform(0.05, 1.95) for _ in range(FILES)]
    scale = TOTAL / sum(weights)
    sizes = [int(w * scale) for w in weights]
    sizes[-1] += TOTAL - sum(sizes)
    block = rng.randbytes(1 << 20)
    for i, size in enumerate(sizes):
        folder = root / f"dir{i % FOLDERS:02d}"
        folder.mkdir(exist_ok=True)
        head = f"file {i}\n".encode()  # every file differs
        body = (block * (size // len(block) + 1))[: max(0, size - len(head))]
        (folder / f"f{i:05d}.bin").write_bytes((head + body)[:size])
    return sum(sizes)


def transfers(log: Path, since: int) -> Counter:
    """Uploads and downloads the server answered after byte `since` of its log."""
    counts: Counter = Counter()
    with log.open("rb") as fh:
        fh.seek(since)
        for line in fh:
            if b'"infiniscale.access"' not in line:
                continue
            entry = json.loads(line)
            method, path = entry.get("method"), entry.get("path", "")
            if method in ("PUT", "POST", "PATCH") or (method == "MOVE" and path.endswith("/.file")):
                counts["uploads"] += 1
            elif method == "GET" and "/remote.php/" in path:
                counts["downloads"] += 1
    return counts


@pytest.mark.timeout(1200)
def test_five_thousand_files_then_a_no_op_sync(tmp_path: Path) -> None:
    root = tmp_path / "server"
    root.mkdir()
    proc = ServerProcess(root, workers=2, extra_env={"OCIS_LOG_LEVEL": "info"})
    proc.init()
    proc.start()
    try:
        local = tmp_path / "local"
        local.mkdir()
        total = make_tree(local)
        with proc.client() as http:
            dav = Dav(http, proc.dav())
            assert dav.mkcol("scale") == 201
            client = SyncClient(ENGINES[0], proc, "scale", tmp_path / "work")
            client.sync(local)
            remote = dav.manifest("scale")
            files = {k: v for k, v in remote.items() if v["type"] == "file"}
            assert len(files) == FILES
            assert sum(v["size"] for v in files.values()) == total
            mine = local_manifest(local)
            wrong = [k for k, v in files.items() if mine[k]["sha1"] not in (v["sha1"], v["checksum_sha1"])
                     or v["sha1"] != v["checksum_sha1"]]
            assert not wrong, wrong[:5]  # content read back by GET, and oc:checksums, both match
            etag = dav.etag("scale")
            mark = proc.log_path.stat().st_size
            client.sync(local)
            moved = transfers(proc.log_path, mark)
            assert moved["uploads"] == 0 and moved["downloads"] == 0, moved
            assert dav.etag("scale") == etag
    finally:
        proc.stop()
