"""WebDAV on the wire, in-process: what the sync clients check, asserted on the bytes."""

from __future__ import annotations

import email.utils
import hashlib
import re
import zlib

import httpx
from lxml import etree

from tests.api.conftest import DAV, MOUNT_ID

NS = {"d": "DAV:", "oc": "http://owncloud.org/ns", "s": "http://sabredav.org/ns"}
DESKTOP_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    "<d:prop><d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getetag/><oc:id/><oc:downloadURL/>"
    "<oc:dDC/><oc:permissions/><oc:checksums/><oc:data-fingerprint/><oc:share-types/></d:prop>M</d:propfind>"
)


async def propfind(client, url, body=DESKTOP_PROPFIND, depth="1", **headers):
    r = await client.request("PROPFIND", url, content=body, headers={"Depth": depth, **headers})
    return r, (etree.fromstring(r.content) if r.status_code == 207 else None)


def prop(response, name):
    for propstat in response.findall("d:propstat", NS):
        if propstat.findtext("d:status", namespaces=NS).startswith("HTTP/1.1 200"):
            el = propstat.find(f"d:prop/{name}", NS)
            if el is not None:
                return el
    return None


async def test_propfind_answers_as_the_desktop_client_requires(client):
    await client.request("MKCOL", f"{DAV}/sync")
    r = await client.put(f"{DAV}/sync/a b.txt", content=b"hello")
    assert r.status_code == 201
    r, doc = await propfind(client, f"{DAV}/sync/")
    assert r.status_code == 207
    assert r.headers["content-type"] == "application/xml; charset=utf-8"
    responses = doc.findall("d:response", NS)
    assert [x.findtext("d:href", namespaces=NS) for x in responses] == [
        "/remote.php/dav/files/einstein/sync/", "/remote.php/dav/files/einstein/sync/a%20b.txt"]
    folder, file = responses
    assert re.fullmatch(rf"{MOUNT_ID}\$4c510ada-c86b-4815-8820-42cdf82c3d51![0-9a-f-]{{36}}",
                        prop(file, "oc:id").text)
    assert prop(folder, "oc:permissions").text == "RDNVCKZP"
    assert prop(file, "oc:permissions").text == "RDNVWZP"
    assert prop(file, "d:getcontentlength").text == "5"
    assert re.fullmatch(r'"[0-9a-f]{32}"', prop(file, "d:getetag").text)
    email.utils.parsedate_to_datetime(prop(file, "d:getlastmodified").text)  # RFC 1123
    assert prop(file, "d:getlastmodified").text.endswith(" GMT")
    checksum = prop(file, "oc:checksums").find("oc:checksum", NS).text
    assert checksum == (f"SHA1:{hashlib.sha1(b'hello').hexdigest()} MD5:{hashlib.md5(b'hello').hexdigest()} "
                        f"ADLER32:{zlib.adler32(b'hello'):08x}")
    assert prop(folder, "d:resourcetype").find("d:collection", NS) is not None
    assert prop(folder, "d:getcontentlength") is None
    assert prop(file, "oc:downloadURL").text == "https://cloud.example.org/remote.php/dav/files/einstein/sync/a%20b.txt"
    assert prop(folder, "oc:downloadURL") is None  # folders have none: a 404 propstat
    assert prop(folder, "oc:data-fingerprint") is not None and prop(folder, "oc:share-types") is not None


async def test_oc_id_is_stable_across_content_change_and_move(client):
    await client.put(f"{DAV}/f.txt", content=b"1")
    _, doc = await propfind(client, f"{DAV}/f.txt", depth="0")
    file_id = prop(doc[0], "oc:id").text
    await client.put(f"{DAV}/f.txt", content=b"22")
    await client.request("MKCOL", f"{DAV}/dir")
    r = await client.request("MOVE", f"{DAV}/f.txt", headers={"Destination": f"{DAV}/dir/g.txt"})
    assert r.status_code == 201
    _, doc = await propfind(client, f"{DAV}/dir/g.txt", depth="0")
    assert prop(doc[0], "oc:id").text == file_id


