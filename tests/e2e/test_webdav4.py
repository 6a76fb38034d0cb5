"""webdav4 0.11 (httpx based) Client and its fsspec filesystem against the files endpoint."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from webdav4.client import Client, ResourceAlreadyExists, ResourceConflict
from webdav4.fsspec import WebdavFileSystem

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import sha1_bytes, tree

pytestmark = pytest.mark.e2e

AUTH = ("einstein", DEMO["einstein"])
UTF8_NAME = "Grüße · 日本語 🎉.txt"
UTF8_DATA = "Grüße · 日本語 🎉\n".encode()
BIG = os.urandom(5 * 1024 * 1024 + 321)


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    c = Client(server.dav(), auth=AUTH, timeout=60)
    yield c
    c.http.close()


@pytest.fixture
def base(folder: str, server: ServerProcess) -> str:
    """The per-test folder as a webdav4 path (relative to the client's base URL)."""
    return folder[len(server.dav()) + 1:]


def name_of(entry: dict) -> str:
    return entry["name"].rstrip("/").rsplit("/", 1)[-1]


def test_options_feature_detection(client: Client, base: str) -> None:
    features = client.detected_features
    assert {"1", "2"} <= features.dav_compliances
    assert features.supports_ranges is True
    assert {"1", "2"} <= client.options(base)


def test_mkdir(client: Client, base: str, server: ServerProcess) -> None:
    client.mkdir(f"{base}/sub ü")
    assert client.isdir(f"{base}/sub ü")
    with pytest.raises(ResourceAlreadyExists):  # MKCOL on an existing folder: 405
        client.mkdir(f"{base}/sub ü")
    with pytest.raises(ResourceConflict):  # MKCOL below a missing parent: 409
        client.mkdir(f"{base}/missing/child")
    with server.client() as http:
        state = tree(http, server.dav() + "/" + quote(base))
    assert {k: v["type"] for k, v in state.items()} == {"sub ü": "dir"}


def test_upload_inspect_download(client: Client, base: str, tmp_path: Path, server: ServerProcess) -> None:
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    # no "#" or "?" in names: webdav4 builds URLs with httpx copy_with(path=...), which rejects them
    files = {UTF8_NAME: UTF8_DATA, "a b+c&d;e=f,(g)'h.txt": b"abc\n", "empty.txt": b"", "big.bin": BIG}
    for name, data in files.items():
        src = tmp_path / "src"
        src.write_bytes(data)
        client.upload_file(src, f"{base}/{name}")
    client.mkdir(f"{base}/sub ü")

    # overwrite=False refuses an existing file; overwrite=True replaces it
    replacement = os.urandom(3 * 1024 * 1024)
    (tmp_path / "replacement").write_bytes(replacement)
    with pytest.raises(ResourceAlreadyExists):
        client.upload_file(tmp_path / "replacement", f"{base}/big.bin", overwrite=False)
    etag_before = client.etag(f"{base}/big.bin")
    client.upload_file(tmp_path / "replacement", f"{base}/big.bin", overwrite=True)
    files["big.bin"] = replacement
    assert client.etag(f"{base}/big.bin") != etag_before

    assert client.exists(f"{base}/big.bin") is True
    assert client.exists(f"{base}/nope.txt") is False
    assert client.isdir(f"{base}/sub ü") is True
    assert client.isfile(f"{base}/sub ü") is False
    assert client.isfile(f"{base}/{UTF8_NAME}") is True
    assert client.isdir(f"{base}/{UTF8_NAME}") is False

    entries = client.ls(base, detail=True)
    assert sorted(name_of(e) for e in entries) == sorted([*files, "sub ü"])
    by_name = {name_of(e): e for e in entries}
    assert by_name["sub ü"]["type"] == "directory"
    with server.client() as http:
        for name, data in files.items():
            entry = by_name[name]
            assert entry["type"] == "file", entry
            assert entry["content_length"] == len(data), entry
            assert entry["etag"], entry
            assert started <= entry["modified"] <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5), entry
            head = http.head(f"{server.dav()}/{quote(base)}/{quote(name)}")
            assert head.status_code == 200
            assert head.headers["etag"].strip('"') == entry["etag"].strip('"'), (name, head.headers)
            assert head.headers["oc-checksum"] == "SHA1:" + sha1_bytes(data), (name, head.headers)

    info = client.info(f"{base}/{UTF8_NAME}")
    assert info["type"] == "file"
    assert info["content_length"] == len(UTF8_DATA)
    assert info["etag"] == by_name[UTF8_NAME]["etag"]
    assert info["content_type"], info
    assert client.content_length(f"{base}/{UTF8_NAME}") == len(UTF8_DATA)

    for name, data in files.items():
        target = tmp_path / "got"
        client.download_file(f"{base}/{name}", target)
        assert target.read_bytes() == data, name


