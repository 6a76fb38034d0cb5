"""The real desktop sync engines (owncloudcmd 2.11, nextcloudcmd 3.7.3) through a full two-way round trip.

Per engine, against a fresh server: a mixed local tree (UTF-8/emoji names, URL-reserved characters, nested and
empty folders, an empty file, a 20 MiB random file) is synced up; then both sides change (edit, delete, file
rename, folder move, add, grow the 20 MiB file, a file edited on both sides) and a second sync must bring them
together, with a conflict copy for the both-sides edit and the local rename/move sent as MOVE (the server keeps
oc:fileid). A third sync must be a no-op, and a fourth into an empty folder must download everything.
Server state is checked independently with plain WebDAV (PROPFIND walk + GET + SHA1 of every file).
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DEMO, ServerProcess, running_server
from tests.e2e.clients_util import need_binary
from tests.e2e.davhelp import Dav, local_manifest, tree_diff

pytestmark = pytest.mark.e2e

USER = "einstein"
PASSWORD = DEMO[USER]
SYNC_TIMEOUT = 300  # seconds for one client run
BIG = "big/big20m.bin"
BIG_SIZE = 20 * 1024 * 1024
GROWTH = 4096
CONFLICT_RE = r"\(conflicted copy "

# Debian's owncloud-client-cmd ships no system exclude list and aborts without --exclude; this is a minimal one.
EXCLUDE_LIST = """\
*~
~$*
.~lock.*
*.part
*.swp
.DS_Store
.owncloudsync.log*
.sync_*.db*
._sync_*.db*
.csync_journal.db*
.sync-exclude.lst
"""

TREE_MTIME = calendar.timegm((2021, 3, 4, 5, 6, 7))  # old, distinct mtimes, so "mtime preserved" means something
A_MTIME = calendar.timegm((2020, 1, 2, 3, 4, 5))

TREE_DIRS = ["sub/deeper/deepest", "sub/ünïcødé dir", "big", "empty-dir"]
TREE_FILES: dict[str, bytes] = {
    "a.txt": b"alpha\n",
    "Grüße \u2013 日本語.txt": "Grüße aus Köln \u2013 日本語のテキスト\n".encode(),  # EN DASH
    "emoji 🎉 file.txt": b"party\n",
    "spaces and (parens) & plus+.txt": b"special\n",
    "hash#name.txt": b"hash\n",
    "percent%20name.txt": b"percent\n",
    "empty.txt": b"",
    "sub/b.md": b"# b\n",
    "sub/deeper/deepest/c.json": b'{"c": 1}\n',
    "sub/ünïcødé dir/d.txt": b"dee\n",
    "remote-mod.txt": b"to be modified on the server\n",
    "remote-del.txt": b"to be deleted on the server\n",
    "remote-ren.txt": b"to be renamed on the server\n",
    "both.txt": b"to be modified on both sides\n",
    "local-ren.txt": b"to be renamed locally\n",
    "local-del.txt": b"to be deleted locally\n",
}
RANDOM_FILES = {"sub/one-mib.bin": 1024 * 1024, BIG: BIG_SIZE}


@dataclass(frozen=True)
class Engine:
    binary: str
    package: str
    nextcloud: bool  # server root URL + --path /FOLDER, instead of BASE/remote.php/webdav/FOLDER

    def location_args(self, local: Path, base_url: str, folder: str) -> list[str]:
        if self.nextcloud:
            return ["--path", f"/{folder}", str(local), base_url]
        return [str(local), f"{base_url}/remote.php/webdav/{folder}"]


ENGINES = [Engine("owncloudcmd", "owncloud-client-cmd", nextcloud=False),
           Engine("nextcloudcmd", "nextcloud-desktop-cmd", nextcloud=True)]


class SyncClient:
    """Runs one sync engine with a private HOME (credentials from ~/.netrc, -n) and keeps every run's log."""

    def __init__(self, engine: Engine, server: ServerProcess, folder: str, work: Path,
                 password: str = PASSWORD) -> None:
        self.engine = engine
        self.binary = need_binary(engine.binary, engine.package)
        self.server = server
        self.folder = folder
        self.work = work
        self.runs = 0
        home = work / "home"
        (home / ".config").mkdir(parents=True)
        netrc = home / ".netrc"
        netrc.write_text(f"machine 127.0.0.1\nlogin {USER}\npassword {password}\n")
        netrc.chmod(0o600)
        self.exclude = work / "sync-exclude.lst"
        self.exclude.write_text(EXCLUDE_LIST)
        drop = ("OWNCLOUD_", "NEXTCLOUD_", "QT_")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(drop) and not k.lower().endswith("_proxy")}
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                        XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local" / "share"),
                        LANG="C.UTF-8", LC_ALL="C.UTF-8")

    def sync(self, local: Path) -> None:
        """One sync run; it must finish within SYNC_TIMEOUT and exit 0."""
        self.runs += 1
        log_path = self.work / f"sync{self.runs}.log"
        cmd = [self.binary, "--non-interactive", "--exclude", str(self.exclude), "--max-sync-retries", "3", "-n",
               *self.engine.location_args(local, self.server.base_url, self.folder)]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env, cwd=self.work, start_new_session=True)
            try:
                code: int | None = proc.wait(timeout=SYNC_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                code = None
        if code != 0:
            outcome = f"did not finish within {SYNC_TIMEOUT}s" if code is None else f"exited {code}"
            pytest.fail(f"{self.engine.binary} sync #{self.runs} {outcome}: {' '.join(cmd)}\n"
                        f"{log_tail(log_path)}\n--- server log (tail)\n{self.server_log_tail()}", pytrace=False)

    def server_log_tail(self, lines: int = 6, width: int = 2500) -> str:
        try:
            tail = self.server.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no server log)"
        return "\n".join(line if len(line) <= width else line[:width] + " [...]" for line in tail)


