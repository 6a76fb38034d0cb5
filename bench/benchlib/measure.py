"""Timing of one measured section: wall clock plus CPU spent by the server tree and by this client."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from benchlib import procs


@dataclass
class Stopwatch:
    """start()/stop() around the timed part only; /proc is read outside the wall-clock interval."""

    server_pid: int
    _cpu0: float = 0.0
    _proc0: float = 0.0
    _t0: float = 0.0
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def start(self) -> None:
        self._cpu0 = procs.tree_cpu_seconds(self.server_pid)
        self._proc0 = time.process_time()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self._t0
        self.client_cpu = time.process_time() - self._proc0
        self.server_cpu = procs.tree_cpu_seconds(self.server_pid) - self._cpu0


@dataclass
class Result:
    """One figure for one server: value None means FAILED (error says why)."""

    value: float | None = None
    error: str | None = None
    samples: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @classmethod
    def failed(cls, error: str) -> Result:
        return cls(error=error)

    def add(self, sw: Stopwatch) -> None:
        self.samples.append(sw.wall)
        self.server_cpu_s += sw.server_cpu
        self.client_cpu_s += sw.client_cpu

    def median_ms(self) -> Result:
        self.value = statistics.median(self.samples) * 1000
        return self

    @classmethod
    def merge(cls, rounds: list[Result]) -> Result:
        """Median over rounds; any failed round fails the figure (a wrong answer is never averaged away)."""
        if bad := [r for r in rounds if r.value is None]:
            return bad[0]
        if len(rounds) == 1:
            return rounds[0]
        return cls(value=statistics.median(r.value for r in rounds if r.value is not None),
                   samples=[s for r in rounds for s in r.samples],
                   server_cpu_s=statistics.fmean(r.server_cpu_s for r in rounds),
                   client_cpu_s=statistics.fmean(r.client_cpu_s for r in rounds))
