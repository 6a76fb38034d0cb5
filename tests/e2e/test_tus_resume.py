"""Resumable uploads against the real server process: a TUS upload survives a SIGKILL of the
server, and unfinished uploads are listed, cleaned by hand and expired by themselves."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e

MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}


def block(i: int) -> bytes:
    """Deterministic content, so the test can regenerate any part without keeping 200 MiB around."""
    return hashlib.sha256(i.to_bytes(8, "big")).digest() * (MIB // 32)


def content(start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of the upload, in pieces of at most 1 MiB."""
    pos = start
    while pos < end:
        index, inner = divmod(pos, MIB)
        piece = block(index)[inner:inner + (end - pos)]
        yield piece
        pos += len(piece)


def create(client: httpx.Client, proc: ServerProcess, name: str, length: int, sha1: str | None = None) -> str:
    meta = f"filename {base64.b64encode(name.encode()).decode()}"
    if sha1:
        meta += f",checksum {base64.b64encode(f'SHA1 {sha1}'.encode()).decode()}"
    r = client.post(f"{proc.dav()}/", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": meta})
    assert r.status_code == 201, r.text
    return r.headers["location"]


@pytest.mark.timeout(600)
def test_tus_upload_resumes_after_sigkill_at_half(tmp_path: Path):
    size = 200 * MIB
    whole = hashlib.sha1()
    for piece in content(0, size):
        whole.update(piece)
    sha1 = whole.hexdigest()
    proc = ServerProcess(tmp_path, workers=2)
    proc.init()
    proc.start()
    try:
        with proc.client() as client:
            location = create(client, proc, "big resumed.bin", size, sha1)
        sent = [0]
        killed = threading.Event()

        def body() -> Iterator[bytes]:
            for piece in content(0, size):
                if sent[0] >= size // 2 and not killed.is_set():
                    proc.kill()  # SIGKILL to the whole server process group, mid-request
                    killed.set()
                yield piece
                sent[0] += len(piece)

        with pytest.raises(httpx.HTTPError), proc.client() as client:
            client.patch(location, headers={**TUS, **STREAM, "Upload-Offset": "0"}, content=body())
        assert killed.is_set()
        proc.start()
        with proc.client() as client:
            head = client.head(location, headers=TUS)
            assert head.status_code == 200
            offset = int(head.headers["upload-offset"])
            assert 0 < offset <= size // 2 + 4 * MIB, offset  # what reached the disk before the kill
            done = client.patch(location, headers={**TUS, **STREAM, "Upload-Offset": str(offset)},
                                content=content(offset, size))
            assert done.status_code == 204, done.text
            assert done.headers["upload-offset"] == str(size)
            assert done.headers.get("etag") and done.headers.get("oc-fileid")
            assert done.headers["oc-checksum"] == f"SHA1:{sha1}"
            got = hashlib.sha1()
            with client.stream("GET", f"{proc.dav()}/big resumed.bin") as r:
                assert r.status_code == 200
                for piece in r.iter_bytes():
                    got.update(piece)
            assert got.hexdigest() == sha1
    finally:
        proc.stop()
    check = proc.cli("storage", "check", check=False)
    assert check.returncode == 0, check.stdout


def test_unfinished_uploads_are_listed_cleaned_and_expire(tmp_path: Path):
    proc = ServerProcess(tmp_path, extra_env={"STORAGE_USERS_UPLOAD_EXPIRATION": "3"})
    proc.init()
    proc.start()
    try:
        with proc.client() as client:
            location = create(client, proc, "kept.bin", 10)
            listed = json.loads(proc.cli("storage-users", "uploads", "list", "--json").stdout)
            assert [u["id"] for u in listed] == [location.rsplit("/", 1)[1]]
            assert listed[0]["offset"] == 0 and listed[0]["length"] == 10 and listed[0]["name"] == "kept.bin"
            assert "1 upload(s)" in proc.cli("storage-users", "uploads", "list").stdout
            # the server removes it by itself once it has expired
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and client.head(location, headers=TUS).status_code != 404:
                time.sleep(0.2)
            assert client.head(location, headers=TUS).status_code == 404
            while time.monotonic() < deadline and json.loads(
                    proc.cli("storage-users", "uploads", "list", "--json").stdout):
                time.sleep(0.5)
            assert json.loads(proc.cli("storage-users", "uploads", "list", "--json").stdout) == []
            # by hand: clean --all removes unfinished uploads that have not expired yet
            second = create(client, proc, "dropped.bin", 10)
            assert "removed 1 upload(s)" in proc.cli("storage-users", "uploads", "clean", "--all").stdout
            assert client.head(second, headers=TUS).status_code == 404
    finally:
        proc.stop()
