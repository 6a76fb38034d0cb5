"""Crash safety: SIGKILL the whole server at random moments during PUT, MOVE, COPY, DELETE, MKCOL and
restores from the trash bin (MOVE out of /dav/trash-bin of an item the test deleted), restart it,
and require that every file is either in its old or its new state (byte-exact), never a mix, and
that `infiniscale storage check` finds the storage consistent.

The test keeps a model of the expected tree. Each round picks one valid operation, starts it in a
thread and kills the server (every process of its group) after a random delay, tuned from the
durations observed so far so that kills land before, during and after the operation. After the
restart (which repairs the storage) the whole tree is listed and must equal exactly the old or the
new model; an operation whose success response arrived must be in its new state. The touched files
are downloaded and compared byte by byte; every ROUNDS_PER_CHECK rounds every file is downloaded,
the server is stopped cleanly and `storage check` must exit 0.

INFINISCALE_CRASH_SEED=<seed printed at the start> replays the same random choices (which state a
kill leaves still depends on timing); INFINISCALE_CRASH_ROUNDS changes the number of kills (210).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess

pytestmark = pytest.mark.e2e

ROUNDS = int(os.environ.get("INFINISCALE_CRASH_ROUNDS", "210"))
ROUNDS_PER_CHECK = 20
MAX_FILES = 45
MAX_DEPTH = 4
USER = "einstein"

DAV_NS = "{DAV:}"
OC_NS = "{http://owncloud.org/ns}"
LISTING_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    b"<d:prop><d:resourcetype/><d:getcontentlength/><oc:checksums/><oc:size/></d:prop></d:propfind>"
)


# ------------------------------------------------------------------------------------------- model


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


class Blob(bytes):
    """File content that hashes itself once."""

    @functools.cached_property
    def sha1(self) -> str:
        return sha1(self)


@dataclass
class Tree:
    """The expected content of the user's space: file path -> bytes, and the set of folder paths.
    Paths are relative to the space root, without leading or trailing slash."""

    files: dict[str, Blob] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)

    def copy(self) -> Tree:
        return Tree(dict(self.files), set(self.folders))

    def snapshot(self) -> tuple[dict[str, tuple[int, str]], frozenset[str]]:
        return {p: (len(c), c.sha1) for p, c in self.files.items()}, frozenset(self.folders)

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.folders

    def is_folder(self, path: str) -> bool:
        return path == "" or path in self.folders

    def under(self, path: str) -> tuple[list[str], list[str]]:
        """Files and folders of the subtree at `path` (itself included)."""
        prefix = path + "/"
        files = [p for p in self.files if p == path or p.startswith(prefix)]
        folders = [p for p in self.folders if p == path or p.startswith(prefix)]
        return files, folders

    def remove(self, path: str) -> None:
        files, folders = self.under(path)
        for p in files:
            del self.files[p]
        for p in folders:
            self.folders.discard(p)

    def graft(self, src: str, dst: str, source: Tree) -> None:
        """Puts a copy of `source`'s subtree at `src` at `dst` (replacing what is there)."""
        self.remove(dst)
        files, folders = source.under(src)
        for p in files:
            self.files[dst + p[len(src):]] = source.files[p]
        for p in folders:
            self.folders.add(dst + p[len(src):])


def depth(path: str) -> int:
    return 0 if path == "" else path.count("/") + 1


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def is_within(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor + "/")


# ------------------------------------------------------------------------------------------- server


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count: they hold no
    sockets, locks or files, and PID 1 here reaps them only about once a second)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def where_threads_wait(pgid: int) -> str:
    """Every thread of the group's processes with the kernel function it sleeps in (wchan) and
    its kernel stack where readable: enough to tell a lock wait from a stuck socket."""
    lines = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if not entry.isdigit() or int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")[:120]
        except (OSError, IndexError, ValueError):
            continue
        lines.append(f"pid {entry} ({fields[0]}): {cmd}")
        for tid in sorted(os.listdir(f"/proc/{entry}/task")):
            parts = []
            for name in ("comm", "wchan", "stack"):
                with contextlib.suppress(OSError), open(f"/proc/{entry}/task/{tid}/{name}") as fh:
                    parts.append(fh.read().strip().replace("\n", " | ")[:300])
            lines.append(f"  tid {tid}: " + " ; ".join(parts))
    return "\n".join(lines)


