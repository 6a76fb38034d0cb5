"""The server with its content in S3 (a real SeaweedFS): WebDAV, TUS and chunked uploads, COPY and
litmus on s3ng; a SIGKILL halfway through a multipart upload; and the space registry with personal
spaces on local disk and project spaces in S3 (cross-provider MOVE refused with 502, COPY works)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import need_binary, run
from tests.s3server import multipart_uploads, object_keys, s3_client

pytestmark = pytest.mark.e2e


def _running(root: Path, env: dict[str, str], workers: int = 1) -> Iterator[ServerProcess]:
    server = ServerProcess(root, workers=workers, extra_env=env)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_only(s3_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Every space on s3ng, parts of 5 MiB so that modest files already go up in parts."""
    env = {**s3_server.env("s3only"), "STORAGE_USERS_S3NG_PUT_OBJECT_PART_SIZE": str(5 << 20)}
    yield from _running(tmp_path_factory.mktemp("s3only"), env, workers=2)


def _objects(s3_server, bucket: str) -> list[str]:
    return object_keys(s3_client(s3_server.endpoint), bucket)


def test_put_get_ranges_copy_move_delete_with_content_in_s3(s3_only: ServerProcess, s3_server) -> None:
    big = os.urandom(23 << 20)  # five parts
    with s3_only.client() as http:
        base = s3_only.dav() + "/s3-basics"
        assert http.request("MKCOL", base).status_code == 201
        before = set(_objects(s3_server, "s3only"))
        assert http.put(f"{base}/small.txt", content=b"hello s3").status_code == 201
        reply = http.put(f"{base}/big.bin", content=big)
        assert reply.status_code == 201
        assert reply.headers["oc-checksum"] == f"SHA1:{hashlib.sha1(big).hexdigest()}"
        assert len(set(_objects(s3_server, "s3only")) - before) == 2  # the content really is in S3
        assert http.get(f"{base}/small.txt").content == b"hello s3"
        got = http.get(f"{base}/big.bin")
        assert got.status_code == 200 and got.content == big
        ranged = http.get(f"{base}/big.bin", headers={"Range": "bytes=10485750-10485769"})
        assert ranged.status_code == 206 and ranged.content == big[10485750:10485770]
        assert ranged.headers["content-range"] == f"bytes 10485750-10485769/{len(big)}"
        assert http.request("COPY", f"{base}/big.bin",
                            headers={"Destination": f"{base}/copy.bin"}).status_code == 201
        assert http.request("MOVE", f"{base}/small.txt",
                            headers={"Destination": f"{base}/moved.txt"}).status_code == 201
        assert http.put(f"{base}/moved.txt", content=b"overwritten").status_code == 204
        assert http.get(f"{base}/moved.txt").content == b"overwritten"
        assert http.get(f"{base}/copy.bin").content == big
        assert http.delete(f"{base}/copy.bin").status_code == 204
        assert http.get(f"{base}/copy.bin").status_code == 404
        # live: big.bin and moved.txt; the trash keeps copy.bin; the overwritten content is a version
        assert len(set(_objects(s3_server, "s3only")) - before) == 4
        found = http.request("PROPFIND", f"{base}/moved.txt", headers={"Depth": "0"}).text
        fid = found.split("<oc:fileid>")[1].split("<")[0]
        versions = http.request("PROPFIND", f"{s3_only.base_url}/remote.php/dav/meta/{fid}/v").text
        href = versions.split("<d:href>")[2].split("<")[0]
        assert http.get(f"{s3_only.base_url}{href}").content == b"hello s3"  # read back from S3
        assert http.request("COPY", f"{s3_only.base_url}{href}").status_code == 204
        assert http.get(f"{base}/moved.txt").content == b"hello s3"


