"""status.php, capabilities and the OCS envelope, byte for byte where clients care."""

from __future__ import annotations

from lxml import etree


async def test_status_php(client):
    r = await client.get("/status.php", auth=None)
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == "10.11.0.0" and body["versionstring"] == "10.11.0"
    assert body["productname"] == "Infinite Scale" and body["installed"] is True
    assert body["maintenance"] is False and body["edition"] == "Community"


async def test_capabilities_json_without_credentials(client):
    r = await client.get("/ocs/v1.php/cloud/capabilities?format=json", auth=None,
                         headers={"OCS-APIREQUEST": "true"})
    assert r.status_code == 200
    ocs = r.json()["ocs"]
    assert ocs["meta"]["statuscode"] == 100 and ocs["meta"]["status"] == "ok"
    caps = ocs["data"]["capabilities"]
    assert caps["checksums"]["preferredUploadType"] == "SHA1"
    assert caps["checksums"]["supportedTypes"] == ["SHA1", "MD5", "Adler32"]
    assert caps["core"]["status"]["version"] == "10.11.0.0"
    assert caps["core"]["webdav-root"] == "remote.php/webdav"
    assert caps["files"]["bigfilechunking"] is False
    assert ocs["data"]["version"]["string"] == "10.11.0"


async def test_capabilities_v2_and_xml(client):
    r = await client.get("/ocs/v2.php/cloud/capabilities")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    doc = etree.fromstring(r.content)
    assert doc.findtext("meta/statuscode") == "200"
    assert doc.findtext("data/capabilities/core/status/version") == "10.11.0.0"
    assert doc.findtext("data/capabilities/checksums/preferredUploadType") == "SHA1"


async def test_cloud_user(client):
    r = await client.get("/ocs/v1.php/cloud/user?format=json")
    data = r.json()["ocs"]["data"]
    assert data["id"] == "einstein" and data["display-name"] == "Albert Einstein"
    assert data["email"] == "einstein@example.org"


async def test_cloud_user_needs_credentials(client):
    r = await client.get("/ocs/v2.php/cloud/user?format=json", auth=None)
    assert r.status_code == 401
    assert "Basic" in r.headers["www-authenticate"]
    assert r.json()["ocs"]["meta"]["statuscode"] == 997


async def test_config(client):
    r = await client.get("/ocs/v1.php/config?format=json", auth=None)
    assert r.json()["ocs"]["data"]["host"] == "https://cloud.example.org"


async def test_health_and_request_id(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
    r = await client.get("/readyz")
    assert r.status_code == 200 and len(r.headers["x-request-id"]) == 32
    int(r.headers["x-request-id"], 16)  # hex digits
    again = await client.get("/readyz")
    assert again.headers["x-request-id"] != r.headers["x-request-id"]
