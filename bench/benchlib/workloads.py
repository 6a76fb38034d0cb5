"""The workload groups. Each one fills rec[metric_key] with a Result for a single server."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchlib import procs
from benchlib.dav import (
    DELETE_OK,
    MOVE_OK,
    PUT_OK,
    Conn,
    DavError,
    Job,
    Pattern,
    Response,
    basic_auth,
    check_listing,
    random_blobs,
    run_jobs,
)
from benchlib.measure import Result, Stopwatch
from benchlib.servers import USER as USER_NAME
from benchlib.servers import Server

MIB = 1 << 20
SMALL_SIZE = 4096
TUS_CHUNK = 10_000_000  # the max_chunk_size oCIS advertises, and the desktop client uses
TINY = b"x" * 64  # content of the files that only populate folders


@dataclass(frozen=True)
class Config:
    n_small: int = 1000
    n_auth: int = 3000
    conc: int = 16
    propfind_sizes: tuple[int, int] = (1000, 10_000)
    propfind_reps: int = 5
    big_size: int = 1 << 30
    tree_sizes: tuple[int, int] = (10, 1000)
    tree_reps: int = 5


FULL = Config()
QUICK = Config(n_small=200, n_auth=500, propfind_sizes=(200, 2000), propfind_reps=3, big_size=64 * MIB,
               tree_sizes=(10, 200), tree_reps=3)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    only: str = ""  # measured on this server alone (a protocol the others do not speak)


def metrics(cfg: Config) -> dict[str, list[Metric]]:
    """Metrics per workload group, in table order; labels carry the sizes actually used."""
    n, c = cfg.n_small, cfg.conc
    p1, p2 = cfg.propfind_sizes
    t1, t2 = cfg.tree_sizes
    big = _size_label(cfg.big_size)
    return {
        "small": [Metric("put_c1", f"PUT {n}x4KiB c=1", "files/s", True),
                  Metric("put_cN", f"PUT {n}x4KiB c={c}", "files/s", True),
                  Metric("get_c1", f"GET {n}x4KiB c=1", "files/s", True),
                  Metric("get_cN", f"GET {n}x4KiB c={c}", "files/s", True)],
        "propfind": [Metric("propfind_small", f"PROPFIND d1 {p1} entries", "ms", False),
                     Metric("propfind_large", f"PROPFIND d1 {p2} entries", "ms", False)],
        "big": [Metric("put_big", f"PUT {big} stream", "MB/s", True),
                Metric("get_big", f"GET {big} stream", "MB/s", True),
                Metric("tus_big", f"TUS {big}, {TUS_CHUNK // 1_000_000} MB PATCHes", "MB/s", True,
                       only="infiniscale")],
        "auth": [Metric("auth_anonymous", f"GET status.php c={c}", "req/s", True, only="infiniscale"),
                 Metric("auth_basic", f"PROPFIND d0 password c={c}", "req/s", True, only="infiniscale"),
                 Metric("auth_apptoken", f"PROPFIND d0 app token c={c}", "req/s", True, only="infiniscale"),
                 Metric("auth_bearer", f"PROPFIND d0 OIDC bearer c={c}", "req/s", True, only="infiniscale")],
        "tree": [Metric("move_small", f"MOVE folder of {t1}", "ms", False),
                 Metric("move_large", f"MOVE folder of {t2}", "ms", False),
                 Metric("delete_small", f"DELETE folder of {t1}", "ms", False),
                 Metric("delete_large", f"DELETE folder of {t2}", "ms", False)],
    }


def _size_label(size: int) -> str:
    return f"{size >> 30} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"


@dataclass
class Target:
    """Everything a workload needs to drive one server."""

    server: Server
    dav: Conn  # long-lived connection for setup, checks and single timed requests
    base: str  # folder (relative to the DAV root, trailing slash) holding this run's data

    @property
    def name(self) -> str:
        return self.server.name

    def stopwatch(self) -> Stopwatch:
        return Stopwatch(self.server.pid)

    def path(self, rel: str) -> str:
        return self.base + rel


IDLE_WINDOW_S = 0.25
IDLE_CPU_S = 0.02  # less than this much CPU in a window (8 % of a core): the server is idle
IDLE_WAIT_MAX_S = 60.0
# Creating a file takes 20-60 us on a settled ext4, but 0.7-1 ms for minutes after a large deletion
# (seen on this benchmark's VMs, whose disk is mounted with online discard): whichever server ran
# next after a 1 GiB file was replaced paid for the one before. The probe waits that out; swings of
# under a minute, also seen there, it does not catch.
SETTLED_CREATE_S = 200e-6
SETTLE_PROBE_FILES = 100
SETTLE_WAIT_MAX_S = 300.0


def file_creation_seconds(folder: Path, count: int = SETTLE_PROBE_FILES) -> float:
    """Median time to create an empty file in folder (then removed again: empty files free no blocks)."""
    folder.mkdir(exist_ok=True)
    times = []
    for i in range(count):
        path = folder / f"probe{i}"
        start = time.perf_counter()
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        times.append(time.perf_counter() - start)
    for i in range(count):
        (folder / f"probe{i}").unlink()
    return sorted(times)[count // 2]


def wait_for_settled_filesystem(folder: Path) -> None:
    start = time.monotonic()
    while (took := file_creation_seconds(folder)) > SETTLED_CREATE_S:
        if time.monotonic() - start > SETTLE_WAIT_MAX_S:
            print(f"    file creation still takes {took * 1e6:.0f} us after {SETTLE_WAIT_MAX_S:.0f} s; "
                  "timing anyway", flush=True)
            return
        time.sleep(1.0)
    if (waited := time.monotonic() - start) > 1.0:
        print(f"    waited {waited:.0f} s for the filesystem to settle", flush=True)


def quiesce(t: Target) -> None:
    """Before a timed section: flush dirty pages, so one server's writeback does not land in the
    next one's timing; wait until creating a file costs what it does on a settled filesystem; and
    wait until the server's own background work is done (two idle windows in a row). infiniscale
    indexes and records what the untimed setup uploaded; that work belongs to the setup, not to
    the download timed next."""
    os.sync()
    wait_for_settled_filesystem(t.server.log.parent / "fs-probe")
    deadline = time.monotonic() + IDLE_WAIT_MAX_S
    idle, before = 0, procs.tree_cpu_seconds(t.server.pid)
    while idle < 2 and time.monotonic() < deadline:
        time.sleep(IDLE_WINDOW_S)
        now = procs.tree_cpu_seconds(t.server.pid)
        idle = idle + 1 if now - before < IDLE_CPU_S else 0
        before = now
    if idle < 2:
        print(f"    {t.name} still busy after {IDLE_WAIT_MAX_S:.0f} s; timing anyway", flush=True)


def populate(t: Target, folder: str, names: list[str], conc: int) -> None:
    """Untimed setup: create folder and fill it with tiny files over concurrent PUTs."""
    t.dav.mkcol(t.path(folder))
    jobs = [Job("PUT", t.path(f"{folder}/{n}"), TINY) for n in names]
    failures = run_jobs(t.dav.root, t.dav.headers, jobs, conc)
    if failures:
        raise DavError(f"setup of {folder}: {len(failures)} PUTs failed, e.g. {failures[0]}")


def transfer(t: Target, jobs: list[Job], conc: int) -> tuple[Stopwatch, list[str]]:
    """Run jobs over conc connections, timing only the requests."""
    sw = t.stopwatch()
    failures = run_jobs(t.dav.root, t.dav.headers, jobs, conc, sw)
    return sw, failures


def _rate(sw: Stopwatch, count: float) -> Result:
    res = Result(value=count / sw.wall)
    res.add(sw)
    return res


def _failed(failures: list[str]) -> Result:
    return Result.failed(f"{len(failures)} requests wrong, e.g. {failures[0]}")


def warm_up(t: Target, conc: int) -> None:
    """Untimed: create the run's base folder and touch every code path once (imports, caches, pools)."""
    t.dav.mkcol(t.base)
    names = [f"w{i:03d}.bin" for i in range(64)]
    populate(t, "warmup", names, conc)
    jobs = [Job("GET", t.path(f"warmup/{n}"), TINY) for n in names]
    failures = run_jobs(t.dav.root, t.dav.headers, jobs, 1) + run_jobs(t.dav.root, t.dav.headers, jobs, conc)
    if failures:
        raise DavError(f"warm-up: {failures[0]}")
    check_listing(t.dav.propfind(t.path("warmup"), "1"), "warmup", names)


