"""`infiniscale storage scrub` against a server's data: a flipped byte and a deleted blob are
reported with their paths (and nothing else is), an orphan blob too, which it can remove; a
download of the flipped file fails instead of handing out wrong bytes; an interrupted run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e
FILES = "/remote.php/dav/files/einstein"


def blob_of(server: ServerProcess, content: bytes) -> Path:
    spaces = server.root / "data" / "storage" / "users" / "spaces"
    (found,) = [p for p in spaces.rglob("*") if p.is_file() and "blobs" in p.parts and p.read_bytes() == content]
    return found


def test_scrub_finds_exactly_the_damaged_blobs(tmp_path: Path):
    server = ServerProcess(tmp_path)
    server.init()
    server.start()
    try:
        with server.client(base_url=server.base_url) as c:
            c.request("MKCOL", f"{FILES}/docs")
            contents = {f"docs/f{i}.txt": f"content number {i} ".encode() * (i + 1) for i in range(6)}
            big = bytes(range(256)) * 8192  # 2 MiB: a download of several chunks
            contents["docs/big.bin"] = big
            for path, data in contents.items():
                assert c.put(f"{FILES}/{path}", content=data).status_code == 201
            c.put(f"{FILES}/docs/f0.txt", content=b"the second content")  # f0's first content is a version
            flipped = blob_of(server, contents["docs/f2.txt"])
            raw = bytearray(flipped.read_bytes())
            raw[3] ^= 0xFF
            flipped.write_bytes(bytes(raw))
            blob_of(server, contents["docs/f4.txt"]).unlink()
            big_blob = blob_of(server, big)
            raw = bytearray(big_blob.read_bytes())
            raw[-1] ^= 0x01
            big_blob.write_bytes(bytes(raw))
            orphan = flipped.parent.parent / "00" / "00orphan-0000-0000-0000-000000000000"
            orphan.parent.mkdir(exist_ok=True)
            orphan.write_bytes(b"nobody's")

            damaged = flipped.read_bytes()
            r = c.get(f"{FILES}/docs/f2.txt")
            assert r.status_code >= 500 and damaged not in r.content  # one chunk: an error, not the bytes
            # several chunks: the download is cut off before its end
            with pytest.raises(httpx.HTTPError), c.stream("GET", f"{FILES}/docs/big.bin") as response:
                b"".join(response.iter_bytes())
            assert c.get(f"{FILES}/docs/f1.txt").content == contents["docs/f1.txt"]  # intact files still fine
    finally:
        server.stop()

    result = server.cli("storage", "scrub", check=False)
    out = result.stdout
    assert result.returncode == 1, out
    assert "corrupt 2, missing 1, orphans 1" in out, out
    corrupt = [line for line in out.splitlines() if line.startswith("corrupt (")]
    assert sorted(line.split(" space ")[1].split()[1] for line in corrupt) == ["/docs/big.bin", "/docs/f2.txt"]
    assert any(line.startswith("missing: space") and "/docs/f4.txt" in line for line in out.splitlines())
    assert "scrubbing [" in result.stderr

    result = server.cli("storage", "scrub", "--remove-orphans", check=False)
    assert "orphans 1 (1 removed)" in result.stdout
    assert not orphan.exists()
    assert "orphans 0" in server.cli("storage", "scrub", check=False).stdout


def test_an_interrupted_scrub_resumes_where_it_stopped(tmp_path: Path):
    server = ServerProcess(tmp_path)
    server.init()
    server.start()
    try:
        for user in ("einstein", "marie"):
            with server.client(user, base_url=server.base_url) as c:
                assert c.put(f"/remote.php/dav/files/{user}/a.txt", content=b"a").status_code == 201
    finally:
        server.stop()
    spaces = server.cli("storage", "scrub").stdout
    total = int(spaces.split("spaces ")[1].split()[0])
    assert total >= 2
    storage_root = tmp_path / "data" / "storage" / "users"
    mount_states = list(storage_root.glob("scrub-*.json"))
    assert mount_states == []  # a finished run leaves no state
    # as if a run had stopped after the first space
    first = sorted(p.parent.name + p.name for p in (storage_root / "spaces").glob("*/*"))[0]
    config = (tmp_path / "config" / "infiniscale.yaml").read_text()
    mount_id = next(line.split(":", 1)[1].strip().strip('"') for line in config.splitlines()
                    if line.startswith("storage_mount_id"))
    (storage_root / f"scrub-{mount_id}.json").write_text(json.dumps({"done": [first]}))
    out = server.cli("storage", "scrub").stdout
    assert f"spaces {total} (1 done before)" in out, out
    assert "spaces" in server.cli("storage", "scrub", "--restart").stdout
