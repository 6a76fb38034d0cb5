"""A 2 GiB folder downloads as one zip from the server process with flat memory (peak RSS growth
of the server at most 50 MiB), and the archive holds every file byte for byte."""

from __future__ import annotations

import hashlib
import re
import threading
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e
FILES = "/remote.php/dav/files/einstein"
BLOCK = 1 << 20


def pattern(seed: int, size: int):
    block = hashlib.sha256(str(seed).encode()).digest() * (BLOCK // 32)
    for _ in range(size // BLOCK):
        yield block


def group_rss_kib(pgid: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) != pgid:
                continue
            status = (entry / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        found = re.search(r"VmRSS:\s+(\d+)", status)
        total += int(found.group(1)) if found else 0
    return total


@pytest.mark.timeout(600)
def test_a_2_gib_folder_streams_as_zip_with_flat_memory(tmp_path: Path):
    server = ServerProcess(tmp_path, extra_env={"FRONTEND_ARCHIVER_MAX_SIZE": str(4 << 30)})
    server.init()
    server.start()
    sizes = {"one.bin": 1 << 30, "two.bin": 768 << 20, "three.bin": 256 << 20}  # 2 GiB together
    try:
        with server.client(base_url=server.base_url) as c:
            assert c.request("MKCOL", f"{FILES}/big").status_code == 201
            expected = {}
            for seed, (name, size) in enumerate(sizes.items()):
                r = c.put(f"{FILES}/big/{name}", content=pattern(seed, size), headers={"Content-Length": str(size)})
                assert r.status_code == 201, r.text
                digest = hashlib.sha1()
                for block in pattern(seed, size):
                    digest.update(block)
                expected[f"big/{name}"] = digest.hexdigest()
            r = c.request("PROPFIND", f"{FILES}/big", headers={"Depth": "0"})
            fid = re.search(r"<oc:fileid>([^<]+)<", r.text).group(1)

            assert server.proc is not None
            pgid = server.proc.pid
            baseline = group_rss_kib(pgid)
            peak = [baseline]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.05):
                    peak[0] = max(peak[0], group_rss_kib(pgid))

            sampler = threading.Thread(target=sample)
            sampler.start()
            target = tmp_path / "big.zip"
            try:
                with c.stream("GET", f"/archiver?id={fid}") as response, target.open("wb") as out:
                    assert response.status_code == 200
                    for chunk in response.iter_bytes(BLOCK):
                        out.write(chunk)
            finally:
                done.set()
                sampler.join()
            growth_mib = (peak[0] - baseline) / 1024
            print(f"\narchiver: 2 GiB zip, server RSS {baseline // 1024} MiB before, peak growth {growth_mib:.1f} MiB")
            assert growth_mib <= 50, growth_mib

        with zipfile.ZipFile(target) as archive:
            found = {}
            for name in archive.namelist():
                if name.endswith("/"):
                    continue
                digest = hashlib.sha1()
                with archive.open(name) as member:
                    while block := member.read(BLOCK):
                        digest.update(block)
                found[name] = digest.hexdigest()
        assert found == expected
    finally:
        server.stop()
