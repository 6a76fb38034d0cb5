"""Metadata reads on the event loop, as long as they stay fast.

Resolving a path on local storage is a few readlinks and small file reads from the page cache,
tens of microseconds. Handing that to a thread and back cost more than the reads: in the server
a small file's GET took 0.33 ms of CPU with the thread hop and 0.20 without, and a single client
got 60 % more files per second. A read that blocks (a cold cache on a spinning disk, a storage
that stalls) stops every request of the process while it runs, though: after one read slower
than `slow_s`, reads go to threads for `threaded_for_s` before the loop tries again.
Network filesystems are left to threads by the caller (every operation may be a round trip).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial
from typing import Any, TypeVar

log = logging.getLogger("infiniscale.storage")

T = TypeVar("T")

SLOW_S = 0.02  # well above scheduling delays on a busy machine, far below a stalled disk
THREADED_FOR_S = 10.0


class InlineReads:
    def __init__(self, executor: Executor, slow_s: float = SLOW_S, threaded_for_s: float = THREADED_FOR_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.executor = executor
        self.slow_s = slow_s
        self.threaded_for_s = threaded_for_s
        self.clock = clock
        self._threaded_until = float("-inf")

    @property
    def inline(self) -> bool:
        return self.clock() >= self._threaded_until

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        if self.inline:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                took = time.perf_counter() - started
                if took > self.slow_s:
                    self._threaded_until = self.clock() + self.threaded_for_s
                    log.warning("a metadata read took %.0f ms: reads go to threads for %.0f s",
                                took * 1000, self.threaded_for_s)
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args))