def hard_kill(server: ServerProcess) -> None:
    """SIGKILL of every process of the server's group, returning as soon as none runs any more."""
    proc = server.proc
    assert proc is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while group_alive(proc.pid):
        assert time.monotonic() < deadline, "server processes survived SIGKILL"
        time.sleep(0.003)
    server.proc = None


def graceful_stop(server: ServerProcess) -> None:
    """SIGTERM to the group (a clean shutdown), returning as soon as no process of it runs."""
    proc = server.proc
    assert proc is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stuck = where_threads_wait(proc.pid)  # before the kill: what kept the server from stopping
        hard_kill(server)
        raise AssertionError(f"the server did not stop within 30 s of SIGTERM; its threads:\n{stuck}") from None
    deadline = time.monotonic() + 30
    while group_alive(proc.pid):
        assert time.monotonic() < deadline, "server processes survived SIGTERM"
        time.sleep(0.003)
    server.proc = None


def pending_journal(server: ServerProcess) -> int:
    """Intents of multi-step operations left in the spaces' journals right after a kill."""
    spaces = server.root / "data" / "storage" / "users" / "spaces"
    return sum(len(list((space / "journal").glob("*"))) for space in spaces.glob("*/*"))


class Dav:
    def __init__(self, server: ServerProcess) -> None:
        self.base = server.dav(USER)
        self.prefix = unquote(urlsplit(self.base).path).rstrip("/") + "/"

    def url(self, path: str) -> str:
        return f"{self.base}/{quote(path)}" if path else f"{self.base}/"

    def trash_url(self, key: str = "") -> str:
        return self.base.replace("/dav/files/", "/dav/trash-bin/") + "/" + key

    def rel(self, href: str) -> str:
        path = unquote(urlsplit(href).path)
        assert path.startswith(self.prefix) or path + "/" == self.prefix, href
        return path[len(self.prefix):].strip("/")


def client() -> httpx.Client:
    return httpx.Client(auth=(USER, DEMO[USER]), timeout=60)


@dataclass
class Listing:
    files: dict[str, tuple[int, str]]  # path -> (size, sha1 the server reports)
    folders: set[str]
    folder_sizes: dict[str, int]  # path ("" = root) -> oc:size


def list_tree(http: httpx.Client, dav: Dav) -> Listing:
    """The whole tree by PROPFIND Depth 1, folder by folder."""
    listing = Listing({}, set(), {})
    queue = [""]
    while queue:
        folder = queue.pop()
        resp = http.request("PROPFIND", dav.url(folder), headers={"Depth": "1"}, content=LISTING_BODY)
        assert resp.status_code == 207, f"PROPFIND {folder!r}: {resp.status_code} {resp.text[:500]}"
        for item in ElementTree.fromstring(resp.content).iter(f"{DAV_NS}response"):
            path = dav.rel(item.findtext(f"{DAV_NS}href") or "")
            collection = item.find(f".//{DAV_NS}resourcetype/{DAV_NS}collection") is not None
            size_text = item.findtext(f".//{OC_NS}size")
            if path == folder:
                assert collection, f"{folder!r} listed itself as a file"
                listing.folder_sizes[folder] = int(size_text or -1)
                continue
            if collection:
                assert path not in listing.folders, f"folder {path!r} listed twice"
                listing.folders.add(path)
                queue.append(path)
                continue
            assert path not in listing.files, f"file {path!r} listed twice"
            checksums = item.findtext(f".//{OC_NS}checksum") or ""
            digest = next((c[5:].lower() for c in checksums.split() if c.upper().startswith("SHA1:")), "")
            listing.files[path] = (int(item.findtext(f".//{DAV_NS}getcontentlength") or -1), digest)
    return listing


# ------------------------------------------------------------------------------------------- operations


@dataclass
class Trashed:
    """A deleted file or folder, as the test knows it: where it was and what it held."""

    path: str
    content: Tree  # the subtree, at its original paths
    key: str = ""  # its trash-bin key, looked up when a restore is planned


