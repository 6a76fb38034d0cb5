"""Concurrency: 16 clients create, overwrite, rename, copy and delete the same few names in one folder
for INFINISCALE_CONCURRENCY_SECONDS (default 60) against a server with two worker processes.

Claims checked:
- no 5xx, and every status is one the operation may legitimately get in a race;
- no lost update where If-Match was used: two conditional writes based on the same etag never both
  succeed, and a GET right after a successful conditional write returns that write's content or
  content that another operation overlapping it put there;
- an etag always denotes one content (across every PUT response and GET);
- afterwards the listing agrees with GET for every file, folder sizes add up, and after a clean stop
  `infiniscale storage check` finds the storage consistent.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("INFINISCALE_CONCURRENCY_SECONDS", "60"))
CLIENTS = 16
FILES = [f"f{i}.txt" for i in range(8)]
FOLDERS = [f"d{i}" for i in range(3)]
INNER = ["a.txt", "b.txt"]
USER = "einstein"
FOLDER = "concurrency"

# statuses each operation may get while others race it; anything else is a failure
ALLOWED = {
    "PUT": {201, 204},
    "PUT-create": {201, 412},  # If-None-Match: *
    "PUT-if-match": {204, 412},
    "PUT-inner": {201, 204, 409},  # the parent folder may be gone
    "GET": {200, 404},
    "MOVE": {201, 204, 404, 412},
    "COPY": {201, 204, 404, 412},
    "DELETE": {204, 404},
    "MKCOL": {201, 405},
    "PROPFIND": {207},
}
PROPS = (
    b'<?xml version="1.0" encoding="UTF-8"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    b"<d:prop><d:resourcetype/><d:getcontentlength/><d:getetag/><oc:checksums/><oc:size/></d:prop>"
    b"</d:propfind>"
)
DAV_NS = "{DAV:}"
OC_NS = "{http://owncloud.org/ns}"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


@dataclass
class Op:
    client: int
    kind: str
    path: str
    start: float
    end: float
    status: int
    dest: str = ""
    content: bytes | None = None  # PUT: the body; GET: what came back
    etag: str = ""  # the response's etag
    if_match: str = ""


@dataclass
class Journal:
    ops: list[Op] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)
            if op.status >= 500 or op.status not in ALLOWED[op.kind]:
                self.failures.append(f"client {op.client}: {op.kind} {op.path} -> {op.status}")

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


class Client(threading.Thread):
    def __init__(self, cid: int, base: str, journal: Journal, deadline: float, seed: int) -> None:
        super().__init__(name=f"client-{cid}", daemon=True)
        self.cid = cid
        self.base = base
        self.journal = journal
        self.deadline = deadline
        self.rng = random.Random(seed * 1000 + cid)
        self.counter = 0
        self.seen: dict[str, str] = {}  # name -> etag this client last saw
        self.http = httpx.Client(auth=(USER, DEMO[USER]), timeout=120)

    def url(self, path: str) -> str:
        return f"{self.base}/{quote(path)}"

    def content(self) -> bytes:
        self.counter += 1
        size = self.rng.choice([0, 10, 200, 4000, 30_000, 150_000])
        head = f"c{self.cid}:{self.counter}:".encode()
        return head + self.rng.randbytes(size)

    def request(self, kind: str, method: str, path: str, **kwargs) -> tuple[Op, httpx.Response]:
        start = time.monotonic()
        resp = self.http.request(method, self.url(path), **kwargs)
        op = Op(self.cid, kind, path, start, time.monotonic(), resp.status_code,
                etag=resp.headers.get("etag", ""))
        if resp.status_code >= 400 and method not in ("HEAD",) and resp.content:
            ctype = resp.headers.get("content-type", "")
            if "xml" not in ctype or b"<s:exception>" not in resp.content:
                self.journal.fail(f"{kind} {path} -> {resp.status_code} without a Sabre error body: "
                                  f"{ctype} {resp.text[:200]}")
        return op, resp

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                self.step()
        except Exception as exc:  # a transport error or a bug in the test: report, do not hang
            self.journal.fail(f"client {self.cid} crashed: {exc!r}")
        finally:
            self.http.close()

    def step(self) -> None:
        rng = self.rng
        roll = rng.random()
        name = rng.choice(FILES)
        if roll < 0.14:
            self.put(name, "PUT", {})
        elif roll < 0.22:
            self.put(name, "PUT-create", {"If-None-Match": "*"})
        elif roll < 0.44:
            etag = self.seen.get(name)
            if etag is None:
                self.get(name)
                etag = self.seen.get(name)
            if etag is not None:
                self.conditional_put(name, etag)
        elif roll < 0.56:
            self.get(name)
        elif roll < 0.66:
            dest = rng.choice([n for n in FILES if n != name])
            self.move_or_copy("MOVE", name, dest, rng.random() < 0.7)
        elif roll < 0.71:
            dest = rng.choice([n for n in FILES if n != name])
            self.move_or_copy("COPY", name, dest, rng.random() < 0.7)
        elif roll < 0.79:
            self.record(self.request("DELETE", "DELETE", name)[0])
        elif roll < 0.83:
            self.record(self.request("MKCOL", "MKCOL", rng.choice(FOLDERS))[0])
        elif roll < 0.87:
            self.put(f"{rng.choice(FOLDERS)}/{rng.choice(INNER)}", "PUT-inner", {})
        elif roll < 0.91:
            src, dest = rng.sample(FOLDERS, 2)
            self.move_or_copy("MOVE", src, dest, rng.random() < 0.5)
        elif roll < 0.93:
            self.record(self.request("DELETE", "DELETE", rng.choice(FOLDERS))[0])
        else:
            op, resp = self.request("PROPFIND", "PROPFIND", "", headers={"Depth": "1"}, content=PROPS)
            self.record(op)
            if resp.status_code == 207:
                try:
                    ElementTree.fromstring(resp.content)
                except ElementTree.ParseError as exc:
                    self.journal.fail(f"PROPFIND returned malformed XML: {exc}")

    def record(self, op: Op) -> None:
        self.journal.add(op)

    def put(self, path: str, kind: str, headers: dict[str, str]) -> None:
        body = self.content()
        op, resp = self.request(kind, "PUT", path, content=body, headers=headers)
        op.content = body
        self.record(op)
        if resp.status_code in (201, 204):
            self.seen[path] = op.etag

    def conditional_put(self, name: str, etag: str) -> None:
        body = self.content()
        op, resp = self.request("PUT-if-match", "PUT", name, content=body, headers={"If-Match": etag})
        op.content, op.if_match = body, etag
        self.record(op)
        if resp.status_code == 412:
            self.seen.pop(name, None)
            return
        if resp.status_code != 204:
            return
        self.seen[name] = op.etag
        check = self.get(name)
        check.if_match = f"after c{self.cid}:{self.counter}"  # marks the read-back of this write

    def get(self, name: str) -> Op:
        op, resp = self.request("GET", "GET", name)
        if resp.status_code == 200:
            op.content = resp.content
            self.seen[name] = op.etag
        else:
            self.seen.pop(name, None)
        self.record(op)
        return op

    def move_or_copy(self, method: str, src: str, dest: str, overwrite: bool) -> None:
        op, _ = self.request(method, method, src, headers={
            "Destination": self.url(dest), "Overwrite": "T" if overwrite else "F"})
        op.dest = dest
        self.record(op)


def tag_of(content: bytes) -> str:
    return content.split(b":", 2)[0].decode() + ":" + content.split(b":", 2)[1].decode()


def check_history(journal: Journal) -> list[str]:
    problems: list[str] = []
    ops = journal.ops
    # 1. an etag denotes exactly one content
    content_of: dict[str, str] = {}
    for op in ops:
        if op.content is None or not op.etag or op.status not in (200, 201, 204):
            continue
        digest = sha1(op.content)
        if content_of.setdefault(op.etag, digest) != digest:
            problems.append(f"etag {op.etag} stands for two contents (seen at {op.kind} {op.path})")
    # 2. two conditional writes based on the same etag of the same name never both succeed
    winners: dict[tuple[str, str], Op] = {}
    for op in ops:
        if op.kind == "PUT-if-match" and op.status == 204:
            key = (op.path, op.if_match)
            if key in winners:
                other = winners[key]
                problems.append(f"lost update on {op.path}: clients {other.client} and {op.client} both "
                                f"succeeded with If-Match {op.if_match}")
            winners[key] = op
    # 3. the read-back after a successful conditional write sees it or something that overlapped it
    writer_of: dict[str, Op] = {}
    for op in ops:
        if op.kind.startswith("PUT") and op.content is not None and op.status in (201, 204):
            writer_of[tag_of(op.content)] = op
    for i, op in enumerate(ops):
        if not (op.kind == "GET" and op.if_match.startswith("after ")):
            continue
        tag = op.if_match[len("after "):]
        write = writer_of.get(tag)
        if write is None:
            problems.append(f"read-back without its write {tag}")
            continue
        window = (write.start, op.end)

        def overlapping(pred, window=window) -> bool:
            return any(pred(o) and o.end > window[0] and o.start < window[1] for o in ops)

        name = op.path
        if op.status == 404:
            gone = overlapping(lambda o, name=name: o.kind in ("DELETE", "MOVE") and o.path == name
                               and o.status in (201, 204))
            if not gone:
                problems.append(f"{op.path}: written by {tag} (If-Match) but then 404 with no overlapping "
                                f"DELETE or MOVE")
            continue
        assert op.content is not None
        found = tag_of(op.content)
        if found == tag:
            continue
        other = writer_of.get(found)
        if other is not None and other.path == op.path and other.end > window[0]:
            continue  # a later (or concurrent) write of the same name
        brought = overlapping(lambda o, name=name: o.kind in ("MOVE", "COPY") and o.dest == name
                              and o.status in (201, 204))
        if not brought:
            problems.append(f"lost update on {name}: {tag} was written with If-Match, the read-back "
                            f"returned {found}, written before it, and no MOVE/COPY onto the name "
                            f"overlapped (op {i})")
    return problems


def category(problem: str) -> str:
    """A short class of a history problem, to summarise hundreds of them."""
    if " -> " in problem:  # "client 3: MOVE f1.txt -> 403"
        method = problem.split(": ", 1)[1].split(" ", 1)[0]
        return f"{method} answered {problem.rsplit('-> ', 1)[1]}"
    if "then 404" in problem:
        return "a conditionally written file vanished"
    if problem.startswith("lost update"):
        return "lost update"
    return problem[:60]


def list_folder(http: httpx.Client, url: str) -> tuple[int, dict[str, dict]]:
    resp = http.request("PROPFIND", url, headers={"Depth": "1"}, content=PROPS)
    assert resp.status_code == 207, resp.text[:500]
    own = urlsplit(url).path.rstrip("/")
    size = -1
    entries: dict[str, dict] = {}
    for item in ElementTree.fromstring(resp.content).iter(f"{DAV_NS}response"):
        href = unquote(urlsplit(item.findtext(f"{DAV_NS}href") or "").path).rstrip("/")
        oc_size = int(item.findtext(f".//{OC_NS}size") or -1)
        if href == unquote(own):
            size = oc_size
            continue
        checksums = item.findtext(f".//{OC_NS}checksum") or ""
        entries[href.rsplit("/", 1)[1]] = {
            "folder": item.find(f".//{DAV_NS}resourcetype/{DAV_NS}collection") is not None,
            "size": oc_size,
            "length": item.findtext(f".//{DAV_NS}getcontentlength"),
            "etag": item.findtext(f".//{DAV_NS}getetag"),
            "sha1": next((c[5:].lower() for c in checksums.split() if c.upper().startswith("SHA1:")), None),
        }
    return size, entries


def verify_listing(http: httpx.Client, url: str) -> int:
    """Checks a folder's listing against GET of each file, recursively; returns its tree size."""
    size, entries = list_folder(http, url)
    total = 0
    for name, entry in entries.items():
        child = f"{url}/{quote(name)}"
        if entry["folder"]:
            sub = verify_listing(http, child)
            assert sub == entry["size"], (
                f"{child}: oc:size {entry['size']} in the parent listing, {sub} inside")
            total += sub
            continue
        resp = http.get(child)
        assert resp.status_code == 200, f"listed {child} but GET answers {resp.status_code}"
        assert int(entry["length"]) == len(resp.content) == entry["size"], (child, entry, len(resp.content))
        assert resp.headers["etag"] == entry["etag"], (child, entry, resp.headers["etag"])
        assert entry["sha1"] == sha1(resp.content), (child, entry)
        total += len(resp.content)
    assert size == total, f"{url}: oc:size {size} but its contents add up to {total}"
    return total


