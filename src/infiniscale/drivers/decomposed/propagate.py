"""Tree size and tree mtime propagation, group-committed.

Every change adds its size delta to each ancestor up to the space root and moves their tree mtime
forward (so every ancestor etag changes) before the request answers. Done one change at a time, 16
uploads into one folder would rewrite that folder's and the root's metadata 16 times, one after the
other. Instead, changes that arrive while an update is being written join the next batch: a leader
thread applies a whole batch, summing deltas per ancestor, and every member waits until its batch is
applied. Each ancestor is still updated by a read-modify-write under its cross-process lock, so
batches of different processes compose.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from infiniscale.drivers.decomposed.fsutil import WouldBlock

# (space id, node id) -> size delta to add there and above
Deltas = dict[tuple[str, str], int]
# applies a delta to one node; returns its parent id ("" at the root or when propagation must stop)
ApplyOne = Callable[[str, str, int], str]


@dataclass
class _Batch:
    deltas: Deltas = field(default_factory=dict)
    done: bool = False
    error: BaseException | None = None


class Propagator:
    def __init__(self, apply_one: ApplyOne) -> None:
        self._apply_one = apply_one
        self._cv = threading.Condition()
        self._current = _Batch()
        self._leader = False

    def propagate(self, space_id: str, start_id: str, delta: int) -> None:
        """Returns once the delta has been applied up to the root (by this thread or a leader)."""
        self.propagate_all({(space_id, start_id): delta})

    def propagate_all(self, deltas: Deltas) -> None:
        """`propagate` for several starting points at once."""
        with self._cv:
            batch = self._current
            for key, delta in deltas.items():
                batch.deltas[key] = batch.deltas.get(key, 0) + delta
            if self._leader:
                while not batch.done:
                    self._cv.wait()
                if batch.error is not None:
                    raise batch.error
                return
            self._leader = True
            self._current = _Batch()
        own = batch
        while True:
            try:
                self._apply(batch.deltas)
            except BaseException as exc:  # handed to every member of the batch
                batch.error = exc
            with self._cv:
                batch.done = True
                self._cv.notify_all()
                if not self._current.deltas:
                    self._leader = False
                    break
                batch = self._current  # changes that arrived meanwhile: lead them too
                self._current = _Batch()
        if own.error is not None:
            raise own.error

    def _apply(self, deltas: Deltas) -> None:
        """Walks all starting points up together, level by level, merging where paths meet."""
        work = dict(deltas)
        while work:
            upper: Deltas = {}
            for (space_id, node_id), delta in work.items():
                parent_id = self._apply_one(space_id, node_id, delta)
                if parent_id:
                    key = (space_id, parent_id)
                    upper[key] = upper.get(key, 0) + delta
            work = upper


class LoopPropagation:
    """The propagations that coroutines of one event loop ask for in one turn of the loop, applied
    together. Uploads whose flush completed together resume together, so they propagate together
    too. With `propagate_now` (local storage: see `apply_unless_locked`), each ancestor whose lock
    is free is updated right there on the loop, as a thread hop costs more than the update; what
    meets a lock held elsewhere goes on to `propagate_all` in a thread of its own, which waits."""

    def __init__(self, propagate_all: Callable[[Deltas], None],
                 propagate_now: Callable[[Deltas], Deltas] | None = None) -> None:
        self._propagate_all = propagate_all
        self._propagate_now = propagate_now
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="propagation")
        self._open: dict[asyncio.AbstractEventLoop, tuple[Deltas, asyncio.Future[None]]] = {}

    async def propagate(self, space_id: str, node_id: str, delta: int) -> None:
        loop = asyncio.get_running_loop()
        batch = self._open.get(loop)
        if batch is None:
            batch = self._open[loop] = ({}, loop.create_future())
            loop.call_soon(self._launch, loop)  # after the coroutines that are ready now
        deltas, done = batch
        key = (space_id, node_id)
        deltas[key] = deltas.get(key, 0) + delta
        await asyncio.shield(done)  # one member's cancellation must not fail the others

    def _launch(self, loop: asyncio.AbstractEventLoop) -> None:
        deltas, done = self._open.pop(loop)
        if self._propagate_now is not None:
            try:
                deltas = self._propagate_now(deltas)
            except BaseException as exc:  # handed to every member, as from the thread
                done.set_exception(exc)
                return
            if not deltas:
                done.set_result(None)
                return
        work = loop.run_in_executor(self._executor, self._propagate_all, deltas)
        work.add_done_callback(lambda finished: _pass_on(finished, done))


def apply_unless_locked(apply_one: ApplyOne, deltas: Deltas) -> Deltas:
    """Walks the deltas up level by level like `Propagator`, with an `apply_one` that raises
    WouldBlock instead of waiting for a lock; returns the deltas left at the nodes it met locked
    (each still to be applied there and above)."""
    left: Deltas = {}
    work = dict(deltas)
    while work:
        upper: Deltas = {}
        for key, delta in work.items():
            try:
                parent_id = apply_one(key[0], key[1], delta)
            except WouldBlock:
                left[key] = left.get(key, 0) + delta
                continue
            if parent_id:
                up = (key[0], parent_id)
                upper[up] = upper.get(up, 0) + delta
        work = upper
    return left


def _pass_on(finished: asyncio.Future[None], done: asyncio.Future[None]) -> None:
    if finished.cancelled():
        done.cancel()
    elif (error := finished.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(None)