# --- small files -------------------------------------------------------------------------------

def run_small(t: Target, cfg: Config, rec: dict[str, Result]) -> None:
    """PUT then GET n distinct 4 KiB files at c=1 and c=N; a PUT figure counts only if GET reads it back."""
    for conc, put_key, get_key in ((1, "put_c1", "get_c1"), (cfg.conc, "put_cN", "get_cN")):
        folder = f"small-c{conc}"
        t.dav.mkcol(t.path(folder))
        blobs = random_blobs(cfg.n_small, SMALL_SIZE, seed=conc)
        paths = [t.path(f"{folder}/f{i:05d}.bin") for i in range(cfg.n_small)]
        quiesce(t)
        sw, failures = transfer(t, [Job("PUT", p, b) for p, b in zip(paths, blobs, strict=True)], conc)
        rec[put_key] = _failed(failures) if failures else _rate(sw, cfg.n_small)
        quiesce(t)
        sw, failures = transfer(t, [Job("GET", p, b) for p, b in zip(paths, blobs, strict=True)], conc)
        if failures:
            rec[get_key] = _failed(failures)
            if rec[put_key].value is not None:
                rec[put_key] = Result.failed(f"read-back failed: {failures[0]}")
        else:
            rec[get_key] = _rate(sw, cfg.n_small)