def test_streaming_open(client: Client, base: str, tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(BIG)
    client.upload_file(tmp_path / "big", f"{base}/big.bin")
    (tmp_path / "utf8").write_bytes(UTF8_DATA)
    client.upload_file(tmp_path / "utf8", f"{base}/{UTF8_NAME}")

    with client.open(f"{base}/big.bin", mode="rb", chunk_size=64 * 1024) as fh:
        assert fh.read(1000) == BIG[:1000]
        assert fh.tell() == 1000
        fh.seek(4 * 1024 * 1024 + 17)  # a ranged GET
        assert fh.read(100_000) == BIG[4 * 1024 * 1024 + 17:4 * 1024 * 1024 + 17 + 100_000]
        fh.seek(10)
        assert fh.read() == BIG[10:]
    with client.open(f"{base}/{UTF8_NAME}", mode="rt", encoding="utf-8") as fh:
        assert fh.read() == UTF8_DATA.decode()


def test_copy_move_remove(client: Client, base: str, tmp_path: Path, server: ServerProcess) -> None:
    client.mkdir(f"{base}/sub ü")
    for name, data in {"sub ü/a b+c&d.txt": b"abc\n", "empty.txt": b"", "big.bin": BIG}.items():
        (tmp_path / "x").write_bytes(data)
        client.upload_file(tmp_path / "x", f"{base}/{name}")

    client.copy(f"{base}/sub ü", f"{base}/sub copy")
    assert client.isfile(f"{base}/sub copy/a b+c&d.txt")
    assert client.isfile(f"{base}/sub ü/a b+c&d.txt")
    with pytest.raises(ResourceAlreadyExists):  # COPY with Overwrite: F onto an existing target: 412
        client.copy(f"{base}/empty.txt", f"{base}/big.bin", overwrite=False)
    assert client.content_length(f"{base}/big.bin") == len(BIG)
    client.copy(f"{base}/empty.txt", f"{base}/big.bin", overwrite=True)
    assert client.content_length(f"{base}/big.bin") == 0

    client.move(f"{base}/sub copy", f"{base}/sub moved ✓")
    assert client.exists(f"{base}/sub copy") is False
    assert client.isfile(f"{base}/sub moved ✓/a b+c&d.txt")
    with pytest.raises(ResourceAlreadyExists):  # MOVE with Overwrite: F onto an existing target: 412
        client.move(f"{base}/empty.txt", f"{base}/big.bin", overwrite=False)
    assert client.exists(f"{base}/empty.txt")

    client.remove(f"{base}/empty.txt")
    assert client.exists(f"{base}/empty.txt") is False
    client.remove(f"{base}/sub ü")
    assert client.exists(f"{base}/sub ü") is False

    with server.client() as http:
        state = tree(http, server.dav() + "/" + quote(base))
    assert {k: v["type"] for k, v in state.items()} == {
        "big.bin": "file", "sub moved ✓": "dir", "sub moved ✓/a b+c&d.txt": "file"}
    assert "SHA1:" + sha1_bytes(b"abc\n") in state["sub moved ✓/a b+c&d.txt"]["checksums"]


def test_fsspec(base: str, server: ServerProcess) -> None:
    fs = WebdavFileSystem(server.dav(), auth=AUTH, timeout=60)
    piped = f"{base}/fs/piped ñ.txt"
    fs.makedirs(f"{base}/fs/deep/er", exist_ok=True)
    fs.pipe(piped, b"piped\n")
    assert fs.cat(piped) == b"piped\n"
    fs.pipe(f"{base}/fs/deep/er/big.bin", BIG)
    ranged = fs.cat_file(f"{base}/fs/deep/er/big.bin", start=1_000_000, end=1_000_100)
    assert ranged == BIG[1_000_000:1_000_100]
    with fs.open(f"{base}/fs/written (1).txt", "wb") as fh:
        fh.write(UTF8_DATA)
    with fs.open(f"{base}/fs/written (1).txt", "rb") as fh:
        assert fh.read() == UTF8_DATA

    found = fs.find(base)
    rel = {p.split(base + "/", 1)[1] for p in found}
    assert rel == {"fs/piped ñ.txt", "fs/deep/er/big.bin", "fs/written (1).txt"}
    assert fs.isdir(f"{base}/fs/deep") and fs.isfile(piped)
    assert fs.size(f"{base}/fs/deep/er/big.bin") == len(BIG)
    listing = {name_of(e): e for e in fs.ls(f"{base}/fs", detail=True)}
    assert set(listing) == {"piped ñ.txt", "deep", "written (1).txt"}
    assert listing["deep"]["type"] == "directory"
    assert listing["written (1).txt"]["size"] == len(UTF8_DATA)

    fs.cp_file(piped, f"{base}/fs/copied.txt")
    fs.mv(f"{base}/fs/copied.txt", f"{base}/moved out.txt")
    assert fs.cat(f"{base}/moved out.txt") == b"piped\n"
    assert not fs.exists(f"{base}/fs/copied.txt")

    fs.rm(f"{base}/fs", recursive=True)
    assert not fs.exists(f"{base}/fs")
    assert fs.find(base) == [f"{base}/moved out.txt"]
