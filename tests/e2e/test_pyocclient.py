"""PyPI pyocclient 0.6 (module ``owncloud``): login through OCS v1 XML capabilities, then its WebDAV file API:
mkdir, put_file_contents, put_file (plain PUT with X-OC-MTIME, and legacy chunking v1), get_file(_contents),
list, file_info, copy, move, delete. Results are also checked independently with plain WebDAV."""

from __future__ import annotations

import calendar
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import owncloud
import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.davhelp import Dav

pytestmark = pytest.mark.e2e

USER = "einstein"
MTIME = 1600000000


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def lastmodified_epoch(info: owncloud.FileInfo) -> int:
    return calendar.timegm(info.get_last_modified().timetuple())  # the header is GMT; pyocclient drops the zone


@pytest.fixture
def oc(server: ServerProcess) -> Iterator[owncloud.Client]:
    client = owncloud.Client(server.base_url)
    client.login(USER, DEMO[USER])
    yield client
    client.logout()


@pytest.fixture
def dav(server: ServerProcess) -> Iterator[Dav]:
    with server.client(USER) as http:
        yield Dav(http, server.dav(USER))


@pytest.fixture
def remote(oc: owncloud.Client, request: pytest.FixtureRequest) -> str:
    """A fresh folder for one test, created with pyocclient; its path (leading slash, no trailing slash)."""
    path = f"/pyoc-{request.node.name[:40]}-{time.time_ns()}"
    assert oc.mkdir(path) is True
    return path


def names(listing: list[owncloud.FileInfo]) -> dict[str, str]:
    return {info.get_name(): ("dir" if info.is_dir() else "file") for info in listing}


@pytest.mark.timeout(60)
def test_login_capabilities_and_bad_password(server: ServerProcess, oc: owncloud.Client) -> None:
    caps = oc.get_capabilities()
    assert "core" in caps and "files" in caps, sorted(caps)
    assert oc.get_version(), "OCS capabilities carry data/version/string"
    # capabilities are anonymous (as in oCIS), so a wrong password shows only on the first WebDAV request
    wrong = owncloud.Client(server.base_url)
    wrong.login(USER, "not-the-password")
    with pytest.raises(owncloud.HTTPResponseError) as exc:
        wrong.list("/")
    assert exc.value.status_code == 401


@pytest.mark.timeout(120)
def test_mkdir_put_get_list_info(oc: owncloud.Client, dav: Dav, remote: str, tmp_path: Path) -> None:
    assert oc.mkdir(f"{remote}/sub/") is True
    assert oc.mkdir(f"{remote}/sub/deeper ü & #1/") is True
    with pytest.raises(owncloud.HTTPResponseError) as exc:
        oc.mkdir(f"{remote}/sub/")
    assert exc.value.status_code == 405, "MKCOL on an existing folder"

    text = "Grüße \u2013 日本語 🎉\n".encode()  # EN DASH
    assert oc.put_file_contents(f"{remote}/Grüße 日本語 🎉.txt", text) is True
    assert oc.get_file_contents(f"{remote}/Grüße 日本語 🎉.txt") == text
    assert oc.put_file_contents(f"{remote}/empty.txt", b"") is True
    assert oc.get_file_contents(f"{remote}/empty.txt") == b""
    assert oc.put_file_contents(f"{remote}/Grüße 日本語 🎉.txt", b"overwritten\n") is True
    assert oc.get_file_contents(f"{remote}/Grüße 日本語 🎉.txt") == b"overwritten\n"

    # put_file of a small file: a plain PUT with X-OC-MTIME (below the chunk size even with chunked=True)
    small = tmp_path / "small.txt"
    small.write_bytes(b"small file\n")
    os.utime(small, (MTIME, MTIME))
    target = f"{remote}/sub/deeper ü & #1/small.txt"
    assert oc.put_file(target, str(small)) is True
    info = oc.file_info(target)
    assert info is not None and not info.is_dir()
    assert info.get_name() == "small.txt"
    assert info.get_size() == 11
    assert info.get_etag()
    assert lastmodified_epoch(info) == MTIME, "X-OC-MTIME sets getlastmodified"
    # a target ending in "/" means "into this folder, same name"
    assert oc.put_file(f"{remote}/sub/", str(small)) is True
    got = tmp_path / "got.txt"
    assert oc.get_file(f"{remote}/sub/small.txt", str(got)) is True
    assert got.read_bytes() == b"small file\n"

    assert names(oc.list(remote)) == {"Grüße 日本語 🎉.txt": "file", "empty.txt": "file", "sub": "dir"}
    assert names(oc.list(f"{remote}/sub")) == {"deeper ü & #1": "dir", "small.txt": "file"}
    folder = oc.file_info(f"{remote}/sub/deeper ü & #1")
    assert folder is not None and folder.is_dir()
    # independently: the same bytes, and the server's own checksum agrees
    entry = dav.stat(target)
    assert entry.sha1 == sha1(b"small file\n"), entry.checksums