def test_sixteen_clients_in_one_folder(tmp_path: Path) -> None:
    seed = int(os.environ.get("INFINISCALE_CONCURRENCY_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\nconcurrency: seed {seed}, {CLIENTS} clients for {SECONDS:.0f} s")
    server = ServerProcess(tmp_path, workers=2)
    server.init()
    server.start()
    try:
        base = f"{server.dav(USER)}/{FOLDER}"
        with server.client(USER) as http:
            assert http.request("MKCOL", base).status_code == 201
        journal = Journal()
        deadline = time.monotonic() + SECONDS
        clients = [Client(i, base, journal, deadline, seed) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=SECONDS + 300)
            assert not c.is_alive(), f"{c.name} hangs"

        statuses = Counter((op.kind, op.status) for op in journal.ops)
        print("concurrency: " + ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(statuses.items())))
        # the run raced for real: conditional writes both won and lost, renames and deletes happened
        assert len(journal.ops) >= CLIENTS * 10
        assert statuses[("PUT-if-match", 204)] > 0 and statuses[("PUT-if-match", 412)] > 0, statuses
        assert statuses[("MOVE", 201)] + statuses[("MOVE", 204)] > 0, statuses
        assert statuses[("DELETE", 204)] > 0, statuses
        server_errors = [f"{op.kind} {op.path} -> {op.status}" for op in journal.ops if op.status >= 500]
        problems = journal.failures + check_history(journal)
        # the final state is checked even when the history had problems, so one run reports everything
        final: list[str] = []
        with server.client(USER) as http:
            try:
                verify_listing(http, base)
                root_size, _ = list_folder(http, server.dav(USER))
                folder_size, _ = list_folder(http, base)
                assert root_size == folder_size, f"root oc:size {root_size}, its only folder {folder_size}"
            except AssertionError as exc:
                final.append(f"final listing: {exc}")
    finally:
        server.stop()
    report = server.cli("storage", "check", check=False)
    if report.returncode != 0 or "storage is consistent" not in report.stdout:
        final.append(f"storage check failed:\n{report.stdout}\n{report.stderr}")
    assert not server_errors, server_errors[:20]
    kinds = Counter(category(p) for p in problems)
    assert not problems + final, (f"{len(problems)} problems in the history {dict(kinds)}; "
                                  f"final state: {final or 'consistent'}; first: {problems[:12]}")