def test_tus_and_chunked_uploads_land_in_s3(s3_only: ServerProcess) -> None:
    data = os.urandom(12 << 20)
    with s3_only.client() as http:
        base = s3_only.dav()
        name = base64.b64encode(b"tus-s3.bin").decode()
        created = http.post(base + "/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                                                 "Upload-Metadata": f"filename {name}"})
        assert created.status_code == 201
        location = created.headers["location"]
        for start in range(0, len(data), 4 << 20):
            reply = http.patch(location, content=data[start:start + (4 << 20)],
                               headers={"Tus-Resumable": "1.0.0", "Upload-Offset": str(start),
                                        "Content-Type": "application/offset+octet-stream"})
            assert reply.status_code == 204
        assert http.get(f"{base}/tus-s3.bin").content == data
        uploads = f"{s3_only.base_url}/remote.php/dav/uploads/einstein/s3chunks"
        assert http.request("MKCOL", uploads).status_code == 201
        for index, start in enumerate(range(0, len(data), 5 << 20)):
            assert http.put(f"{uploads}/{index:05d}", content=data[start:start + (5 << 20)]).status_code == 201
        done = http.request("MOVE", f"{uploads}/.file",
                            headers={"Destination": f"{base}/chunked-s3.bin", "OC-Total-Length": str(len(data))})
        assert done.status_code == 201
        assert http.get(f"{base}/chunked-s3.bin").content == data


@pytest.mark.parametrize("suite,expected", [("basic", 16), ("copymove", 13), ("http", 4)])
def test_litmus_on_s3(suite: str, expected: int, s3_only: ServerProcess, tmp_path: Path) -> None:
    need_binary("litmus")
    with s3_only.client() as http:
        folder = f"{s3_only.dav()}/litmus-{suite}"
        assert http.request("MKCOL", folder).status_code == 201
    proc = run([f"/usr/libexec/litmus/{suite}", "--htdocs", "/usr/share/litmus/htdocs", folder + "/",
                "einstein", DEMO["einstein"]], timeout=120, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    summary = re.findall(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed", output)
    assert summary and summary[-1] == (suite, str(expected), str(expected), "0"), output[-3000:]


def test_sigkill_during_a_multipart_upload_leaves_nothing_after_cleanup(s3_server, tmp_path: Path) -> None:
    bucket = "crashed"
    env = {**s3_server.env(bucket), "STORAGE_USERS_S3NG_PUT_OBJECT_PART_SIZE": str(5 << 20)}
    server = ServerProcess(tmp_path, extra_env=env)
    server.init()
    server.start()
    client = s3_client(s3_server.endpoint)
    sent, done = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        for _ in range(12):  # 12 MiB: two parts go up while the upload is still incomplete
            yield os.urandom(1 << 20)
        sent.set()
        done.wait(60)  # the rest never comes: the server dies first

    def upload() -> None:
        try:
            with httpx.Client(auth=("einstein", DEMO["einstein"]), timeout=90) as http:
                http.put(f"{server.dav()}/half.bin", content=body(), headers={"Content-Length": str(30 << 20)})
        except Exception:  # the upload is meant to break off
            pass

    try:
        worker = threading.Thread(target=upload, daemon=True)
        worker.start()
        assert sent.wait(60)
        deadline = time.monotonic() + 30
        while not multipart_uploads(client, bucket) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert multipart_uploads(client, bucket), "the upload never reached S3"
        server.kill()
        done.set()
        worker.join(30)
        assert object_keys(client, bucket) == []  # no visible partial object
        server.start()  # the unclean stop makes the start-up repair the storage
        assert multipart_uploads(client, bucket) == []  # no orphan parts
        with server.client() as http:
            assert http.get(f"{server.dav()}/half.bin").status_code == 404
        check = server.cli("storage", "check", check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        server.stop()


@pytest.fixture(scope="module")
def two_providers(s3_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Personal spaces on local disk, project spaces in S3, each provider with its own mount id."""
    env = {**s3_server.env("projects"), "STORAGE_USERS_DRIVER": "ocis",
           "INFINISCALE_PROJECT_STORAGE_DRIVER": "s3ng"}
    yield from _running(tmp_path_factory.mktemp("registry"), env)


def test_the_registry_routes_project_spaces_to_their_own_provider(two_providers: ServerProcess, s3_server) -> None:
    server = two_providers
    with httpx.Client(auth=("admin", "admin"), timeout=60) as admin, server.client() as http:
        made = admin.post(f"{server.base_url}/graph/v1.0/drives", json={"name": "Research"})
        assert made.status_code == 201, made.text
        project = made.json()
        personal = http.get(f"{server.base_url}/graph/v1.0/me/drive").json()
        project_storage, _, project_space = project["id"].partition("$")
        personal_storage = personal["id"].partition("$")[0]
        assert project_storage != personal_storage  # each provider has its own mount id
        invite = admin.post(f"{server.base_url}/graph/v1beta1/drives/{project['id']}/root/invite",
                            json={"recipients": [{"objectId": _user_id(admin, server, "einstein")}],
                                  "roles": ["58c63c02-1d89-4572-916a-870abc5a1b7d"]})
        assert invite.status_code == 200, invite.text
        space_url = f"{server.base_url}/dav/spaces/{project['id']}"
        personal_url = f"{server.base_url}/dav/spaces/{personal['id']}"
        assert http.put(f"{space_url}/in-project.txt", content=b"project data").status_code == 201
        keys = object_keys(s3_client(s3_server.endpoint), "projects")
        assert [k for k in keys if k.startswith(f"{project_space}/")], keys  # content in S3
        assert http.put(f"{personal_url}/mine.txt", content=b"personal data").status_code == 201
        assert len(object_keys(s3_client(s3_server.endpoint), "projects")) == len(keys)  # local, not S3

        fileid = http.request("PROPFIND", f"{space_url}/in-project.txt", headers={"Depth": "0"}).text
        assert f"<oc:fileid>{project_storage}${project_space}!" in fileid

        moved = http.request("MOVE", f"{personal_url}/mine.txt", headers={"Destination": f"{space_url}/mine.txt"})
        assert moved.status_code == 502
        assert "BadGateway" in moved.text
        copied = http.request("COPY", f"{personal_url}/mine.txt", headers={"Destination": f"{space_url}/mine.txt"})
        assert copied.status_code == 201
        assert http.get(f"{space_url}/mine.txt").content == b"personal data"
        back = http.request("COPY", f"{space_url}/in-project.txt",
                            headers={"Destination": f"{personal_url}/from-project.txt"})
        assert back.status_code == 201
        assert http.get(f"{personal_url}/from-project.txt").content == b"project data"
        assert http.get(f"{personal_url}/mine.txt").content == b"personal data"  # COPY left the source
        again = http.request("COPY", f"{personal_url}/mine.txt",
                             headers={"Destination": f"{space_url}/mine.txt", "Overwrite": "F"})
        assert again.status_code == 412


def _user_id(admin: httpx.Client, server: ServerProcess, name: str) -> str:
    users = admin.get(f"{server.base_url}/graph/v1.0/users", params={"$search": name}).json()["value"]
    return next(u["id"] for u in users if u["onPremisesSamAccountName"] == name)