@dataclass
class Operation:
    kind: str  # PUT-new, PUT-overwrite, MKCOL, DELETE, MOVE, COPY, RESTORE
    method: str
    path: str
    after: Tree
    touched: list[str]  # roots of the subtrees the operation changes
    dest: str | None = None
    content: Blob | None = None
    streamed: str = ""  # "" (one buffer), "length" (slow stream with Content-Length), "chunked"
    overwrite: bool = False
    sent: int = 0  # body bytes handed to the connection so far (streamed PUTs)
    restored: Trashed | None = None  # RESTORE: the trash item put back at `dest`

    def timing_key(self) -> str:
        if self.content is None:
            return self.kind
        size = len(self.content)
        bucket = "tiny" if size < 4096 else "small" if size < 300_000 else "large"
        return f"PUT-{bucket}-{self.streamed or 'buffer'}"

    def describe(self) -> str:
        extra = ""
        if self.content is not None:
            extra = f" ({len(self.content)} bytes, {self.streamed or 'buffer'})"
        if self.dest is not None:
            extra = f" -> {self.dest!r} (overwrite {self.overwrite})"
        return f"{self.kind} {self.path!r}{extra}"


class Planner:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counter = 0

    def name(self, prefix: str, ext: str = "") -> str:
        self.counter += 1
        style = self.rng.random()
        if style < 0.15:
            return f"{prefix} ü ß {self.counter}{ext}"  # spaces and non-ASCII in URLs
        if style < 0.2:
            return f"{prefix}#%&+{self.counter}{ext}"  # characters that need percent-encoding
        return f"{prefix}{self.counter}{ext}"

    def content(self, tag: str) -> Blob:
        roll = self.rng.random()
        if roll < 0.08:
            size = 0
        elif roll < 0.35:
            size = self.rng.randrange(1, 4096)
        elif roll < 0.6:
            size = self.rng.randrange(4096, 300_000)
        else:
            size = self.rng.randrange(512 << 10, 4 << 20)
        head = f"{tag}\n".encode()
        return Blob((head + self.rng.randbytes(max(0, size - len(head))))[:size])

    def plan(self, tree: Tree, round_no: int, restorable: Sequence[Trashed] = ()) -> Operation:
        rng = self.rng
        folders = ["", *sorted(tree.folders)]
        files = sorted(tree.files)
        weights = {"PUT-new": 26, "PUT-overwrite": 18, "MKCOL": 10, "DELETE": 8, "MOVE": 20, "COPY": 16,
                   "RESTORE": 8 if restorable else 0}
        if len(files) >= MAX_FILES:
            weights.update({"PUT-new": 0, "COPY": 0, "DELETE": 40})
        if not files:
            weights["PUT-overwrite"] = 0
        if not files and not tree.folders:
            weights.update({"DELETE": 0, "MOVE": 0, "COPY": 0})
        kind = rng.choices(list(weights), weights=list(weights.values()))[0]
        if kind == "RESTORE":
            item = rng.choice(list(restorable))
            after = tree.copy()
            after.files.update(item.content.files)
            after.folders |= item.content.folders
            return Operation(kind, "MOVE", item.key, after, [item.path], dest=item.path, restored=item)
        if kind in ("PUT-new", "PUT-overwrite"):
            new = kind == "PUT-new"
            path = join(rng.choice(folders), self.name("f", ".bin")) if new else rng.choice(files)
            content = self.content(f"round {round_no} {path}")
            after = tree.copy()
            after.files[path] = content
            streamed = "" if len(content) < 300_000 else rng.choice(["", "length", "chunked"])
            return Operation(kind, "PUT", path, after, [path], content=content, streamed=streamed)
        if kind == "MKCOL":
            parent = rng.choice([f for f in folders if depth(f) < MAX_DEPTH])
            path = join(parent, self.name("d"))
            after = tree.copy()
            after.folders.add(path)
            return Operation(kind, "MKCOL", path, after, [path])
        if files and (not tree.folders or rng.random() < 0.6):
            path = rng.choice(files)
        else:
            path = rng.choice(sorted(tree.folders))
        if kind == "DELETE":
            after = tree.copy()
            after.remove(path)
            return Operation(kind, "DELETE", path, after, [path])
        # MOVE or COPY: to a new name, or over an existing node of the same type
        src_folder = tree.is_folder(path)
        src_height = max(depth(p) for p in tree.under(path)[1]) - depth(path) if src_folder else 0
        parents = [f for f in folders if not (src_folder and is_within(f, path))
                   and depth(f) + 1 + src_height <= MAX_DEPTH + 1]
        # a victim is replaced by the source's subtree, so it obeys the same depth limit as a parent
        victims = [p for p in (sorted(tree.folders) if src_folder else files)
                   if p != path and not is_within(p, path) and not is_within(path, p)
                   and depth(p) + src_height <= MAX_DEPTH + 1]
        if victims and rng.random() < 0.25:
            dest = rng.choice(victims)
        else:
            ext = "" if src_folder else ".bin"
            dest = join(rng.choice(parents), self.name("m" if kind == "MOVE" else "c", ext))
        after = tree.copy()
        after.graft(path, dest, tree)
        if kind == "MOVE":
            after.remove(path)
        overwrite = tree.exists(dest)
        return Operation(kind, kind, path, after, [path, dest], dest=dest, overwrite=overwrite)