def log_tail(path: Path, problems: int = 25, last: int = 15) -> str:
    """The client's warnings/errors and the last lines of its log (without the per-folder exclude-list noise)."""
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
             if "exclude list file could not be read" not in line]
    bad = [line for line in lines if re.search(r"\[ (warning|critical|fatal)", line) or "ERROR" in line]
    return (f"--- client log {path}: warnings and errors (last {problems})\n" + "\n".join(bad[-problems:])
            + f"\n--- client log (last {last} lines)\n" + "\n".join(lines[-last:]))


class Checks:
    """Collects every failed expectation of one phase, so that a failure shows the whole picture."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.failures: list[str] = []

    def expect(self, condition: object, message: str) -> bool:
        if not condition:
            self.failures.append(message)
        return bool(condition)

    def same_trees(self, first: dict[str, dict], second: dict[str, dict], what: str, ignore: str | None = None,
                   names: tuple[str, str] = ("local", "on server")) -> None:
        diffs = tree_diff(first, second, ignore=ignore, names=names)
        self.expect(not diffs, f"{what}: {len(diffs)} differences: " + "; ".join(diffs[:15]))

    def content(self, manifest: dict[str, dict], side: str, path: str, data: bytes) -> None:
        entry = manifest.get(path)
        if self.expect(entry is not None, f"{side} has {path!r}"):
            self.expect(entry["type"] == "file" and entry["sha1"] == sha1(data),
                        f"{side} {path!r} has content {data!r}")

    def absent(self, manifest: dict[str, dict], side: str, path: str) -> None:
        self.expect(path not in manifest, f"{side} no longer has {path!r}")

    def done(self) -> None:
        if self.failures:
            pytest.fail(f"{self.phase}: {len(self.failures)} failed checks:\n  - " + "\n  - ".join(self.failures),
                        pytrace=False)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def make_tree(root: Path) -> None:
    """The standard mixed tree (the reference harness' mk_tree)."""
    for folder in TREE_DIRS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for rel, data in TREE_FILES.items():
        (root / rel).write_bytes(data)
    for rel, size in RANDOM_FILES.items():
        (root / rel).write_bytes(os.urandom(size))
    for rel in [*TREE_FILES, *RANDOM_FILES]:
        os.utime(root / rel, (TREE_MTIME, TREE_MTIME))
    os.utime(root / "a.txt", (A_MTIME, A_MTIME))


def local_changes(root: Path) -> None:
    """Edit, delete, rename a file, move a folder, add a file, grow the 20 MiB file, edit both.txt."""
    with (root / "a.txt").open("ab") as fh:
        fh.write(b"alpha modified locally\n")
    (root / "local-del.txt").unlink()
    (root / "local-ren.txt").rename(root / "local-renamed ✓.txt")
    (root / "sub" / "deeper").rename(root / "sub" / "deeper-moved")
    (root / "sub" / "new-local ñ.txt").write_bytes(b"new local file\n")
    with (root / BIG).open("ab") as fh:
        fh.write(os.urandom(GROWTH))
    (root / "both.txt").write_bytes(b"local edit of both.txt\n")


def server_changes(dav: Dav, folder: str) -> None:
    """The mirror image on the server, through plain WebDAV."""
    assert dav.put(f"{folder}/remote-mod.txt", b"modified on the server\n") == 204
    assert dav.delete(f"{folder}/remote-del.txt") == 204
    assert dav.move(f"{folder}/remote-ren.txt", f"{folder}/remote-renamed ✓.txt") == 201
    assert dav.mkcol(f"{folder}/remote-dir") == 201
    assert dav.put(f"{folder}/remote-dir/new-remote ü.txt", b"created on the server\n") == 201
    time.sleep(1)
    assert dav.put(f"{folder}/both.txt", b"server edit of both.txt\n") == 204


def check_server_files(checks: Checks, remote: dict[str, dict]) -> None:
    """Every server file is readable and PROPFIND's getcontentlength agrees with what GET returns."""
    for rel, entry in sorted(remote.items()):
        if entry["type"] != "file":
            continue
        checks.expect(entry["get_status"] == 200, f"GET {rel!r} -> {entry['get_status']}")
        checks.expect(entry["propsize"] == entry["size"],
                      f"{rel!r}: getcontentlength {entry['propsize']} but GET returned {entry['size']} bytes")


def check_ids_kept(checks: Checks, before: dict[str, dict], after: dict[str, dict], old: str, new: str,
                   what: str) -> None:
    for prop in ("fileid", "id"):
        was = before.get(old, {}).get(prop)
        now = after.get(new, {}).get(prop)
        if checks.expect(was, f"server reported oc:{prop} for {old!r} after sync #1"):
            checks.expect(was == now, f"oc:{prop} kept across {what} ({old!r} -> {new!r}): {was} -> {now}")


@pytest.fixture
def sync_server(tmp_path: Path) -> Iterator[ServerProcess]:
    root = tmp_path / "server"
    root.mkdir()
    with running_server(root, workers=2) as proc:
        yield proc


@pytest.mark.timeout(900)
@pytest.mark.parametrize("engine", ENGINES, ids=[e.binary for e in ENGINES])
def test_desktop_sync_round_trip(engine: Engine, sync_server: ServerProcess, tmp_path: Path) -> None:
    server = sync_server
    folder = f"sync-{engine.binary}"
    work = tmp_path / "work"
    work.mkdir()
    client = SyncClient(engine, server, folder, work)
    with server.client(USER) as http:
        dav = Dav(http, server.dav(USER))
        assert dav.mkcol(folder) == 201

        # 1. initial upload
        local = work / "local"
        make_tree(local)
        client.sync(local)
        local1 = local_manifest(local)
        remote1 = dav.manifest(folder)
        checks = Checks("after sync #1 (initial upload)")
        checks.expect(list(local.glob(".sync_*.db")) or list(local.glob("._sync_*.db")),
                      "the client created its sync journal in the local folder")
        checks.same_trees(local1, remote1, "local tree == server tree")
        check_server_files(checks, remote1)
        if checks.expect(BIG in remote1, f"server has {BIG}"):
            big = remote1[BIG]
            checks.expect(big["size"] == BIG_SIZE, f"server {BIG} has {BIG_SIZE} bytes (GET: {big['size']})")
            checks.expect(big["checksum_sha1"] == local1[BIG]["sha1"],
                          f"server oc:checksums SHA1 of {BIG} == local sha1 {local1[BIG]['sha1']} "
                          f"(oc:checksums: {big['entry'].checksums!r})")
        if checks.expect("a.txt" in remote1, "server has a.txt"):
            mtime = remote1["a.txt"]["entry"].mtime
            checks.expect(mtime is not None and abs(mtime - local1["a.txt"]["mtime"]) <= 1,
                          f"server getlastmodified of a.txt == local mtime {local1['a.txt']['mtime']} "
                          f"(got {remote1['a.txt']['lastmodified']!r})")
            checks.expect(local1["a.txt"]["mtime"] == A_MTIME, "the sync left the local mtime of a.txt alone")
        checks.done()

        # 2. changes on both sides
        time.sleep(1)
        local_changes(local)
        server_changes(dav, folder)
        client.sync(local)
        local2 = local_manifest(local)
        remote2 = dav.manifest(folder)
        checks = Checks("after sync #2 (changes on both sides)")
        check_server_files(checks, remote2)
        # the server's changes arrived locally
        checks.content(local2, "local", "remote-mod.txt", b"modified on the server\n")
        checks.absent(local2, "local", "remote-del.txt")
        checks.absent(local2, "local", "remote-ren.txt")
        checks.content(local2, "local", "remote-renamed ✓.txt", b"to be renamed on the server\n")
        checks.content(local2, "local", "remote-dir/new-remote ü.txt", b"created on the server\n")
        # the local changes arrived on the server
        checks.content(remote2, "server", "a.txt", b"alpha\nalpha modified locally\n")
        checks.absent(remote2, "server", "local-del.txt")
        checks.absent(remote2, "server", "local-ren.txt")
        checks.content(remote2, "server", "local-renamed ✓.txt", b"to be renamed locally\n")
        checks.absent(remote2, "server", "sub/deeper")
        checks.absent(remote2, "server", "sub/deeper/deepest/c.json")
        checks.content(remote2, "server", "sub/deeper-moved/deepest/c.json", b'{"c": 1}\n')
        checks.content(remote2, "server", "sub/new-local ñ.txt", b"new local file\n")
        if checks.expect(BIG in remote2, f"server has {BIG}"):
            checks.expect(remote2[BIG]["sha1"] == local2[BIG]["sha1"], f"server {BIG} == the grown local file")
            checks.expect(remote2[BIG]["size"] == BIG_SIZE + GROWTH,
                          f"server {BIG} grew by {GROWTH} bytes (GET: {remote2[BIG]['size']})")
        # the local rename and folder move went out as MOVE: the server kept the ids
        check_ids_kept(checks, remote1, remote2, "local-ren.txt", "local-renamed ✓.txt", "the local rename")
        check_ids_kept(checks, remote1, remote2, "sub/deeper", "sub/deeper-moved", "the local folder move")
        check_ids_kept(checks, remote1, remote2, "sub/deeper/deepest/c.json", "sub/deeper-moved/deepest/c.json",
                       "the local folder move (file inside)")
        # both.txt: the server version wins, the local edit is kept in a conflict copy
        checks.content(local2, "local", "both.txt", b"server edit of both.txt\n")
        checks.content(remote2, "server", "both.txt", b"server edit of both.txt\n")
        copies = [k for k in local2 if re.fullmatch(r"both \(conflicted copy .*\)\.txt", k)]
        if checks.expect(len(copies) == 1, f"local has one conflict copy of both.txt (found {copies})"):
            checks.content(local2, "local", copies[0], b"local edit of both.txt\n")
        checks.same_trees(local2, remote2, "apart from conflict copies, local tree == server tree",
                          ignore=CONFLICT_RE)
        checks.done()

        # 3. a no-op sync changes nothing
        etag_before = dav.etag(folder)
        client.sync(local)
        etag_after = dav.etag(folder)
        local3 = local_manifest(local)
        checks = Checks("after sync #3 (no-op)")
        checks.expect(etag_before and etag_before == etag_after,
                      f"remote folder etag unchanged: {etag_before} -> {etag_after}")
        checks.same_trees(local2, local3, "local tree unchanged", names=("before", "after"))
        checks.done()

        # 4. download into a fresh, empty folder
        fresh = work / "fresh"
        fresh.mkdir()
        client.sync(fresh)
        local4 = local_manifest(fresh)
        remote4 = dav.manifest(folder)
        checks = Checks("after sync #4 (download into an empty folder)")
        check_server_files(checks, remote4)
        checks.same_trees(local4, remote4, "fresh local tree == server tree")
        checks.done()
