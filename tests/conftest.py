"""Shared fixtures: the server as a real subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from infiniscale.embedded_nats import accepting_connections

VENV_BIN = Path(sys.executable).parent
DEMO = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity", "moss": "vista",
        "katherine": "gemini"}


def _ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_START = _ephemeral_ports_start()
_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range. The kernel never hands those out by
    itself, to a server binding port 0 (the embedded NATS server) or to an outgoing connection, so
    none can take a port a test picked before the test's server binds it: once, a server's NATS took
    its HTTP port that way. Never the same port twice in a session."""
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(10_000, _EPHEMERAL_START)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # in use
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


class ServerProcess:
    """`infiniscale init` + `infiniscale server` in a private data directory. Stopped by PID
    (its process group, since the server forks worker processes)."""

    started: ClassVar[list[ServerProcess]] = []  # by the current test, whose report shows their logs

    def __init__(self, root: Path, workers: int = 1, extra_env: dict[str, str] | None = None,
                 tls: bool = False) -> None:
        self.root = root
        self.port = free_port()
        self.tls = tls
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.log_path = root / "server.log"
        self.env = {
            **os.environ,
            "OCIS_BASE_DATA_PATH": str(root / "data"),
            "OCIS_CONFIG_DIR": str(root / "config"),
            "PROXY_TLS": "true" if tls else "false",
            "PROXY_HTTP_ADDR": f"127.0.0.1:{self.port}",
            "IDM_CREATE_DEMO_USERS": "true",
            "PROXY_ENABLE_BASIC_AUTH": "true",  # the client suites log in with passwords
            "OCIS_LOG_LEVEL": "warn",
            "INFINISCALE_HTTP_WORKERS": str(workers),
            "OCIS_URL": self.base_url,
            **(extra_env or {}),
        }

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "infiniscale"), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=check)

    def init(self) -> None:
        self.cli("init", "--admin-password", "admin")

    def start(self) -> None:
        ServerProcess.started.append(self)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen([str(VENV_BIN / "infiniscale"), "server"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1, verify=False).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # workers may outlive the parent for a moment
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        self.proc = None

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def dav(self, user: str = "einstein") -> str:
        return f"{self.base_url}/remote.php/dav/files/{user}"

    def assert_no_worker_died(self) -> None:
        """granian respawns a worker that crashed and logs it; a crash is a bug even if the tests passed."""
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        assert "Unexpected exit from worker" not in log, f"a server worker died; its log:\n{log[-4000:]}"

    def client(self, user: str = "einstein", **kwargs) -> httpx.Client:
        return httpx.Client(auth=(user, DEMO.get(user, "admin")), timeout=60, **kwargs)


@contextlib.contextmanager
def running_server(root: Path, workers: int = 1, **kwargs) -> Iterator[ServerProcess]:
    """A server initialised in `root` and started; stopped afterwards, when no worker may have died."""
    proc = ServerProcess(root, workers=workers, **kwargs)
    proc.init()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
    proc.assert_no_worker_died()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the read-mostly client suites (2 workers, as in production)."""
    with running_server(tmp_path_factory.mktemp("server"), workers=2) as proc:
        yield proc


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path) as proc:
        yield proc


@pytest.fixture
def folder(server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh folder for one test, in einstein's space; returns its URL (no trailing slash)."""
    name = f"t-{request.node.name[:60]}-{time.time_ns()}".replace("[", "-").replace("]", "")
    url = f"{server.dav()}/{name}"
    with server.client() as client:
        assert client.request("MKCOL", url).status_code == 201
    yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real S3 server (SeaweedFS) for the whole session; tests keep apart by key prefix or bucket."""
    from tests.s3server import SeaweedS3

    s3 = SeaweedS3(tmp_path_factory.mktemp("s3"))
    s3.start()
    try:
        yield s3
    finally:
        s3.stop()


def wait_for_nats(proc: subprocess.Popen, port: int) -> None:
    """Until the nats-server just started accepts connections (15 s at most)."""
    assert accepting_connections(proc, port), "nats-server did not start"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real NATS server with JetStream (the venv's nats-server) for the session; yields its URL."""
    nats = RestartableNats(tmp_path_factory.mktemp("nats"))
    nats.start()
    try:
        yield nats.url
    finally:
        nats.stop()


class RestartableNats:
    """A NATS server of a test's own, which the test may stop, freeze and start again on the same
    port and store."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.command = [str(VENV_BIN / "nats-server"), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd",
                        str(store)]
        self.procs: list[subprocess.Popen] = []

    @property
    def pid(self) -> int:
        return self.procs[-1].pid

    def start(self) -> None:
        self.procs.append(subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for_nats(self.procs[-1], self.port)

    def stop(self, crash: bool = False) -> None:
        if crash:
            self.procs[-1].kill()
        else:
            self.procs[-1].terminate()
        self.procs[-1].wait(timeout=30)

    def end(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()  # a frozen one too
                proc.wait()


@pytest.fixture
def restartable_nats(tmp_path: Path) -> Iterator[RestartableNats]:
    nats = RestartableNats(tmp_path / "nats-store")
    nats.start()
    try:
        yield nats
    finally:
        nats.end()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that used a server gets the end of that server's log in its report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    servers = [value for value in getattr(item, "funcargs", {}).values() if isinstance(value, ServerProcess)]
    for server in dict.fromkeys([*servers, *ServerProcess.started]):  # those a test made itself too
        if server.log_path.exists():
            report.sections.append((f"server log {server.log_path}",
                                    server.log_path.read_text(errors="replace")[-4000:]))


@pytest.fixture(autouse=True)
def _servers_of_this_test() -> Iterator[None]:
    ServerProcess.started.clear()
    yield