# --- PROPFIND ----------------------------------------------------------------------------------

def run_propfind(t: Target, cfg: Config, rec: dict[str, Result]) -> None:
    """Median time of Depth-1 PROPFINDs on folders of n entries; each answer must list all of them."""
    for n, key in zip(cfg.propfind_sizes, ("propfind_small", "propfind_large"), strict=True):
        rec[key] = _propfind_one(t, cfg, n)


def _propfind_one(t: Target, cfg: Config, n: int) -> Result:
    folder = f"listing-{n}"
    names = [f"e{i:05d}.txt" for i in range(n)]
    populate(t, folder, names, cfg.conc)
    quiesce(t)
    check_listing(t.dav.propfind(t.path(folder), "1"), folder, names)  # warm-up, untimed
    res = Result()
    for _ in range(cfg.propfind_reps):
        sw = t.stopwatch()
        sw.start()
        r = t.dav.propfind(t.path(folder), "1")
        sw.stop()
        check_listing(r, folder, names)
        res.add(sw)
    return res.median_ms()


# --- one big file ------------------------------------------------------------------------------

def run_big(t: Target, cfg: Config, rec: dict[str, Result], pattern: Pattern, sha1: str) -> None:
    """Stream a big file up and down; both figures count only if the download hashes to the upload."""
    # the first 1 GiB written in a round lands faster than the next one (the disk's write cache):
    # TUS and PUT take turns going first, so neither figure carries that advantage
    runs = int(t.server.extra.get("big_runs", "0"))
    t.server.extra["big_runs"] = str(runs + 1)
    tus_first = t.server.speaks_tus and runs % 2 == 1
    if tus_first:
        rec["tus_big"] = _rate(_tus_upload(t, "big-tus.bin", pattern, sha1), pattern.size / 1e6)
        t.dav.delete(t.path("big-tus.bin"))
    path = t.path("big.bin")
    headers = {"Content-Length": str(pattern.size)}  # explicit length: no chunked encoding
    if t.server.sends_oc_checksum:
        headers["OC-Checksum"] = f"SHA1:{sha1}"
    quiesce(t)
    t.dav.ping()
    sw_put = t.stopwatch()
    sw_put.start()
    r = t.dav.request("PUT", path, pattern.chunks(), headers)
    sw_put.stop()
    if r.status not in PUT_OK:
        raise DavError(f"PUT big.bin: HTTP {r.status}: {r.body[:200]!r}")
    quiesce(t)
    sw_get, got_size, got_sha1 = _download_sha1(t, path)
    if (got_size, got_sha1) != (pattern.size, sha1):
        raise DavError(f"GET big.bin: {got_size} bytes sha1 {got_sha1}, sent {pattern.size} sha1 {sha1}")
    mb = pattern.size / 1e6
    rec["put_big"], rec["get_big"] = _rate(sw_put, mb), _rate(sw_get, mb)
    t.dav.delete(path)  # free the disk before the next server writes its copy
    if t.server.speaks_tus and not tus_first:
        rec["tus_big"] = _rate(_tus_upload(t, "big-tus.bin", pattern, sha1), mb)
        t.dav.delete(t.path("big-tus.bin"))