async def test_etags_propagate_to_the_root(client):
    await client.request("MKCOL", f"{DAV}/p")
    await client.request("MKCOL", f"{DAV}/p/q")
    _, before = await propfind(client, f"{DAV}/", depth="0")
    _, mid_before = await propfind(client, f"{DAV}/p", depth="0")
    await client.put(f"{DAV}/p/q/new.txt", content=b"x" * 10)
    _, after = await propfind(client, f"{DAV}/", depth="0")
    _, mid_after = await propfind(client, f"{DAV}/p", depth="0")
    assert prop(before[0], "d:getetag").text != prop(after[0], "d:getetag").text
    assert prop(mid_before[0], "d:getetag").text != prop(mid_after[0], "d:getetag").text
    _r, doc = await propfind(client, f"{DAV}/p", depth="0",
                            body='<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:size/>'
                                 "</d:prop></d:propfind>")
    assert prop(doc[0], "oc:size").text == "10"


async def test_put_headers_and_mtime(client):
    checksum = f"SHA1:{hashlib.sha1(b'data').hexdigest()}"
    r = await client.put(f"{DAV}/m.txt", content=b"data", headers={"X-OC-Mtime": "1500000000", "OC-Checksum": checksum})
    assert r.status_code == 201
    assert r.headers["x-oc-mtime"] == "accepted"
    assert r.headers["etag"] == r.headers["oc-etag"] and r.headers["etag"].startswith('"')
    assert r.headers["oc-fileid"].startswith(MOUNT_ID + "$")
    _, doc = await propfind(client, f"{DAV}/m.txt", depth="0")
    assert prop(doc[0], "d:getlastmodified").text == "Fri, 14 Jul 2017 02:40:00 GMT"
    r = await client.put(f"{DAV}/m.txt", content=b"data2")
    assert r.status_code == 204


async def test_put_checksum_mismatch_is_refused(client):
    r = await client.put(f"{DAV}/c.txt", content=b"data", headers={"OC-Checksum": "SHA1:" + "0" * 40})
    assert r.status_code == 400
    assert b"Sabre\\DAV\\Exception\\BadRequest" in r.content
    assert (await client.get(f"{DAV}/c.txt")).status_code == 404


async def test_conditional_put(client):
    r = await client.put(f"{DAV}/e.txt", content=b"1")
    etag = r.headers["etag"]
    assert (await client.put(f"{DAV}/e.txt", content=b"2", headers={"If-Match": '"nope"'})).status_code == 412
    assert (await client.put(f"{DAV}/e.txt", content=b"2", headers={"If-Match": etag})).status_code == 204
    assert (await client.put(f"{DAV}/e.txt", content=b"3", headers={"If-None-Match": "*"})).status_code == 412
    assert (await client.get(f"{DAV}/e.txt")).content == b"2"