RACE_ROUNDS = 200


def run_together(*calls: Callable[[], httpx.Response]) -> list[int]:
    """Starts the requests at the same moment, each in its own thread; returns their statuses."""
    barrier = threading.Barrier(len(calls))
    statuses = [0] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        statuses[index] = calls[index]().status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return statuses


def test_racing_renames_and_deletes_of_one_name_are_linearizable(tmp_path: Path) -> None:
    """Two clients act on the same name at once: MOVE /r/src -> /r/a against DELETE /r/src or MOVE
    /r/src -> /r/b. Whatever the order, exactly one can succeed (the other finds /r/src gone), and
    the tree must show the winner's result: an acknowledged MOVE must not be undone by an operation
    addressed to the old name."""
    server = ServerProcess(tmp_path, workers=2)
    server.init()
    server.start()
    violations: list[str] = []
    outcomes: Counter[tuple] = Counter()
    try:
        base = f"{server.dav(USER)}/r"
        clients = [server.client(USER) for _ in range(3)]
        setup, first, second = clients
        assert setup.request("MKCOL", base).status_code == 201
        for round_no in range(RACE_ROUNDS):
            body = f"round {round_no}".encode()
            assert setup.put(f"{base}/src", content=body).status_code in (201, 204)
            for name in ("a", "b"):
                assert setup.delete(f"{base}/{name}").status_code in (204, 404)
            rival = "DELETE" if round_no % 2 == 0 else "MOVE"
            move_a = partial(first.request, "MOVE", f"{base}/src", headers={"Destination": f"{base}/a"})
            if rival == "DELETE":
                other = partial(second.request, "DELETE", f"{base}/src")
            else:
                other = partial(second.request, "MOVE", f"{base}/src", headers={"Destination": f"{base}/b"})
            move_status, rival_status = run_together(move_a, other)
            results = {"move-a": move_status, "rival": rival_status}
            state = {name: setup.get(f"{base}/{name}") for name in ("src", "a", "b")}
            present = tuple(sorted(n for n, r in state.items() if r.status_code == 200))
            outcome = (rival, results.get("move-a"), results.get("rival"), present)
            outcomes[outcome] += 1
            wins = [k for k, v in results.items() if v in (201, 204)]
            if len(wins) != 1 or any(v not in (201, 204, 404) for v in results.values()):
                violations.append(f"round {round_no}: MOVE src->a {results.get('move-a')}, {rival} "
                                  f"{results.get('rival')}: exactly one must succeed, the other 404; "
                                  f"afterwards present: {present}")
                continue
            expected = {"move-a": ("a",), "rival": () if rival == "DELETE" else ("b",)}[wins[0]]
            if present != expected or any(state[n].content != body for n in present):
                violations.append(f"round {round_no}: {wins[0]} won, expected {expected} afterwards, "
                                  f"found {present}")
        for c in clients:
            c.close()
    finally:
        server.stop()
    print("\nrace outcomes: " + ", ".join(f"{k}: {n}" for k, n in sorted(outcomes.items(), key=str)))
    report = server.cli("storage", "check", check=False)
    assert not violations, f"{len(violations)} of {RACE_ROUNDS} rounds not linearizable: {violations[:10]}"
    assert report.returncode == 0, report.stdout