@pytest.mark.timeout(180)
def test_put_get_20_mib_single_put(oc: owncloud.Client, dav: Dav, remote: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = os.urandom(20 * 1024 * 1024)
    big.write_bytes(data)
    os.utime(big, (MTIME, MTIME))
    assert oc.put_file(f"{remote}/big.bin", str(big), chunked=False) is True
    got = tmp_path / "got.bin"
    assert oc.get_file(f"{remote}/big.bin", str(got)) is True
    assert sha1(got.read_bytes()) == sha1(data)
    info = oc.file_info(f"{remote}/big.bin")
    assert info.get_size() == len(data)
    assert lastmodified_epoch(info) == MTIME
    assert dav.stat(f"{remote}/big.bin").sha1 == sha1(data)


@pytest.mark.timeout(180)
def test_put_file_chunked_v1(oc: owncloud.Client, dav: Dav, remote: str, tmp_path: Path) -> None:
    """pyocclient uploads files larger than chunk_size with legacy chunking v1: PUT
    <name>-chunking-<transfer id>-<count>-<index> with OC-Chunked: 1; the server assembles the last one."""
    chunk = 1024 * 1024
    source = tmp_path / "chunked.bin"
    data = os.urandom(5 * chunk + 12345)  # six chunks, the last one short
    source.write_bytes(data)
    os.utime(source, (MTIME, MTIME))
    target = f"{remote}/chunked ü.bin"
    assert oc.put_file(target, str(source), chunked=True, chunk_size=chunk) is True

    assert names(oc.list(remote)) == {"chunked ü.bin": "file"}, "only the assembled file, no chunk leftovers"
    got = tmp_path / "got.bin"
    assert oc.get_file(target, str(got)) is True
    assert got.read_bytes() == data
    info = oc.file_info(target)
    assert info.get_size() == len(data)
    assert lastmodified_epoch(info) == MTIME, "X-OC-MTIME of the chunks sets the assembled file's mtime"
    first = dav.stat(target)
    assert first.sha1 == sha1(data), first.checksums

    # a second chunked upload replaces the content of the same file (same file id)
    time.sleep(1.1)  # pyocclient's transfer id is int(time.time())
    data2 = os.urandom(3 * chunk + 1)
    source.write_bytes(data2)
    assert oc.put_file(target, str(source), chunked=True, chunk_size=chunk) is True
    assert oc.get_file_contents(target) == data2
    assert names(oc.list(remote)) == {"chunked ü.bin": "file"}
    second = dav.stat(target)
    assert second.sha1 == sha1(data2), second.checksums
    assert second.fileid == first.fileid, "overwrite keeps oc:fileid"
    assert second.etag != first.etag


@pytest.mark.timeout(120)
def test_copy_move_delete(oc: owncloud.Client, dav: Dav, remote: str) -> None:
    assert oc.mkdir(f"{remote}/src") is True
    assert oc.put_file_contents(f"{remote}/src/a.txt", b"alpha\n") is True
    assert oc.put_file_contents(f"{remote}/src/hash#b.txt", b"beta\n") is True
    fileid = dav.stat(f"{remote}/src/a.txt").fileid

    # copy a file and a folder
    assert oc.copy(f"{remote}/src/a.txt", f"{remote}/a copy ✓.txt") is True
    assert oc.get_file_contents(f"{remote}/a copy ✓.txt") == b"alpha\n"
    assert oc.get_file_contents(f"{remote}/src/a.txt") == b"alpha\n"
    assert dav.stat(f"{remote}/a copy ✓.txt").fileid != fileid, "a copy is a new file"
    assert oc.copy(f"{remote}/src", f"{remote}/src copy") is True
    assert names(oc.list(f"{remote}/src copy")) == {"a.txt": "file", "hash#b.txt": "file"}
    assert oc.get_file_contents(f"{remote}/src copy/hash#b.txt") == b"beta\n"

    # move a file (the id goes with it), into a folder with a trailing "/", and a whole folder
    assert oc.move(f"{remote}/src/a.txt", f"{remote}/moved ü.txt") is True
    assert oc.get_file_contents(f"{remote}/moved ü.txt") == b"alpha\n"
    assert dav.stat(f"{remote}/moved ü.txt").fileid == fileid
    assert oc.move(f"{remote}/moved ü.txt", f"{remote}/src copy/") is True
    assert oc.get_file_contents(f"{remote}/src copy/moved ü.txt") == b"alpha\n"
    assert oc.move(f"{remote}/src copy", f"{remote}/src moved") is True
    assert names(oc.list(f"{remote}/src moved")) == {"a.txt": "file", "hash#b.txt": "file", "moved ü.txt": "file"}
    assert names(oc.list(remote)) == {"src": "dir", "src moved": "dir", "a copy ✓.txt": "file"}
    assert names(oc.list(f"{remote}/src")) == {"hash#b.txt": "file"}

    # delete a file and a folder
    assert oc.delete(f"{remote}/a copy ✓.txt") is True
    assert oc.delete(f"{remote}/src moved") is True
    assert names(oc.list(remote)) == {"src": "dir"}
    for gone in (f"{remote}/a copy ✓.txt", f"{remote}/src moved", f"{remote}/src moved/a.txt"):
        with pytest.raises(owncloud.HTTPResponseError) as exc:
            oc.file_info(gone)
        assert exc.value.status_code == 404, gone
    with pytest.raises(owncloud.HTTPResponseError) as exc:
        oc.get_file_contents(f"{remote}/src moved/a.txt")
    assert exc.value.status_code == 404
    assert oc.delete(remote) is True


@pytest.mark.timeout(60)
def test_user_and_group_shares(server: ServerProcess, oc: owncloud.Client, remote: str) -> None:
    """Share operations by id work because share ids are integers (pyocclient refuses others)."""
    assert oc.put_file_contents(f"{remote}/a.txt", b"shared content") is True
    share = oc.share_file_with_user(remote, "marie", perms=owncloud.Client.OCS_PERMISSION_READ)
    share_id = share.get_id()
    assert isinstance(share_id, int) and share.get_permissions() == 1
    assert oc.is_shared(remote) is True
    listed = oc.get_shares(remote)
    assert [(s.get_id(), s.get_share_with(), s.get_share_type()) for s in listed] == [(share_id, "marie", 0)]
    assert oc.get_share(share_id).get_share_with_displayname()
    assert oc.update_share(share_id, perms=owncloud.Client.OCS_PERMISSION_ALL - 16) is True  # 15
    assert oc.get_share(share_id).get_permissions() == 15

    marie = owncloud.Client(server.base_url)
    marie.login("marie", DEMO["marie"])
    received = marie.get_shares("/", shared_with_me=True)
    name = remote.strip("/")
    assert [s.get_path() for s in received if s.get_id() == share_id] == [f"/Shares/{name}"]
    assert marie.get_file_contents(f"/Shares/{name}/a.txt") == b"shared content"
    assert marie.put_file_contents(f"/Shares/{name}/from-marie.txt", b"hello back") is True
    assert oc.get_file_contents(f"{remote}/from-marie.txt") == b"hello back"

    group = oc.share_file_with_group(f"{remote}/a.txt", "physics-lovers", perms=1)
    assert isinstance(group.get_id(), int)
    assert oc.delete_share(group.get_id())
    assert oc.delete_share(share_id)
    assert oc.is_shared(remote) is False
    with pytest.raises(owncloud.HTTPResponseError):
        marie.get_file_contents(f"/Shares/{name}/a.txt")
    marie.logout()


@pytest.mark.timeout(60)
def test_link_share_create_list_update_delete(server: ServerProcess, oc: owncloud.Client, remote: str) -> None:
    assert oc.put_file_contents(f"{remote}/in-link.txt", b"for everybody with the password") is True
    link = oc.share_file_with_link(remote, password="link password", name="harness link")
    link_id = link.get_id()
    assert isinstance(link_id, int) and link.get_token() and link.get_link().endswith(f"/s/{link.get_token()}")
    assert link_id in [s.get_id() for s in oc.get_shares(remote)]
    assert oc.is_shared(remote) is True
    assert oc.update_share(link_id, perms=15) is True
    assert oc.get_share(link_id).get_permissions() == 15
    with httpx.Client(auth=("public", "link password"), timeout=30) as visitor:
        got = visitor.get(f"{server.base_url}/dav/public-files/{link.get_token()}/in-link.txt")
        assert got.status_code == 200 and got.content == b"for everybody with the password"
    assert oc.delete_share(link_id)
    assert oc.is_shared(remote) is False