def _tus_upload(t: Target, name: str, pattern: Pattern, sha1: str) -> Stopwatch:
    """The same bytes through TUS as the desktop client sends them: a creation POST, then PATCHes of
    TUS_CHUNK bytes on one connection. Counts only if the server's checksum of the result matches."""
    meta = (f"filename {base64.b64encode(t.path(name).encode()).decode()},"
            f"checksum {base64.b64encode(f'SHA1 {sha1}'.encode()).decode()}")
    tus = {"Tus-Resumable": "1.0.0"}
    quiesce(t)
    t.dav.ping()
    sw = t.stopwatch()
    sw.start()
    r = t.dav.request("POST", "", b"", {**tus, "Upload-Length": str(pattern.size), "Upload-Metadata": meta})
    if r.status != 201:
        raise DavError(f"TUS POST: HTTP {r.status}: {r.body[:200]!r}")
    location = urlsplit(r.headers["Location"]).path
    offset = 0
    for body in _slices(pattern.chunks(), TUS_CHUNK):
        size = sum(len(b) for b in body)
        r = t.dav.raw("PATCH", location, body, {**tus, "Upload-Offset": str(offset), "Content-Length": str(size),
                                                 "Content-Type": "application/offset+octet-stream"})
        if r.status != 204:
            raise DavError(f"TUS PATCH at {offset}: HTTP {r.status}: {r.body[:200]!r}")
        offset += size
    sw.stop()
    if r.headers.get("OC-Checksum") != f"SHA1:{sha1}":
        raise DavError(f"TUS upload stored {r.headers.get('OC-Checksum')}, sent SHA1:{sha1}")
    return sw


def _slices(chunks: Iterator[bytes], size: int) -> Iterator[list[memoryview]]:
    """Regroups a stream of pieces into lists of exactly `size` bytes (the last one shorter),
    without copying: the client must not be what limits the figure."""
    current: list[memoryview] = []
    filled = 0
    for piece in chunks:
        chunk = memoryview(piece)
        while chunk:
            take = chunk[:size - filled]
            chunk = chunk[len(take):]
            current.append(take)
            filled += len(take)
            if filled == size:
                yield current
                current, filled = [], 0
    if current:
        yield current


def _download_sha1(t: Target, path: str) -> tuple[Stopwatch, int, str]:
    """Timed streaming GET, hashed on the fly (hashing is part of the client cost, same for all)."""
    t.dav.ping()
    sw = t.stopwatch()
    h = hashlib.sha1()
    sw.start()
    status, size = t.dav.get_into(path, h.update)
    sw.stop()
    if status != 200:
        raise DavError(f"GET big.bin: HTTP {status}")
    return sw, size, h.hexdigest()


# --- MOVE / DELETE of folders ------------------------------------------------------------------

def run_tree(t: Target, cfg: Config, rec: dict[str, Result]) -> None:
    """Time MOVE and DELETE of folders of two sizes, to show whether their cost grows with content."""
    for n, suffix in zip(cfg.tree_sizes, ("small", "large"), strict=True):
        moves, deletes = Result(), Result()
        for rep in range(cfg.tree_reps):
            _move_delete_once(t, cfg, n, rep, moves, deletes)
        rec[f"move_{suffix}"], rec[f"delete_{suffix}"] = moves.median_ms(), deletes.median_ms()


def _move_delete_once(t: Target, cfg: Config, n: int, rep: int, moves: Result, deletes: Result) -> None:
    src, dst = f"tree-{n}-{rep}", f"tree-{n}-{rep}-moved"
    names = [f"m{i:05d}.dat" for i in range(n)]
    populate(t, src, names, cfg.conc)
    quiesce(t)
    t.dav.ping()
    r = _timed(t, moves, lambda: t.dav.move(t.path(src), t.path(dst)))
    if r.status not in MOVE_OK:
        raise DavError(f"MOVE {src}: HTTP {r.status}")
    check_listing(t.dav.propfind(t.path(dst), "1"), dst, names)
    if (code := t.dav.propfind(t.path(src), "0").status) != 404:
        raise DavError(f"PROPFIND {src} after MOVE: HTTP {code}, expected 404")
    quiesce(t)
    t.dav.ping()
    r = _timed(t, deletes, lambda: t.dav.delete(t.path(dst)))
    if r.status not in DELETE_OK:
        raise DavError(f"DELETE {dst}: HTTP {r.status}")
    if (code := t.dav.propfind(t.path(dst), "0").status) != 404:
        raise DavError(f"PROPFIND {dst} after DELETE: HTTP {code}, expected 404")


