"""Uploads across requests on the wire: TUS, chunking NG, legacy chunking v1."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from infiniscale.runtime import build_app, build_directory
from infiniscale.settings import resolve
from tests.api.conftest import DAV, MOUNT_ID

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}


def meta(**items: str | None) -> str:
    return ",".join(k if v is None else f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


async def tus_post(client: httpx.AsyncClient, folder: str, filename: str, length: int, body: bytes = b"",
                   **extra: str) -> httpx.Response:
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": meta(filename=filename, **extra)}
    if body:
        headers.update(STREAM)
    return await client.post(f"{DAV}/{folder}", headers=headers, content=body)


def data_path(response: httpx.Response) -> str:
    location = response.headers["location"]
    assert location.startswith("https://cloud.example.org/data/"), location  # absolute, on the public URL
    return urlsplit(location).path


async def test_tus_create_patch_head_and_finish(client):
    content = os.urandom(3_000_000)
    sha1 = hashlib.sha1(content).hexdigest()
    assert (await client.request("MKCOL", f"{DAV}/docs")).status_code == 201
    created = await tus_post(client, "", "/docs/report ü.bin", len(content), content[:1_000_000],
                             checksum=f"SHA1 {sha1}", mtime="1614834367")
    assert created.status_code == 201
    assert created.headers["upload-offset"] == "1000000" and "upload-expires" in created.headers
    assert "etag" not in created.headers  # not finished yet
    url = data_path(created)
    head = await client.head(url, headers=TUS)
    assert head.status_code == 200 and head.headers["upload-offset"] == "1000000"
    assert head.headers["upload-length"] == str(len(content))
    middle = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "1000000"},
                                content=content[1_000_000:2_500_000])
    assert middle.status_code == 204 and middle.headers["upload-offset"] == "2500000"
    last = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "2500000"},
                              content=content[2_500_000:])
    assert last.status_code == 204
    assert last.headers["upload-offset"] == str(len(content))
    for name in ("etag", "oc-etag", "oc-fileid", "oc-perm"):
        assert last.headers.get(name), name
    assert last.headers["x-oc-mtime"] == "accepted"
    got = await client.get(f"{DAV}/docs/report ü.bin")
    assert got.content == content and got.headers["oc-checksum"] == f"SHA1:{sha1}"
    assert got.headers["last-modified"] == "Thu, 04 Mar 2021 05:06:07 GMT"
    assert got.headers["oc-fileid"] == last.headers["oc-fileid"]
    assert (await client.head(url, headers=TUS)).status_code == 404  # a finished upload is gone


async def test_tus_filename_is_a_plain_path_not_url_encoded(client):
    created = await tus_post(client, "", "percent%20name.txt", 3, b"abc")
    assert created.status_code == 201 and created.headers.get("etag")
    assert (await client.get(f"{DAV}/percent%2520name.txt")).content == b"abc"


async def test_tus_zero_length_is_finished_by_the_post(client):
    created = await tus_post(client, "", "empty.txt", 0, checksum=None)
    assert created.status_code == 201
    assert created.headers.get("etag") and created.headers.get("oc-fileid") and created.headers.get("oc-perm")
    got = await client.get(f"{DAV}/empty.txt")
    assert got.status_code == 200 and got.content == b""


async def test_tus_offset_mismatch_and_wrong_version(client):
    created = await tus_post(client, "", "f.bin", 10, b"12345")
    url = data_path(created)
    wrong = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "0"}, content=b"12345")
    assert wrong.status_code == 409
    no_version = await client.patch(url, headers={**STREAM, "Upload-Offset": "5"}, content=b"67890")
    assert no_version.status_code == 412
    bad_type = await client.patch(url, headers={**TUS, "Upload-Offset": "5"}, content=b"67890")
    assert bad_type.status_code == 415
    too_long = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "5"}, content=b"6789012")
    assert too_long.status_code == 400
    assert (await client.head(url, headers=TUS)).headers["upload-offset"] == "5"  # nothing of it kept
    assert (await client.post(f"{DAV}/", headers={"Upload-Length": "3",
                                                  "Upload-Metadata": meta(filename="x")})).status_code == 412


async def test_tus_chunk_checksum_mismatch_drops_the_chunk(client):
    created = await tus_post(client, "", "c.bin", 8)
    url = data_path(created)
    good = base64.b64encode(hashlib.sha1(b"abcd").digest()).decode()
    bad = base64.b64encode(hashlib.sha1(b"xxxx").digest()).decode()
    refused = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "0",
                                               "Upload-Checksum": f"sha1 {bad}"}, content=b"abcd")
    assert refused.status_code == 460
    assert (await client.head(url, headers=TUS)).headers["upload-offset"] == "0"
    accepted = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "0",
                                                "Upload-Checksum": f"sha1 {good}"}, content=b"abcd")
    assert accepted.status_code == 204 and accepted.headers["upload-offset"] == "4"


async def test_tus_whole_file_checksum_mismatch_fails_and_stores_nothing(client):
    wrong = hashlib.sha1(b"something else").hexdigest()
    created = await tus_post(client, "", "w.bin", 4, checksum=f"SHA1 {wrong}")
    url = data_path(created)
    last = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "0"}, content=b"abcd")
    assert last.status_code == 460
    assert (await client.get(f"{DAV}/w.bin")).status_code == 404
    assert (await client.head(url, headers=TUS)).status_code == 404  # cannot succeed: removed


async def test_tus_if_match_checked_at_creation_and_commit(client):
    first = await client.put(f"{DAV}/m.txt", content=b"one")
    etag = first.headers["etag"]
    stale = await client.post(f"{DAV}/", headers={**TUS, "Upload-Length": "3", "If-Match": '"nope"',
                                                  "Upload-Metadata": meta(filename="m.txt")})
    assert stale.status_code == 412
    created = await client.post(f"{DAV}/", headers={**TUS, "Upload-Length": "3", "If-Match": etag,
                                                    "Upload-Metadata": meta(filename="m.txt")})
    assert created.status_code == 201
    await client.put(f"{DAV}/m.txt", content=b"two")  # somebody else changes it meanwhile
    last = await client.patch(data_path(created), headers={**TUS, **STREAM, "Upload-Offset": "0"}, content=b"new")
    assert last.status_code == 412
    assert (await client.get(f"{DAV}/m.txt")).content == b"two"


async def test_tus_termination_and_missing_parent(client):
    created = await tus_post(client, "", "t.bin", 10, b"123")
    url = data_path(created)
    assert (await client.delete(url, headers=TUS)).status_code == 204
    assert (await client.head(url, headers=TUS)).status_code == 404
    assert (await tus_post(client, "", "no/such/folder/x.bin", 3)).status_code == 409
    assert (await tus_post(client, "", "../escape.bin", 3)).status_code == 412


async def test_an_unknown_upload_id_is_404_not_an_error(client):
    for path in (f"/data/{uuid.uuid4()}", "/data/..%2f..%2fetc", "/data/"):
        response = await client.head(path, headers=TUS)
        assert response.status_code == 404, path


async def test_expired_uploads_are_gone(tmp_path):
    settings = resolve(env={"OCIS_BASE_DATA_PATH": str(tmp_path), "PROXY_TLS": "false",
                            "PROXY_ENABLE_BASIC_AUTH": "true", "OCIS_URL": "https://cloud.example.org",
                            "STORAGE_USERS_MOUNT_ID": MOUNT_ID,
                            "STORAGE_USERS_UPLOAD_EXPIRATION": "0"})
    build_directory(settings).put_user("4c510ada-c86b-4815-8820-42cdf82c3d51", "einstein", "relativity",
                                       "Albert Einstein", "einstein@example.org")
    transport = httpx.ASGITransport(app=build_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 auth=("einstein", "relativity")) as client:
        created = await tus_post(client, "", "late.bin", 10)
        assert created.status_code == 201
        url = data_path(created)
        assert (await client.head(url, headers=TUS)).status_code == 404
        late = await client.patch(url, headers={**TUS, **STREAM, "Upload-Offset": "0"}, content=b"123")
        assert late.status_code == 404


async def test_capabilities_advertise_tus_and_chunking(client):
    caps = (await client.get("/ocs/v2.php/cloud/capabilities?format=json")).json()["ocs"]["data"]["capabilities"]
    tus = caps["files"]["tus_support"]
    assert tus["version"] == "1.0.0" and tus["resumable"] == "1.0.0" and tus["max_chunk_size"] == 10_000_000
    assert "creation-with-upload" in tus["extension"]
    assert caps["dav"]["chunking"] == "1.0"
    assert caps["checksums"]["preferredUploadType"] == "SHA1"
    xml = await client.get("/ocs/v1.php/cloud/capabilities")
    assert b"<tus_support><version>1.0.0</version>" in xml.content and b"<statuscode>100</statuscode>" in xml.content


# ---------------------------------------------------------------------- chunking NG

UPLOADS = "/remote.php/dav/uploads/einstein"


async def test_chunking_ng_round_trip(client):
    parts = [os.urandom(1000), os.urandom(2000), os.urandom(5)]
    whole = b"".join(parts)
    assert (await client.request("MKCOL", f"{UPLOADS}/77")).status_code == 201
    assert (await client.request("MKCOL", f"{UPLOADS}/77")).status_code == 405
    for i in (2, 0, 1):  # any order; names sort as numbers
        put = await client.put(f"{UPLOADS}/77/{i:016d}", content=parts[i])
        assert put.status_code == 201
    listing = await client.request("PROPFIND", f"{UPLOADS}/77", headers={"Depth": "1"})
    assert listing.status_code == 207 and listing.text.count("<d:response>") == 4
    moved = await client.request("MOVE", f"{UPLOADS}/77/.file", headers={
        "Destination": f"{DAV}/joined.bin", "OC-Total-Length": str(len(whole)),
        "OC-Checksum": f"SHA1:{hashlib.sha1(whole).hexdigest()}", "X-OC-Mtime": "1614834367"})
    assert moved.status_code == 201
    assert moved.headers.get("etag") and moved.headers.get("oc-fileid")
    assert (await client.get(f"{DAV}/joined.bin")).content == whole
    assert (await client.request("PROPFIND", f"{UPLOADS}/77", headers={"Depth": "1"})).status_code == 404


async def test_chunking_ng_refuses_wrong_length_checksum_and_stale_etag(client):
    await client.request("MKCOL", f"{UPLOADS}/88")
    await client.put(f"{UPLOADS}/88/{0:016d}", content=b"hello")
    short = await client.request("MOVE", f"{UPLOADS}/88/.file", headers={
        "Destination": f"{DAV}/x.bin", "OC-Total-Length": "6"})
    assert short.status_code == 400
    bad_sum = await client.request("MOVE", f"{UPLOADS}/88/.file", headers={
        "Destination": f"{DAV}/x.bin", "OC-Checksum": f"SHA1:{hashlib.sha1(b'other').hexdigest()}"})
    assert bad_sum.status_code == 400
    await client.put(f"{DAV}/x.bin", content=b"old")
    stale = await client.request("MOVE", f"{UPLOADS}/88/.file", headers={
        "Destination": f"{DAV}/x.bin", "If": f'<{DAV}/x.bin> (["nope"])'})
    assert stale.status_code == 412
    assert (await client.get(f"{DAV}/x.bin")).content == b"old"
    assert (await client.delete(f"{UPLOADS}/88")).status_code == 204
    assert (await client.put(f"{UPLOADS}/88/{1:016d}", content=b"x")).status_code == 404


async def test_chunking_ng_belongs_to_its_user(client, app):
    await client.request("MKCOL", f"{UPLOADS}/99")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 auth=("marie", "radioactivity")) as marie:
        assert (await marie.put(f"{UPLOADS}/99/0", content=b"x")).status_code == 404
        assert (await marie.put("/remote.php/dav/uploads/marie/99/0", content=b"x")).status_code == 404


# ---------------------------------------------------------------------- legacy chunking v1

async def test_legacy_chunking_v1_out_of_order(client):
    parts = [b"first-", b"second-", b"third"]
    replies = []
    for i in (1, 2, 0):
        reply = await client.put(f"{DAV}/legacy.txt-chunking-4242-3-{i}", content=parts[i],
                                 headers={"OC-Chunked": "1", "X-OC-Mtime": "1614834367"})
        assert reply.status_code in (201, 204)
        replies.append(reply)
    assert "etag" not in replies[0].headers and "etag" not in replies[1].headers
    assert replies[2].headers.get("etag") and replies[2].headers.get("oc-fileid")
    got = await client.get(f"{DAV}/legacy.txt")
    assert got.content == b"first-second-third"
    listing = await client.request("PROPFIND", f"{DAV}/", headers={"Depth": "1"})
    assert "chunking" not in listing.text


@pytest.mark.parametrize("name", ["a.txt-chunking-1-0-0", "a.txt-chunking-1-2-5"])
async def test_legacy_chunking_v1_refuses_impossible_numbers(client, name):
    reply = await client.put(f"{DAV}/{name}", content=b"x", headers={"OC-Chunked": "1"})
    assert reply.status_code == 400


async def test_tus_on_the_spaces_endpoint(client):
    await client.put(f"{DAV}/seed.txt", content=b"x")  # creates the personal space
    space = f"/dav/spaces/{MOUNT_ID}$4c510ada-c86b-4815-8820-42cdf82c3d51"
    assert (await client.request("MKCOL", f"{space}/in space")).status_code == 201
    created = await client.post(f"{space}/in%20space", headers={
        **TUS, **STREAM, "Upload-Length": "5", "Upload-Metadata": meta(filename="s.txt")}, content=b"hello")
    assert created.status_code == 201 and created.headers.get("etag")
    assert (await client.get(f"{DAV}/in space/s.txt")).content == b"hello"