def send(http: httpx.Client, dav: Dav, op: Operation) -> httpx.Response:
    if op.method == "PUT":
        assert op.content is not None
        data = op.content
        if not op.streamed:
            return http.put(dav.url(op.path), content=data)

        def slow() -> Iterator[bytes]:
            for start in range(0, len(data), 128 << 10):
                chunk = data[start:start + (128 << 10)]
                yield chunk
                op.sent += len(chunk)
                time.sleep(0.0005)

        headers = {"Content-Length": str(len(data))} if op.streamed == "length" else {}
        return http.put(dav.url(op.path), content=slow(), headers=headers)
    if op.kind == "RESTORE":
        assert op.dest is not None
        return http.request("MOVE", dav.trash_url(op.path), headers={"Destination": dav.url(op.dest)})
    if op.method in ("MOVE", "COPY"):
        assert op.dest is not None
        return http.request(op.method, dav.url(op.path),
                            headers={"Destination": dav.url(op.dest), "Overwrite": "T"})
    return http.request(op.method, dav.url(op.path))


EXPECTED_STATUS = {"PUT-new": 201, "PUT-overwrite": 204, "MKCOL": 201, "DELETE": 204, "RESTORE": 201}


# ------------------------------------------------------------------------------------------- the test


class CrashRun:
    def __init__(self, server: ServerProcess, seed: int) -> None:
        self.server = server
        self.seed = seed
        self.rng = random.Random(seed)
        self.planner = Planner(self.rng)
        self.dav = Dav(server)
        self.tree = Tree()
        self.estimates: dict[str, float] = {}
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.kills = 0
        self.mid_upload_kills = 0
        self.journal_kills = 0
        self.unacked_new = 0
        self.checks = 0
        self.log: list[str] = []
        self.trash: list[Trashed] = []  # deletions the test can restore, oldest first

    def where(self) -> str:
        return f"(seed {self.seed}, kill {self.kills}; last operations: {self.log[-3:]})"

    def learn(self, key: str, delay: float, duration: float | None) -> None:
        """Keeps an estimate of each kind of operation's duration: the running mean of complete
        ones, raised whenever a kill after `delay` still found the operation unfinished."""
        est = self.estimates.get(key, 0.02)
        if duration is not None:
            self.estimates[key] = 0.7 * est + 0.3 * duration
        else:
            self.estimates[key] = max(est, 1.25 * delay)

    def delay_for(self, op: Operation) -> float:
        est = self.estimates.get(op.timing_key(), 0.02)
        roll = self.rng.random()
        if roll < 0.08:
            return 0.0
        if roll < 0.85:
            return self.rng.uniform(0, 1.15 * est)
        return self.rng.uniform(1.15 * est, 2.5 * est)

    def restorable(self) -> list[Trashed]:
        """Tracked deletions that can go back where they were (the place free, its folder there),
        with their trash keys; only those whose original place no other trash item shares, so
        the key is certain."""
        if not self.trash:
            return []
        with client() as http:
            resp = http.request("PROPFIND", self.dav.trash_url(), headers={"Depth": "1"})
        assert resp.status_code == 207, resp.text[:500]
        keys: dict[str, list[str]] = {}
        for item in ElementTree.fromstring(resp.content).iter(f"{DAV_NS}response"):
            location = item.findtext(f".//{OC_NS}trashbin-original-location")
            if location is not None:
                href = (item.findtext(f"{DAV_NS}href") or "").rstrip("/")
                keys.setdefault(location, []).append(href.rsplit("/", 1)[1])
        tracked = Counter(t.path for t in self.trash)
        found = []
        for entry in self.trash:
            parent = entry.path.rpartition("/")[0]
            if (len(keys.get(entry.path, [])) == 1 and tracked[entry.path] == 1 and not self.tree.exists(entry.path)
                    and self.tree.is_folder(parent)):
                entry.key = keys[entry.path][0]
                found.append(entry)
        return found

    def crash_round(self, round_no: int) -> None:
        restorable = self.restorable()
        op = self.planner.plan(self.tree, round_no, restorable)
        while op.after.snapshot() == self.tree.snapshot():  # e.g. a COPY onto an identical copy
            op = self.planner.plan(self.tree, round_no, restorable)
        result: dict[str, object] = {}

        http = client()  # built beforehand: creating a client takes milliseconds (TLS context)

        def run() -> None:
            started = time.monotonic()
            try:
                resp = send(http, self.dav, op)
                result["status"] = resp.status_code
                result["body"] = resp.text[:500]
                result["duration"] = time.monotonic() - started
            except httpx.HTTPError as exc:
                result["error"] = repr(exc)

        delay = self.delay_for(op)
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        time.sleep(delay)
        sent = op.sent
        hard_kill(self.server)
        self.kills += 1
        worker.join(timeout=60)
        assert not worker.is_alive(), f"request thread hangs after the kill {self.where()}"
        http.close()
        self.mid_upload_kills += bool(op.content and 0 < sent < len(op.content))
        self.journal_kills += pending_journal(self.server) > 0
        status = result.get("status")
        acked = status is not None
        self.log.append(f"{op.describe()} delay {delay * 1000:.1f} ms -> {status or result.get('error')}")
        self.learn(op.timing_key(), delay, result.get("duration"))  # type: ignore[arg-type]
        if acked:
            expected = EXPECTED_STATUS.get(op.kind, 204 if op.overwrite else 201)
            assert status == expected, f"{op.describe()}: {status} {result.get('body')} {self.where()}"

        self.server.start()
        with client() as http:
            listing = list_tree(http, self.dav)
            actual = (listing.files, frozenset(listing.folders))
            old, new = self.tree.snapshot(), op.after.snapshot()
            if actual == new:
                state = "new"
                if op.kind == "DELETE":
                    files, folders = self.tree.under(op.path)
                    self.trash.append(Trashed(op.path, Tree({p: self.tree.files[p] for p in files}, set(folders))))
                if op.restored is not None:
                    self.trash.remove(op.restored)
                self.tree = op.after
                self.unacked_new += not acked
            else:
                assert not acked, (
                    f"{op.describe()} was acknowledged with {status} before the kill, but after the "
                    f"restart the tree is not in the new state: {diff(actual, new)} {self.where()}")
                assert actual == old, (
                    f"after a kill during {op.describe()} the tree is neither the old nor the new one; "
                    f"versus old: {diff(actual, old)}; versus new: {diff(actual, new)} {self.where()}")
                state = "old"
            self.outcomes[(op.kind, state)] += 1
            self.check_folder_sizes(listing)
            touched = [p for root in op.touched for p in self.tree.under(root)[0]]
            self.download(http, touched)

    def check_folder_sizes(self, listing: Listing) -> None:
        for folder, reported in listing.folder_sizes.items():
            expected = sum(len(c) for p, c in self.tree.files.items() if folder == "" or is_within(p, folder))
            assert reported == expected, (
                f"folder {folder!r} reports oc:size {reported}, its files add up to {expected} "
                f"{self.where()}")

    def download(self, http: httpx.Client, paths: list[str]) -> None:
        for path in paths:
            resp = http.get(self.dav.url(path))
            assert resp.status_code == 200, f"GET {path!r}: {resp.status_code} {self.where()}"
            expected = self.tree.files[path]
            assert len(resp.content) == len(expected) and resp.content == expected, (
                f"GET {path!r}: {len(resp.content)} bytes sha1 {sha1(resp.content)}, expected "
                f"{len(expected)} bytes sha1 {sha1(expected)} {self.where()}")

    def full_check(self) -> None:
        """Every file byte-exact, then a clean stop and `storage check`; restarts with the other
        number of workers, so both one and two worker processes are killed."""
        with client() as http:
            listing = list_tree(http, self.dav)
            assert (listing.files, frozenset(listing.folders)) == self.tree.snapshot(), self.where()
            self.download(http, sorted(self.tree.files))
        graceful_stop(self.server)
        report = self.server.cli("storage", "check", check=False)
        assert report.returncode == 0, (
            f"storage check failed {self.where()}:\n{report.stdout}\n{report.stderr}")
        assert "storage is consistent" in report.stdout, report.stdout
        self.checks += 1
        workers = 2 if self.server.workers == 1 else 1
        self.server.workers = workers
        self.server.env["INFINISCALE_HTTP_WORKERS"] = str(workers)
        self.server.start()


