"""Previews with the server as processes: every listed format becomes an image of the snapped size,
the second request comes from the cache, public links get previews too, bad requests get oCIS's
errors, a new version drops the old previews, and a busy server answers 429 with Retry-After."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests import documents
from tests.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def picture(fmt: str, width: int = 600, height: int = 400, rgb: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    colour = pyvips.Image.black(width, height, bands=3).linear([1, 1, 1], list(rgb))
    image = colour.cast("uchar")
    if fmt == "bmp":
        return image.magicksave_buffer(format="BMP")
    if fmt == "heic":
        return image.heifsave_buffer(compression="hevc")
    return image.write_to_buffer(f".{fmt}")


SOURCES = {
    "photo.jpg": lambda: picture("jpg"), "drawing.png": lambda: picture("png"), "anim.gif": lambda: picture("gif"),
    "scan.bmp": lambda: picture("bmp"), "scan.tiff": lambda: picture("tif"), "web.webp": lambda: picture("webp"),
    "phone.heic": lambda: picture("heic"), "paper.pdf": lambda: documents.pdf("a page to preview"),
    "notes.txt": lambda: b"first line\nsecond line <b>\n" * 20,
}
FORMATS = {"photo.jpg": "image/jpeg", "drawing.png": "image/png", "anim.gif": "image/gif"}  # others: JPEG


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path_factory.mktemp("previews"), workers=2)
    s.init()
    s.start()
    with s.client() as c:
        assert c.request("MKCOL", f"{s.dav()}/pics").status_code == 201
        for name, make in SOURCES.items():
            assert c.put(f"{s.dav()}/pics/{name}", content=make()).status_code == 201
    yield s
    s.stop()


def cached(server: ServerProcess) -> list[Path]:
    return sorted(p for p in (server.root / "data" / "thumbnails").rglob("*") if p.is_file())


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_each_format_gives_an_image_of_the_snapped_size_then_comes_from_the_cache(server, name):
    with server.client() as c:
        url = f"{server.dav()}/pics/{name}"
        first = c.get(url, params={"preview": "1", "x": "36", "y": "36", "c": "etag", "scalingup": "0", "a": "1"})
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == FORMATS.get(name, "image/jpeg")
        image = pyvips.Image.new_from_buffer(first.content, "")
        assert (image.width, image.height) == (64, 64)  # 36 snaps to the 64x64 resolution
        stamp = {p: p.stat().st_mtime_ns for p in cached(server)}
        second = c.get(url, params={"preview": "1", "x": "36", "y": "36"})
        assert second.content == first.content
        assert {p: p.stat().st_mtime_ns for p in cached(server)} == stamp  # nothing rendered again
        assert c.get(url, params={"preview": "1", "x": "36", "y": "36"},
                     headers={"If-None-Match": first.headers["etag"]}).status_code == 304


def test_fit_keeps_the_aspect_and_sizes_snap_to_the_source(server):
    with server.client() as c:
        url = f"{server.dav()}/pics/photo.jpg"
        fit = pyvips.Image.new_from_buffer(c.get(url, params={"preview": "1", "x": "128", "y": "128",
                                                              "processor": "fit"}).content, "")
        assert (fit.width, fit.height) == (128, 85)
        big = pyvips.Image.new_from_buffer(c.get(url, params={"preview": "1", "x": "2000", "y": "2000"}).content, "")
        assert (big.width, big.height) == (600, 400)  # never larger than the source


def test_spaces_urls_and_public_links_have_previews(server):
    with server.client() as c:
        ocs = c.post(f"{server.base_url}/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json",
                     data={"path": "/pics", "shareType": "3", "permissions": "1", "password": "Pr3view-pass!"})
        assert ocs.status_code == 200, ocs.text
        token = ocs.json()["ocs"]["data"]["token"]
        r = c.request("PROPFIND", f"{server.dav()}/pics/photo.jpg", headers={"Depth": "0"})
        file_id = r.text.split("<oc:fileid>")[1].split("</oc:fileid>")[0]
        space = file_id.split("!")[0]
        assert c.get(f"{server.base_url}/dav/spaces/{space}/pics/photo.jpg?preview=1&x=32&y=32").status_code == 200
        assert c.get(f"{server.base_url}/dav/spaces/{file_id}?preview=1").status_code == 200
    with httpx.Client(auth=("public", "Pr3view-pass!"), timeout=30) as visitor:
        r = visitor.get(f"{server.base_url}/dav/public-files/{token}/photo.jpg?preview=1&x=32&y=32")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert visitor.head(f"{server.base_url}/dav/public-files/{token}/photo.jpg?preview=1").status_code == 200
    assert httpx.get(f"{server.base_url}/dav/public-files/{token}/photo.jpg?preview=1").status_code == 401


def test_bad_requests_get_the_errors_ocis_gives(server):
    with server.client() as c:
        pics = f"{server.dav()}/pics"
        assert c.put(f"{pics}/archive.zip", content=b"PK\x05\x06" + b"\x00" * 18).status_code == 201
        assert c.put(f"{pics}/broken.png", content=b"not a png at all").status_code == 201
        cases = [
            (f"{pics}/photo.jpg?preview=1&x=0&y=10", 400, b"Cannot set width of 0 or smaller!"),
            (f"{pics}/photo.jpg?preview=1&x=10&y=-1", 400, b"Cannot set height of 0 or smaller!"),
            (f"{pics}/photo.jpg?preview=1&x=ten", 400, b"Cannot set width"),
            (f"{pics}?preview=1", 400, b"Unsupported file type"),
            (f"{pics}/archive.zip?preview=1", 404, b"could not be located"),
            (f"{pics}/broken.png?preview=1", 404, b"could not be located"),
            (f"{pics}/missing.png?preview=1", 404, b"NotFound"),
        ]
        for url, status, text in cases:
            r = c.get(url)
            assert r.status_code == status, (url, r.status_code, r.text)
            assert text in r.content and b"Sabre\\DAV\\Exception" in r.content, (url, r.text)
        # preview=0 (or anything but 1) is a download
        assert c.get(f"{pics}/notes.txt?preview=0").content.startswith(b"first line")


def test_a_new_version_drops_the_old_previews_once_it_is_previewed(server):
    """Previews are keyed by content, so an old one is never served; it goes from the cache when
    the new content is first previewed (no upload has to wait for, or pay for, the clean-up)."""
    with server.client() as c:
        url = f"{server.dav()}/pics/changing.png"
        assert c.put(url, content=picture("png")).status_code == 201
        old = c.get(url, params={"preview": "1", "x": "16", "y": "16"}).content
        old_file = next(p for p in cached(server) if p.stat().st_size == len(old) and p.read_bytes() == old)
        assert c.put(url, content=picture("png", rgb=(250, 200, 0))).status_code == 204
        new = c.get(url, params={"preview": "1", "x": "16", "y": "16"}).content
        assert new != old
        assert not old_file.exists()
        assert [p.read_bytes() for p in old_file.parent.iterdir()] == [new]


def test_previews_of_a_purged_file_go(server):
    """The `thumbnails` group takes purges: a trashed file keeps its previews, a purged one not."""
    with server.client() as c:
        url = f"{server.dav()}/pics/purged.png"
        assert c.put(url, content=picture("png", rgb=(10, 200, 90))).status_code == 201
        image = c.get(url, params={"preview": "1", "x": "16", "y": "16"}).content
        node_dir = next(p for p in cached(server) if p.read_bytes() == image).parent
        assert c.delete(url).status_code == 204
        time.sleep(1)
        assert any(node_dir.iterdir())  # trashed: kept for a restore
        trash = f"{server.base_url}/remote.php/dav/trash-bin/einstein/"
        assert c.request("DELETE", trash).status_code == 204
        deadline = time.monotonic() + 10
        while node_dir.exists() and any(node_dir.iterdir()):
            assert time.monotonic() < deadline, "the purged file's previews stayed"
            time.sleep(0.05)


@pytest.mark.timeout(120)
def test_a_busy_server_answers_429_with_retry_after(tmp_path: Path):
    server = ServerProcess(tmp_path, workers=1, extra_env={"THUMBNAILS_MAX_CONCURRENT_REQUESTS": "1"})
    server.init()
    server.start()
    try:
        with server.client() as c:
            big = picture("jpg", 6000, 4000)
            assert c.put(f"{server.dav()}/big.jpg", content=big).status_code == 201
        results: list[httpx.Response] = []

        def ask(size: int) -> None:
            with server.client() as c:
                results.append(c.get(f"{server.dav()}/big.jpg", params={"preview": "1", "x": size, "y": size}))

        threads = [threading.Thread(target=ask, args=(100 + i,)) for i in range(6)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        statuses = sorted(r.status_code for r in results)
        assert 200 in statuses and 429 in statuses, statuses
        busy = next(r for r in results if r.status_code == 429)
        assert 1 <= int(busy.headers["retry-after"]) <= 14 and b"Rate limit exceeded" in busy.content
    finally:
        server.stop()


def test_previews_can_be_turned_off(tmp_path: Path):
    server = ServerProcess(tmp_path, extra_env={"OCIS_DISABLE_PREVIEWS": "true", "OCIS_EXCLUDE_RUN_SERVICES": "search"})
    server.init()
    server.start()
    try:
        with server.client() as c:
            assert c.put(f"{server.dav()}/p.png", content=picture("png")).status_code == 201
            assert c.get(f"{server.dav()}/p.png?preview=1").status_code == 404
            assert c.get(f"{server.dav()}/p.png").status_code == 200
    finally:
        server.stop()