def _timed(t: Target, into: Result, request: Callable[[], Response]) -> Response:
    sw = t.stopwatch()
    sw.start()
    out = request()
    sw.stop()
    into.add(sw)
    return out


# --- authentication ------------------------------------------------------------------------------

def run_auth(t: Target, cfg: Config, rec: dict[str, Result]) -> None:
    """What authentication costs per request: anonymous status.php against an authenticated PROPFIND
    Depth 0, with a password (verified once, then cached) and with an app token (checked every time)."""
    if not t.server.speaks_tus:  # an infiniscale-only group: app tokens and its status.php
        return
    made = t.dav.raw("POST", "/auth-app/tokens?expiry=1h&label=bench", b"", {})
    if made.status != 200:
        raise DavError(f"creating an app token: HTTP {made.status}: {made.body[:200]!r}")
    token = json.loads(made.body)["token"]
    root = urlsplit(t.dav.root)
    status_url = f"{root.scheme}://{root.netloc}/status.php"
    password = t.dav.headers
    app_token = basic_auth(USER_NAME, token)
    access = _oidc_access_token(f"{root.scheme}://{root.netloc}")
    for key, url, method, headers, expected in (
            ("auth_anonymous", status_url, "GET", {}, 200),
            ("auth_basic", t.dav.root, "PROPFIND", password, 207),
            ("auth_apptoken", t.dav.root, "PROPFIND", app_token, 207),
            ("auth_bearer", t.dav.root, "PROPFIND", {"Authorization": f"Bearer {access}"}, 207)):
        quiesce(t)
        rec[key] = _hammer(t, url, method, headers, expected, cfg.n_auth, cfg.conc)


def _hammer(t: Target, url: str, method: str, headers: dict[str, str], expected: int, n: int,
            conc: int) -> Result:
    """n identical requests over conc keep-alive connections; every answer must have the status."""
    path = urlsplit(url).path
    conns = [Conn(url, headers) for _ in range(conc)]
    for conn in conns:
        conn.raw(method, path, None, {"Depth": "0"})  # connect and warm up, untimed
    left = [n]
    lock = threading.Lock()
    wrong: list[str] = []
    gate = threading.Barrier(conc + 1)

    def work(conn: Conn) -> None:
        gate.wait()
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            r = conn.raw(method, path, None, {"Depth": "0"})
            if r.status != expected:
                wrong.append(f"{method} {path}: HTTP {r.status}")

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in conns]
    for th in threads:
        th.start()
    sw = t.stopwatch()
    sw.start()
    gate.wait()
    for th in threads:
        th.join()
    sw.stop()
    for conn in conns:
        conn.close()
    return _failed(wrong) if wrong else _rate(sw, n)


def _oidc_access_token(base: str) -> str:
    """An access token from the built-in provider, by the code flow with PKCE, as the web app does."""
    import http.client
    import re
    import secrets
    from html import unescape
    from urllib.parse import parse_qs, urlencode

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = f"{base}/oidc-callback.html"
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    query = urlencode({"client_id": "web", "redirect_uri": redirect, "response_type": "code",
                       "scope": "openid profile email", "code_challenge": challenge,
                       "code_challenge_method": "S256", "state": "bench"})
    conn.request("GET", f"/signin/v1/identifier/_/authorize?{query}")
    page = conn.getresponse()
    html = page.read().decode()
    cookie = page.getheader("Set-Cookie", "").split(";", 1)[0]
    form = dict(re.findall(r'name="(csrf|request)" value="([^"]*)"', html))
    body = urlencode({"csrf": unescape(form["csrf"]), "request": unescape(form["request"]),
                      "username": USER_NAME, "password": "relativity"})
    conn.request("POST", "/signin/v1/identifier/_/authorize", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    answer = conn.getresponse()
    answer.read()
    code = parse_qs(urlsplit(answer.getheader("Location", "")).query)["code"][0]
    conn.request("POST", "/konnect/v1/token", body=urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": "web",
        "code_verifier": verifier}), headers={"Content-Type": "application/x-www-form-urlencoded"})
    tokens = json.loads(conn.getresponse().read())
    conn.close()
    return tokens["access_token"]