async def test_get_ranges_and_conditional_get(client):
    await client.put(f"{DAV}/r.bin", content=bytes(range(100)))
    r = await client.get(f"{DAV}/r.bin")
    assert r.headers["oc-checksum"] == f"SHA1:{hashlib.sha1(bytes(range(100))).hexdigest()}"
    assert r.headers["accept-ranges"] == "bytes" and "attachment" in r.headers["content-disposition"]
    etag = r.headers["etag"]
    assert (await client.get(f"{DAV}/r.bin", headers={"If-None-Match": etag})).status_code == 304
    r = await client.get(f"{DAV}/r.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == bytes(range(10, 20))
    assert r.headers["content-range"] == "bytes 10-19/100"
    r = await client.get(f"{DAV}/r.bin", headers={"Range": "bytes=-5"})
    assert r.content == bytes(range(95, 100))
    r = await client.get(f"{DAV}/r.bin", headers={"Range": "bytes=0-1,50-51"})
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
    assert bytes([0, 1]) in r.content and bytes([50, 51]) in r.content
    r = await client.get(f"{DAV}/r.bin", headers={"Range": "bytes=500-600"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */100"
    r = await client.head(f"{DAV}/r.bin")
    assert r.status_code == 200 and r.headers["content-length"] == "100" and r.content == b""


async def test_mkcol_statuses(client):
    assert (await client.request("MKCOL", f"{DAV}/new")).status_code == 201
    r = await client.request("MKCOL", f"{DAV}/new")
    assert r.status_code == 405 and b"MethodNotAllowed" in r.content
    assert (await client.request("MKCOL", f"{DAV}/missing/child")).status_code == 409
    assert (await client.request("MKCOL", f"{DAV}/body", content=b"<x/>")).status_code == 415


async def test_copy_move_statuses(client):
    await client.put(f"{DAV}/src.txt", content=b"s")
    await client.put(f"{DAV}/dst.txt", content=b"d")
    r = await client.request("COPY", f"{DAV}/src.txt", headers={"Destination": f"{DAV}/dst.txt", "Overwrite": "F"})
    assert r.status_code == 412
    r = await client.request("COPY", f"{DAV}/src.txt",
                             headers={"Destination": f"http://testserver{DAV}/dst.txt", "Overwrite": "T"})
    assert r.status_code == 204
    assert (await client.get(f"{DAV}/dst.txt")).content == b"s"
    r = await client.request("MOVE", f"{DAV}/src.txt", headers={"Destination": f"{DAV}/nope/x.txt"})
    assert r.status_code == 409
    r = await client.request("MOVE", f"{DAV}/src.txt", headers={"Destination": "http://elsewhere.example/x"})
    assert r.status_code == 502
    r = await client.request("MOVE", f"{DAV}/src.txt", headers={"Destination": f"{DAV}/moved.txt"})
    assert r.status_code == 201
    assert (await client.get(f"{DAV}/src.txt")).status_code == 404


async def test_delete(client):
    await client.request("MKCOL", f"{DAV}/gone")
    await client.put(f"{DAV}/gone/f", content=b"x")
    assert (await client.delete(f"{DAV}/gone")).status_code == 204
    assert (await client.delete(f"{DAV}/gone")).status_code == 404
    _, doc = await propfind(client, f"{DAV}/", depth="0",
                            body='<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:size/>'
                                 "</d:prop></d:propfind>")
    assert prop(doc[0], "oc:size").text == "0"


async def test_depth_infinity_is_refused_by_default(client):
    r = await client.request("PROPFIND", f"{DAV}/", headers={"Depth": "infinity"})
    assert r.status_code == 400 and b"Sabre" in r.content


async def test_prefer_minimal_drops_404_propstats(client):
    r, doc = await propfind(client, f"{DAV}/", depth="0", Prefer="return=minimal")
    assert r.headers["preference-applied"] == "return=minimal"
    assert all(ps.findtext("d:status", namespaces=NS).startswith("HTTP/1.1 200")
               for ps in doc.iter("{DAV:}propstat"))


async def test_dead_properties_roundtrip(client):
    await client.put(f"{DAV}/dp.txt", content=b"x")
    body = ('<d:propertyupdate xmlns:d="DAV:" xmlns:z="urn:example:z"><d:set><d:prop><z:colour>blue &amp; green'
            "</z:colour></d:prop></d:set></d:propertyupdate>")
    r = await client.request("PROPPATCH", f"{DAV}/dp.txt", content=body)
    assert r.status_code == 207 and b"HTTP/1.1 200 OK" in r.content
    _, doc = await propfind(client, f"{DAV}/dp.txt", depth="0",
                            body='<d:propfind xmlns:d="DAV:" xmlns:z="urn:example:z"><d:prop><z:colour/></d:prop>'
                                 "</d:propfind>")
    assert prop(doc[0], "{urn:example:z}colour").text == "blue & green"
    r = await client.request("PROPPATCH", f"{DAV}/dp.txt", content=(
        '<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:getetag>x</d:getetag></d:prop></d:set>'
        "</d:propertyupdate>"))
    assert b"HTTP/1.1 403 Forbidden" in r.content


async def test_spaces_endpoint_and_id_based_access(client):
    r = await client.put(f"{DAV}/s.txt", content=b"space")
    file_id = r.headers["oc-fileid"]
    space_id = file_id.split("!")[0]
    assert (await client.get(f"/dav/spaces/{space_id}/s.txt")).content == b"space"
    assert (await client.get(f"/dav/spaces/{file_id}")).content == b"space"
    r, doc = await propfind(client, f"/remote.php/dav/spaces/{space_id}/", depth="1")
    hrefs = [x.findtext("d:href", namespaces=NS) for x in doc.findall("d:response", NS)]
    assert hrefs[0] == f"/remote.php/dav/spaces/{space_id}/"
    assert f"/remote.php/dav/spaces/{space_id}/s.txt" in hrefs
    assert (await client.get("/remote.php/webdav/s.txt")).content == b"space"


async def test_other_users_space_is_not_found(client):
    r = await client.put(f"{DAV}/private.txt", content=b"secret")
    space_id = r.headers["oc-fileid"].split("!")[0]
    r = await client.get(f"/dav/spaces/{space_id}/private.txt", auth=("marie", "radioactivity"))
    assert r.status_code == 404 and b"secret" not in r.content
    r = await client.get(f"{DAV}/private.txt", auth=("marie", "radioactivity"))
    assert r.status_code == 404


async def test_unauthenticated_gets_401_with_sabre_body(client):
    r = await client.request("PROPFIND", f"{DAV}/", auth=None)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
    assert b"NotAuthenticated" in r.content
    r = await client.request("PROPFIND", f"{DAV}/", auth=("einstein", "wrong"))
    assert r.status_code == 401


async def test_options(client):
    r = await client.options(f"{DAV}/")
    assert r.status_code == 204
    assert "1, 2" in r.headers["dav"] and "PROPFIND" in r.headers["allow"]


async def test_locks_block_writes_without_the_token(client):
    await client.put(f"{DAV}/l.txt", content=b"x")
    r = await client.request("LOCK", f"{DAV}/l.txt", content=(
        '<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>'
        "<d:owner>me</d:owner></d:lockinfo>"), headers={"Timeout": "Second-60"})
    assert r.status_code == 200
    assert b"<d:lockroot><d:href>/remote.php/dav/files/einstein/l.txt</d:href></d:lockroot>" in r.content
    token = r.headers["lock-token"]
    r = await client.request("PROPFIND", f"{DAV}/l.txt", headers={"Depth": "0"},
                             content='<d:propfind xmlns:d="DAV:"><d:prop><d:lockdiscovery/></d:prop></d:propfind>')
    assert token[1:-1].encode() in r.content and b"<d:lockroot>" in r.content
    assert (await client.put(f"{DAV}/l.txt", content=b"y")).status_code == 423
    assert (await client.put(f"{DAV}/l.txt", content=b"y", headers={"If": f"({token})"})).status_code == 204
    r = await client.request("UNLOCK", f"{DAV}/l.txt", headers={"Lock-Token": token})
    assert r.status_code == 204
    assert (await client.put(f"{DAV}/l.txt", content=b"z")).status_code == 204


async def test_events_are_published(app, client):
    events = app.webdav.dav.files.bus.subscribe("test")
    await client.request("MKCOL", f"{DAV}/ev")
    await client.put(f"{DAV}/ev/f", content=b"1")
    await client.request("MOVE", f"{DAV}/ev/f", headers={"Destination": f"{DAV}/ev/g"})
    await client.delete(f"{DAV}/ev/g")
    seen = [await anext(events) for _ in range(5)]
    assert [e.type for e in seen] == ["SpaceCreated", "ContainerCreated", "FileUploaded", "ItemMoved", "ItemTrashed"]
    assert seen[2].name == "f" and seen[2].size == 1 and seen[2].new is True
    assert seen[3].old_name == "f" and seen[3].name == "g" and seen[3].node_id == seen[2].node_id


FAVORITE_ON = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
               "<d:set><d:prop><oc:favorite>{}</oc:favorite></d:prop></d:set></d:propertyupdate>")
FILTER_FAVORITES = ('<?xml version="1.0"?><oc:filter-files xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
                    "<d:prop><oc:fileid/><oc:favorite/><d:getetag/></d:prop>"
                    "<oc:filter-rules><oc:favorite>1</oc:favorite></oc:filter-rules></oc:filter-files>")


async def test_favorites_are_per_user_and_listed_by_report(client, app):
    await client.request("MKCOL", f"{DAV}/f")
    await client.put(f"{DAV}/f/star.txt", content=b"x")
    await client.put(f"{DAV}/f/plain.txt", content=b"y")
    await client.request("MKCOL", f"{DAV}/f/starred folder")
    etag_before = (await client.head(f"{DAV}/f/star.txt")).headers["etag"]
    for path in ("f/star.txt", "f/starred%20folder"):
        r = await client.request("PROPPATCH", f"{DAV}/{path}", content=FAVORITE_ON.format(1))
        assert r.status_code == 207 and "200 OK" in r.text
    # a flag for this user, not a change of the file: the etag stays, no dead property appears
    assert (await client.head(f"{DAV}/f/star.txt")).headers["etag"] == etag_before
    _r, doc = await propfind(client, f"{DAV}/f/", body=b"")  # allprop includes oc:favorite
    flags = {x.findtext("d:href", namespaces=NS): prop(x, "oc:favorite").text for x in doc.findall("d:response", NS)}
    assert flags == {f"{DAV}/f/": "0", f"{DAV}/f/star.txt": "1", f"{DAV}/f/plain.txt": "0",
                     f"{DAV}/f/starred%20folder/": "1"}
    allprop = await client.request("PROPFIND", f"{DAV}/f/star.txt", headers={"Depth": "0"})
    assert "fav:" not in allprop.text
    report = await client.request("REPORT", f"{DAV}/", content=FILTER_FAVORITES)
    assert report.status_code == 207
    listed = etree.fromstring(report.content).findall("d:response", NS)
    hrefs = sorted(x.findtext("d:href", namespaces=NS) for x in listed)
    assert hrefs == [f"{DAV}/f/star.txt", f"{DAV}/f/starred%20folder/"]
    # another user sees none of it
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 auth=("marie", "radioactivity")) as marie:
        mine = await marie.request("REPORT", "/remote.php/dav/files/marie/", content=FILTER_FAVORITES)
        assert mine.status_code == 207 and "<d:response>" not in mine.text
    # unmarking, and favorites that were deleted, drop out of the report
    await client.request("PROPPATCH", f"{DAV}/f/star.txt", content=FAVORITE_ON.format(0))
    await client.delete(f"{DAV}/f/starred%20folder")
    report = await client.request("REPORT", f"{DAV}/", content=FILTER_FAVORITES)
    assert "<d:response>" not in report.text


async def test_a_favorite_shows_in_a_big_folder_whose_listing_is_cached(client):
    await client.request("MKCOL", f"{DAV}/big")
    for i in range(70):  # enough children for the per-folder listing cache
        await client.put(f"{DAV}/big/f{i:02}.txt", content=b"x")

    body = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
            b"<d:prop><oc:favorite/></d:prop></d:propfind>")  # no lock property: the cache may serve it

    async def flag() -> str:
        _r, doc = await propfind(client, f"{DAV}/big/", body=body)
        return next(prop(x, "oc:favorite").text for x in doc.findall("d:response", NS)
                    if x.findtext("d:href", namespaces=NS).endswith("/f07.txt"))

    assert await flag() == "0"  # this listing built the cache
    for wanted in ("1", "0"):
        r = await client.request("PROPPATCH", f"{DAV}/big/f07.txt", content=FAVORITE_ON.format(wanted))
        assert r.status_code == 207
        assert await flag() == wanted