def diff(actual: tuple[dict, frozenset], expected: tuple[dict, frozenset]) -> str:
    a_files, a_folders = actual
    e_files, e_folders = expected
    parts = []
    if a_folders != e_folders:
        parts.append(f"folders missing {sorted(e_folders - a_folders)} extra {sorted(a_folders - e_folders)}")
    missing = sorted(set(e_files) - set(a_files))
    extra = sorted(set(a_files) - set(e_files))
    changed = sorted(p for p in set(a_files) & set(e_files) if a_files[p] != e_files[p])
    if missing or extra or changed:
        changes = [(p, a_files[p], e_files[p]) for p in changed]
        parts.append(f"files missing {missing} extra {extra} changed {changes}")
    return "; ".join(parts) or "identical"


def test_sigkill_during_writes_leaves_old_or_new_state(tmp_path: Path) -> None:
    seed = int(os.environ.get("INFINISCALE_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\ncrash safety: seed {seed} (INFINISCALE_CRASH_SEED={seed} replays its random choices)")
    server = ServerProcess(tmp_path, workers=1)
    server.init()
    server.start()
    run = CrashRun(server, seed)
    started = time.monotonic()
    try:
        for round_no in range(1, ROUNDS + 1):
            run.crash_round(round_no)
            if round_no % ROUNDS_PER_CHECK == 0 or round_no == ROUNDS:
                run.full_check()
    finally:
        if server.proc is not None:
            server.kill()
    elapsed = time.monotonic() - started
    summary = ", ".join(f"{kind} {state} {count}" for (kind, state), count in sorted(run.outcomes.items()))
    print(f"crash safety: {run.kills} kills in {elapsed:.0f} s, {run.checks} storage checks; {summary}; "
          f"kills mid-upload {run.mid_upload_kills}, with a journal entry pending {run.journal_kills}, "
          f"committed but unacknowledged {run.unacked_new}; {len(run.tree.files)} files, "
          f"{len(run.tree.folders)} folders at the end")

    assert run.kills == ROUNDS and run.kills >= min(200, ROUNDS)
    assert run.checks >= ROUNDS // ROUNDS_PER_CHECK
    # the kills must have landed on both sides of the commit point, and some in the middle
    assert sum(n for (_k, s), n in run.outcomes.items() if s == "old") >= ROUNDS // 10, run.outcomes
    assert sum(n for (_k, s), n in run.outcomes.items() if s == "new") >= ROUNDS // 10, run.outcomes
    if ROUNDS >= 200:
        assert run.mid_upload_kills > 0, "no kill landed while an upload body was being sent"
        assert run.unacked_new > 0, "no kill landed between an operation's commit and its response"
        for kind in ("PUT-new", "PUT-overwrite", "MOVE", "COPY", "DELETE", "MKCOL"):
            assert run.outcomes[(kind, "old")] + run.outcomes[(kind, "new")] > 0, f"no kill during {kind}"
