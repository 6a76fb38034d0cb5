"""`/archiver`: zip and tar of files and folders by id or path, byte for byte; oCIS's limits (413),
errors (400, 404), access through shares and public links, advertised in the capabilities."""

from __future__ import annotations

import io
import os
import re
import tarfile
import zipfile
from collections.abc import AsyncIterator

import httpx
import pytest

from infiniscale.runtime import build_app
from infiniscale.settings import resolve
from tests.api.conftest import MOUNT_ID, people

URL = "https://cloud.example.org"
FILES = "/remote.php/dav/files/einstein"
OCS = "/ocs/v1.php/apps/files_sharing/api/v1/shares"
CONTENT = {"photos/a.jpg": os.urandom(70_000), "photos/b.txt": b"bee", "photos/deep/c.bin": os.urandom(3000),
           "photos/empty.txt": b"", "photos/\u00e9t\u00e9 & co.txt": b"summer"}


@pytest.fixture
async def clients(tmp_path) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false", "OCIS_URL": URL,
                            "PROXY_ENABLE_BASIC_AUTH": "true", "STORAGE_USERS_MOUNT_ID": MOUNT_ID,
                            "FRONTEND_ARCHIVER_MAX_NUM_FILES": "6", "FRONTEND_ARCHIVER_MAX_SIZE": "100000"})
    people(settings, {"einstein": "user", "marie": "user"}, {})
    transport = httpx.ASGITransport(app=build_app(settings))
    made = {name: httpx.AsyncClient(transport=transport, base_url="http://testserver", auth=(name, f"{name}-secret"))
            for name in ("einstein", "marie")}
    made["anonymous"] = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    c = made["einstein"]
    for folder in ("photos", "photos/deep", "photos/empty-folder"):
        assert (await c.request("MKCOL", f"{FILES}/{folder}")).status_code == 201
    for path, data in CONTENT.items():
        assert (await c.put(f"{FILES}/{path}", content=data)).status_code == 201
    try:
        yield made
    finally:
        for client in made.values():
            await client.aclose()


async def file_id(c: httpx.AsyncClient, path: str) -> str:
    r = await c.request("PROPFIND", f"{FILES}/{path}", headers={"Depth": "0"})
    return re.search(r"<oc:fileid>([^<]+)<", r.text).group(1)


async def test_zip_and_tar_hold_every_file_byte_for_byte(clients):
    c = clients["einstein"]
    fid = await file_id(c, "photos")
    r = await c.get("/archiver", params={"id": fid})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="photos.zip"' in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    assert {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")} == CONTENT
    assert {"photos/", "photos/deep/", "photos/empty-folder/"} <= set(archive.namelist())
    r = await c.get("/archiver", params={"id": fid, "output-format": "tar"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        assert files == CONTENT
        assert all(not m.name.startswith(("/", "..")) and ".." not in m.name.split("/") for m in tar.getmembers())


async def test_several_ids_and_paths(clients):
    c = clients["einstein"]
    ids = [await file_id(c, "photos/b.txt"), await file_id(c, "photos/deep")]
    r = await c.get("/archiver", params=[("id", i) for i in ids])
    assert r.status_code == 200 and 'filename="download.zip"' in r.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert names == ["b.txt", "deep/", "deep/c.bin"]
    r = await c.get("/archiver", params={"path": "/photos/deep"})
    assert zipfile.ZipFile(io.BytesIO(r.content)).read("deep/c.bin") == CONTENT["photos/deep/c.bin"]


async def test_limits_and_errors(clients):
    c = clients["einstein"]
    root = await file_id(c, "")
    await c.put(f"{FILES}/more.bin", content=b"x" * 40_000)
    r = await c.get("/archiver", params={"id": root})  # 7 files, 123 kB: over both limits
    assert r.status_code == 413
    assert (await c.get("/archiver")).status_code == 400
    assert (await c.get("/archiver", params={"id": "not-an-id"})).status_code == 400
    assert (await c.get("/archiver", params={"id": root, "output-format": "rar"})).status_code == 400
    missing = root.rsplit("!", 1)[0] + "!00000000-0000-0000-0000-000000000000"
    assert (await c.get("/archiver", params={"id": missing})).status_code == 404
    assert (await clients["marie"].get("/archiver", params={"id": root})).status_code == 404
    assert (await clients["anonymous"].get("/archiver", params={"id": root})).status_code == 401


async def test_through_a_share_and_a_public_link(clients):
    c = clients["einstein"]
    fid = await file_id(c, "photos/deep")
    r = await c.post(OCS, data={"path": "/photos/deep", "shareType": "0", "shareWith": "marie", "permissions": "1"})
    assert "<statuscode>100</statuscode>" in r.text, r.text
    r = await clients["marie"].get("/archiver", params={"id": fid})
    assert r.status_code == 200 and zipfile.ZipFile(io.BytesIO(r.content)).namelist() == ["deep/", "deep/c.bin"]
    r = await c.post(OCS, data={"path": "/photos/deep", "shareType": "3", "permissions": "1",
                                "password": "Secret-link-42!"})
    token = re.search(r"<token>([^<]+)<", r.text).group(1)
    anonymous = clients["anonymous"]
    assert (await anonymous.get("/archiver", params={"id": fid, "public-token": token})).status_code == 401
    r = await anonymous.get("/archiver", params={"id": fid, "public-token": token},
                            auth=("public", "Secret-link-42!"))
    assert r.status_code == 200 and zipfile.ZipFile(io.BytesIO(r.content)).read("deep/c.bin") == CONTENT[
        "photos/deep/c.bin"]
    outside = await file_id(c, "photos/b.txt")
    r = await anonymous.get("/archiver", params={"id": outside, "public-token": token},
                            auth=("public", "Secret-link-42!"))
    assert r.status_code == 404  # the link covers its folder only


async def test_capabilities_advertise_the_archiver(clients):
    r = await clients["einstein"].get("/ocs/v1.php/cloud/capabilities?format=json")
    (archiver,) = r.json()["ocs"]["data"]["capabilities"]["files"]["archivers"]
    assert archiver["enabled"] and archiver["archiver_url"] == "/archiver"
    assert set(archiver["formats"]) == {"zip", "tar"}
    assert archiver["max_num_files"] == "6" and archiver["max_size"] == "100000"
