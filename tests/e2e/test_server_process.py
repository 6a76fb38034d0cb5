"""How `infiniscale server` runs: a single HTTP worker serves from the server's own process (the
whole server is that process and its NATS server), several workers are processes under it, and a
stop lets uploads in flight finish and ends live-update streams at once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from infiniscale.serving import STOP_TIMEOUT_S
from tests.conftest import VENV_BIN, ServerProcess, running_server

pytestmark = pytest.mark.e2e

SSE = "/ocs/v2.php/apps/notifications/api/v1/notifications/sse"


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`: their command names by process id."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            found[int(entry.name)] = comm
    return found


class SlowUpload:
    """A PUT whose body arrives in pieces, a pause after each: still under way when a stop comes."""

    def __init__(self, server: ServerProcess, path: str, pieces: list[bytes], pause_s: float) -> None:
        self.pieces, self.pause_s = pieces, pause_s
        self.started = threading.Event()
        self.status = 0
        self._thread = threading.Thread(target=self._put, args=(server, path), daemon=True)
        self._thread.start()
        assert self.started.wait(10)

    def _body(self):
        for piece in self.pieces:
            yield piece
            self.started.set()
            time.sleep(self.pause_s)

    def _put(self, server: ServerProcess, path: str) -> None:
        with server.client() as client:
            # a first request on the same connection: a worker has accepted it before the upload
            # starts (a stop resets connections still waiting in the listen queue, as any server's does)
            client.request("PROPFIND", server.dav(), headers={"Depth": "0"})
            self.status = client.put(server.dav() + path, content=self._body()).status_code

    def result(self) -> int:
        self._thread.join(30)
        return self.status


def test_one_worker_serves_from_the_server_process_and_more_run_under_it(tmp_path: Path):
    with running_server(tmp_path / "one", workers=1) as server:
        assert list(children(server.proc.pid).values()) == ["nats-server"]
        with server.client() as client:
            assert client.request("PROPFIND", server.dav(), headers={"Depth": "0"}).status_code == 207
    with running_server(tmp_path / "two", workers=2) as server:
        kids = list(children(server.proc.pid).values())
        assert kids.count("nats-server") == 1 and len(kids) == 3  # and a process per worker
        with server.client() as client:
            assert client.request("PROPFIND", server.dav(), headers={"Depth": "0"}).status_code == 207


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stop_finishes_an_upload_in_flight_and_ends_live_streams(tmp_path: Path, workers: int):
    server = ServerProcess(tmp_path, workers=workers)
    server.init()
    server.start()
    chunks = [os.urandom(64 << 10) for _ in range(8)]
    stream_open = threading.Event()
    outcome: dict[str, float | int] = {}

    def follow_live_updates() -> None:
        with server.client() as client, client.stream("GET", server.base_url + SSE) as response:
            outcome["sse_status"] = response.status_code
            for _ in response.iter_bytes():
                stream_open.set()
        outcome["sse_ended"] = time.monotonic()

    follower = threading.Thread(target=follow_live_updates, daemon=True)
    follower.start()
    assert stream_open.wait(10)
    upload = SlowUpload(server, "/slow.bin", chunks, 0.25)
    stopped_at = time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)  # as `kill PID` or a container runtime sends it
    assert upload.result() == 201  # the upload that was under way when the stop came
    follower.join(10)
    assert outcome.get("sse_status") == 200 and outcome["sse_ended"] - stopped_at < STOP_TIMEOUT_S / 2
    assert server.proc.wait(30) == 0
    assert time.monotonic() - stopped_at < STOP_TIMEOUT_S  # the live stream did not hold the stop
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/healthz", timeout=2)
    assert_kept_after_restart(server, "/slow.bin", b"".join(chunks))


def assert_kept_after_restart(server: ServerProcess, path: str, content: bytes) -> None:
    """The stopped server, started again, serves `path` with exactly `content`; no worker died."""
    server.proc = None
    server.start()
    try:
        with server.client() as client:
            assert client.get(server.dav() + path).content == content
    finally:
        server.stop()
    server.assert_no_worker_died()


def running(pid: int) -> bool:
    """Neither gone nor ended (a process handed to init may stay a zombie for a while)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def nats_child(pid: int) -> int:
    return next(child for child, comm in children(pid).items() if comm == "nats-server")


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_server_before_its_nats_server(tmp_path: Path, workers: int):
    """SIGINT to the terminal's whole process group: an upload under way still publishes its event."""
    server = ServerProcess(tmp_path, workers=workers)
    server.init()
    server.start()
    nats = nats_child(server.proc.pid)
    assert os.getpgid(nats) != os.getpgid(server.proc.pid)
    pieces = [os.urandom(128 << 10) for _ in range(8)]
    upload = SlowUpload(server, "/during-stop.bin", pieces, 0.2)
    os.killpg(server.proc.pid, signal.SIGINT)
    assert upload.result() == 201
    assert server.proc.wait(30) == 0
    assert not running(nats)  # stopped by the server, after its requests
    assert_kept_after_restart(server, "/during-stop.bin", b"".join(pieces))


def test_the_nats_server_ends_with_a_killed_server(tmp_path: Path):
    server = ServerProcess(tmp_path)
    server.init()
    server.start()
    nats = nats_child(server.proc.pid)
    os.kill(server.proc.pid, signal.SIGKILL)  # the server alone: its NATS server is in another group
    server.proc.wait(10)
    deadline = time.monotonic() + 10
    while running(nats) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running(nats):
        os.kill(nats, signal.SIGKILL)
        raise AssertionError("the NATS server outlived its server")
    server.proc = None


def test_a_server_does_not_share_its_store_with_an_orphaned_nats_server(tmp_path: Path):
    """A NATS server left running on the store by a server that is gone (here one that ignores the
    end of its parent) is waited for, then stopped, before the new server starts its own."""
    server = ServerProcess(tmp_path)
    server.init()
    store = tmp_path / "data" / "nats"
    store.mkdir(parents=True, exist_ok=True)
    launcher = subprocess.run(
        ["sh", "-c", '"$0" -a 127.0.0.1 -p -1 -js -sd "$1" >/dev/null 2>&1 & echo $!',
         str(VENV_BIN / "nats-server"), str(store)], capture_output=True, text=True, check=True)
    orphan = int(launcher.stdout)  # its shell has ended: it belongs to init now
    try:
        server.start()
        assert not running(orphan)
        assert nats_child(server.proc.pid) != orphan
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)
        server.stop()
