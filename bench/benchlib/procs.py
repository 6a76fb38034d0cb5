"""Process plumbing: free ports, child servers in their own process group, /proc sampling."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """Ask the kernel for an unused loopback port (tiny race until the server binds it; fine here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a server as the leader of a new session so its whole process tree can be signalled at once."""
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it after `grace` seconds."""
    pgid = proc.pid  # start_new_session made the child its own group leader
    if proc.poll() is None:
        _killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _killpg(pgid, signal.SIGKILL)
            proc.wait()
    # workers may outlive a leader that exited on its own
    if _group_alive(pgid):
        _killpg(pgid, signal.SIGKILL)


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass
class ProcStat:
    ppid: int
    rss_bytes: int
    cpu_s: float  # own user+sys plus that of reaped children, so exited workers are still counted


def snapshot() -> dict[int, ProcStat]:
    """One pass over /proc/*/stat: parent links, RSS and CPU for every process on the machine."""
    out: dict[int, ProcStat] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # exited meanwhile
        # the command name may contain spaces and ')', so split after its last ')'
        fields = raw.rsplit(b")", 1)[1].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        out[int(name)] = ProcStat(int(fields[1]), int(fields[21]) * PAGE_SIZE, ticks / CLK_TCK)
    return out


def tree(root: int, snap: dict[int, ProcStat]) -> list[int]:
    """PIDs of root and all of its descendants present in snap."""
    children: dict[int, list[int]] = {}
    for pid, st in snap.items():
        children.setdefault(st.ppid, []).append(pid)
    found, todo = [], [root] if root in snap else []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu_seconds(root: int) -> float:
    snap = snapshot()
    return sum(snap[p].cpu_s for p in tree(root, snap))


def pss_bytes(pid: int) -> int:
    """Proportional set size: resident pages, each shared one divided among the processes that map
    it. Forked workers share their parent's pages, which summed RSS counts once per process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass  # exited meanwhile
    return 0


@dataclass
class RssSampler:
    """Background thread recording the peak summed RSS (and PSS) of each watched process tree."""

    interval: float = 0.1
    roots: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    window: dict[str, int] = field(default_factory=dict)  # peak since the last reset_window()
    peak_detail: dict[str, str] = field(default_factory=dict)
    peak_pss: dict[str, int] = field(default_factory=dict)
    phase: str = "start-up"  # what the harness is doing, set by run.py
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self.roots[name] = pid
            self.peak.setdefault(name, 0)

    def reset_window(self, name: str) -> None:
        with self._lock:
            self.window[name] = 0

    def window_peak(self, name: str) -> int:
        """Peak since reset_window, including one fresh sample so short windows are not missed."""
        self.sample()
        with self._lock:
            return self.window.get(name, 0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def sample(self) -> None:
        snap = snapshot()
        with self._lock:
            for name, root in self.roots.items():
                pids = tree(root, snap)
                rss = sum(snap[p].rss_bytes for p in pids)
                if rss > self.peak[name]:
                    # which processes made the peak and during which phase, for the report
                    self.peak_detail[name] = (" ".join(f"{p}:{snap[p].rss_bytes >> 20}" for p in pids)
                                              + f" during {self.phase}")
                self.peak[name] = max(self.peak[name], rss)
                self.window[name] = max(self.window.get(name, 0), rss)
                pss = sum(pss_bytes(p) for p in pids)
                self.peak_pss[name] = max(self.peak_pss.get(name, 0), pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))