def test_tree_sizes_stay_exact_under_racing_writes(tmp_path: Path) -> None:
    """Eight clients overwrite, delete and rename two names for a few seconds; the folder's tree size
    (oc:size) must then equal its contents, and `storage check` must agree after a clean stop."""
    server = ServerProcess(tmp_path, workers=2)
    server.init()
    server.start()
    try:
        base = f"{server.dav(USER)}/sizes"
        with server.client(USER) as http:
            assert http.request("MKCOL", base).status_code == 201
        deadline = time.monotonic() + min(SECONDS, 10)
        statuses: Counter[tuple[str, int]] = Counter()

        def hammer(seed: int) -> None:
            rng = random.Random(seed)
            with server.client(USER) as http:
                while time.monotonic() < deadline:
                    name, other = rng.sample(["x", "y"], 2)
                    roll = rng.random()
                    if roll < 0.4:
                        r = http.put(f"{base}/{name}", content=b"s" * rng.randrange(1, 5000))
                    elif roll < 0.7:
                        r = http.delete(f"{base}/{name}")
                    else:
                        r = http.request("MOVE", f"{base}/{name}", headers={"Destination": f"{base}/{other}"})
                    statuses[(r.request.method, r.status_code)] += 1

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not [k for k in statuses if k[1] >= 500], statuses
        with server.client(USER) as http:
            size, entries = list_folder(http, base)
            contents = sum(e["size"] for e in entries.values())
            root_size, _ = list_folder(http, server.dav(USER))
    finally:
        server.stop()
    report = server.cli("storage", "check", check=False)
    print(f"\nsizes: {dict(statuses)}; folder oc:size {size}, contents {contents}, root {root_size}")
    assert (size, root_size) == (contents, contents), (
        f"oc:size of the folder {size} and of the root {root_size}, but the contents add up to {contents}")
    assert report.returncode == 0, report.stdout
