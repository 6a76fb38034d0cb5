"""rclone's webdav backend with vendor=owncloud (configured only through the environment)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import DEMO, ServerProcess
from tests.e2e.clients_util import need_binary, run, sha1_bytes, sha1_file, tree

pytestmark = pytest.mark.e2e

TIMEOUT = 120  # seconds for any single rclone call
# fail fast instead of retrying: a retried request would hide a server error
FLAGS = ["--retries", "1", "--low-level-retries", "1", "--contimeout", "15s", "--timeout", "60s"]
BIG_SIZE = 3 * 1024 * 1024 + 12345

# relative path -> content; folders are implied, plus the empty folders in EMPTY_DIRS
SMALL_FILES: dict[str, bytes] = {
    "a.txt": b"alpha\n",
    "Grüße · 日本語.txt": "Grüße aus Köln · 日本語のテキスト\n".encode(),
    "emoji 🎉 file.txt": "party 🎉\n".encode(),
    "spaces and (parens) & plus+.txt": b"special\n",
    "hash#name.txt": b"hash\n",
    "percent%20name.txt": b"percent\n",
    "semi;colon=equals&amp.txt": b"reserved\n",
    "empty.txt": b"",
    "sub/b.md": b"# b\n",
    "sub/deeper/deepest/c.json": b'{"c": 1}\n',
    "sub/ünïcødé dir/d 🐍.txt": b"dee\n",
}
EMPTY_DIRS = ["empty-dir"]


@pytest.fixture(scope="module")
def rclone_env(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    binary = need_binary("rclone")
    home = tmp_path_factory.mktemp("rclone-home")
    config = home / "rclone.conf"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
               RCLONE_CONFIG=str(config), RCLONE_CACHE_DIR=str(home / "cache"))
    obscured = run([binary, "obscure", DEMO["einstein"]], timeout=30, env=env)
    assert obscured.returncode == 0, obscured.stderr
    env.update(RCLONE_CONFIG_OC_TYPE="webdav", RCLONE_CONFIG_OC_URL=server.dav(),
               RCLONE_CONFIG_OC_VENDOR="owncloud", RCLONE_CONFIG_OC_USER="einstein",
               RCLONE_CONFIG_OC_PASS=obscured.stdout.strip())
    return env


class Rclone:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def _run(self, *args: str) -> tuple[str, str]:
        proc = run(["rclone", *FLAGS, *args], timeout=TIMEOUT, env=self.env)
        assert proc.returncode == 0, (
            f"rclone {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return proc.stdout, proc.stderr

    def __call__(self, *args: str) -> str:
        """Run one rclone command, which must exit 0; returns its stdout."""
        return self._run(*args)[0]

    def dump(self, *args: str) -> str:
        """Run with --dump headers and return the log, to see which requests rclone sent."""
        return self._run("--dump", "headers", *args)[1]

    def check(self, local: Path, remote: str, *extra: str) -> None:
        """`rclone check` must find every file matching, and (without --download) compare SHA-1 hashes."""
        log = self._run("check", *extra, str(local), remote)[1]
        count = sum(1 for p in local.rglob("*") if p.is_file())
        assert "0 differences found" in log and f"{count} matching files" in log, log[-3000:]
        assert "hashes could not be checked" not in log and "No common hash" not in log, log[-3000:]

    def lsjson(self, remote: str) -> dict[str, dict]:
        listing = json.loads(self("lsjson", "-R", "--hash", "--files-only", remote))
        return {e["Path"]: e for e in listing}


@pytest.fixture
def rclone(rclone_env: dict[str, str]) -> Rclone:
    return Rclone(rclone_env)


@pytest.fixture
def remote(folder: str, server: ServerProcess) -> str:
    """The per-test folder as an rclone remote path."""
    return "oc:" + folder[len(server.dav()) + 1:]


def make_tree(root: Path, *, big: bool) -> dict[str, int]:
    """Write the standard local tree; every file gets its own old, whole-second mtime. Returns path->mtime."""
    files = dict(SMALL_FILES)
    if big:
        files["big/three-mib.bin"] = os.urandom(BIG_SIZE)
    mtimes = {}
    base = int(dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.UTC).timestamp())
    for i, (rel, data) in enumerate(sorted(files.items())):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        mtimes[rel] = base + i * 86400 + i * 61
        os.utime(path, (mtimes[rel], mtimes[rel]))
    for rel in EMPTY_DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    return mtimes


def local_files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha1_file(p) for p in root.rglob("*") if p.is_file()}


def local_dirs(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


def server_files(server: ServerProcess, url: str) -> dict[str, dict]:
    with server.client() as client:
        return tree(client, url)


def parse_modtime(text: str) -> float:
    # rclone prints up to nanoseconds; datetime takes microseconds
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return dt.datetime.fromisoformat(text).timestamp()


def test_copy_check_hashes_and_modtimes(rclone: Rclone, remote: str, folder: str, server: ServerProcess,
                                        tmp_path: Path) -> None:
    local = tmp_path / "local"
    mtimes = make_tree(local, big=True)
    rclone("copy", "--create-empty-src-dirs", str(local), remote)

    # independent view: the server has exactly the local tree (folders included), same sizes and SHA-1s
    state = server_files(server, folder)
    want_files = local_files(local)
    assert {k for k, v in state.items() if v["type"] == "file"} == set(want_files)
    assert {k for k, v in state.items() if v["type"] == "dir"} == local_dirs(local)
    for rel, digest in want_files.items():
        assert state[rel]["size"] == (local / rel).stat().st_size, rel
        assert f"SHA1:{digest}" in state[rel]["checksums"], (rel, state[rel]["checksums"])

    rclone.check(local, remote)  # sizes and SHA-1 hashes
    rclone.check(local, remote, "--download")  # byte for byte

    listing = rclone.lsjson(remote)
    assert set(listing) == set(want_files)
    for rel, entry in listing.items():
        assert entry["Size"] == (local / rel).stat().st_size, rel
        assert (entry.get("Hashes") or {}).get("sha1") == want_files[rel], (rel, entry.get("Hashes"))
        assert abs(parse_modtime(entry["ModTime"]) - mtimes[rel]) <= 1, (rel, entry["ModTime"], mtimes[rel])


def test_server_side_operations_and_cat(rclone: Rclone, remote: str, folder: str, server: ServerProcess,
                                        tmp_path: Path) -> None:
    local = tmp_path / "local"
    make_tree(local, big=False)
    rclone("copy", str(local), remote)

    log = rclone.dump("copyto", f"{remote}/a.txt", f"{remote}/copy of a ✓.txt")
    assert re.search(r"DEBUG : COPY /remote\.php/dav/files/einstein/\S+/a\.txt HTTP/1\.1$", log, re.M), \
        "copyto did not use a server-side COPY:\n" + log[-3000:]
    log = rclone.dump("moveto", f"{remote}/copy of a ✓.txt", f"{remote}/sub/moved #1.txt")
    assert re.search(r"DEBUG : MOVE /remote\.php/dav/files/einstein/\S+ HTTP/1\.1$", log, re.M), \
        "moveto did not use a server-side MOVE:\n" + log[-3000:]

    state = server_files(server, folder)
    assert "copy of a ✓.txt" not in state
    assert "a.txt" in state
    assert "SHA1:" + sha1_bytes(b"alpha\n") in state["sub/moved #1.txt"]["checksums"]
    listing = rclone.lsjson(remote)
    assert listing["sub/moved #1.txt"]["Hashes"]["sha1"] == sha1_bytes(b"alpha\n")
    assert parse_modtime(listing["sub/moved #1.txt"]["ModTime"]) == parse_modtime(listing["a.txt"]["ModTime"])

    rclone("deletefile", f"{remote}/sub/moved #1.txt")
    assert "sub/moved #1.txt" not in server_files(server, folder)

    name = "Grüße · 日本語.txt"
    assert rclone("cat", f"{remote}/{name}") == SMALL_FILES[name].decode()
    with server.client() as client:
        assert client.get(f"{folder}/{quote(name)}").content == SMALL_FILES[name]


def test_sync_propagates_deletions(rclone: Rclone, remote: str, folder: str, server: ServerProcess,
                                   tmp_path: Path) -> None:
    local = tmp_path / "local"
    make_tree(local, big=False)
    rclone("sync", str(local), f"{remote}/mirror")
    rclone.check(local, f"{remote}/mirror")

    (local / "a.txt").unlink()
    (local / "hash#name.txt").unlink()
    for p in sorted((local / "sub" / "deeper").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (local / "sub" / "deeper").rmdir()
    (local / "sub" / "b.md").write_bytes(b"# b, changed locally\n")
    (local / "new ñ & co.txt").write_bytes(b"new\n")
    rclone("sync", str(local), f"{remote}/mirror")

    state = server_files(server, f"{folder}/mirror")
    server_set = {k for k, v in state.items() if v["type"] == "file"}
    assert server_set == set(local_files(local))
    assert "a.txt" not in state and "hash#name.txt" not in state
    assert "SHA1:" + sha1_bytes(b"# b, changed locally\n") in state["sub/b.md"]["checksums"]
    rclone.check(local, f"{remote}/mirror")
    rclone.check(local, f"{remote}/mirror", "--download")


def test_bisync_round_trip(rclone: Rclone, remote: str, folder: str, server: ServerProcess,
                           tmp_path: Path) -> None:
    local = tmp_path / "local"
    make_tree(local, big=True)
    workdir = str(tmp_path / "bisync")
    rclone("bisync", str(local), remote, "--resync", "--workdir", workdir)
    rclone.check(local, remote)

    # local changes
    (local / "a.txt").write_bytes(b"alpha\nalpha modified locally\n")
    (local / "hash#name.txt").unlink()
    (local / "sub" / "new-local ñ.txt").write_bytes(b"new local file\n")
    (local / "emoji 🎉 file.txt").rename(local / "emoji 🎉 renamed.txt")
    with (local / "big" / "three-mib.bin").open("ab") as fh:
        fh.write(os.urandom(4096))
    (local / "sub" / "deeper" / "deepest" / "c.json").write_bytes(b"local edit\n")  # edited on both sides
    # server changes, through plain WebDAV
    with server.client() as client:
        put = client.put(f"{folder}/{quote('sub/b.md')}", content=b"# b, modified on the server\n")
        assert put.status_code == 204, put.status_code
        assert client.delete(f"{folder}/{quote('percent%20name.txt')}").status_code == 204
        assert client.request("MKCOL", f"{folder}/remote-dir").status_code == 201
        put = client.put(f"{folder}/remote-dir/{quote('new-remote ü.txt')}",
                         content=b"created on the server\n")
        assert put.status_code == 201, put.status_code
        move = client.request("MOVE", f"{folder}/{quote('spaces and (parens) & plus+.txt')}",
                              headers={"Destination": f"{folder}/{quote('renamed on server ✓.txt')}"})
        assert move.status_code == 201, move.status_code
        put = client.put(f"{folder}/sub/deeper/deepest/c.json", content=b"server edit, longer\n")
        assert put.status_code == 204, put.status_code

    rclone("bisync", str(local), remote, "--workdir", workdir)

    # the server's changes arrived locally
    assert (local / "sub" / "b.md").read_bytes() == b"# b, modified on the server\n"
    assert not (local / "percent%20name.txt").exists()
    assert (local / "remote-dir" / "new-remote ü.txt").read_bytes() == b"created on the server\n"
    assert not (local / "spaces and (parens) & plus+.txt").exists()
    assert (local / "renamed on server ✓.txt").read_bytes() == b"special\n"
    # a file edited on both sides: rclone keeps both versions, on both sides
    conflict = sorted(p.name for p in (local / "sub" / "deeper" / "deepest").iterdir())
    assert len(conflict) == 2 and all(n.startswith("c.json") for n in conflict), conflict
    assert {(local / "sub" / "deeper" / "deepest" / n).read_bytes() for n in conflict} == {
        b"local edit\n", b"server edit, longer\n"}
    # the local changes arrived on the server
    state = server_files(server, folder)
    files = local_files(local)
    assert {k for k, v in state.items() if v["type"] == "file"} == set(files)
    for rel, digest in files.items():
        assert f"SHA1:{digest}" in state[rel]["checksums"], rel
    assert "hash#name.txt" not in state and "emoji 🎉 file.txt" not in state
    assert state["a.txt"]["size"] == len(b"alpha\nalpha modified locally\n")
    assert state["big/three-mib.bin"]["size"] == BIG_SIZE + 4096

    rclone("bisync", str(local), remote, "--workdir", workdir)  # nothing left to do
    rclone.check(local, remote)

    rclone("purge", remote)
    with server.client() as client:
        assert client.request("PROPFIND", folder, headers={"Depth": "0"}).status_code == 404
