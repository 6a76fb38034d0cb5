"""Group commit of durability: one flush of the filesystem for every writer waiting at the time.

On ext4 each fsync of a new file forces a journal commit of its own, and concurrent fsyncs from
many threads queue behind one another; 16 uploads into one folder paid three each. Here a writer
asks for "everything I wrote so far, on stable storage" and waits; one thread runs syncfs(2) for
all who asked before it started. A flush that is already running may have missed a writer's data,
so that writer waits for the next one. Threads wait with `sync()`, coroutines with `sync_async()`,
which costs the event loop no thread of its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import weakref

from infiniscale.core import libc

_syncfs = libc.function("syncfs", [ctypes.c_int])  # Python 3.11 has no binding


def _flush(fd: int) -> None:
    if _syncfs is None:
        os.sync()
    elif _syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"syncfs: {os.strerror(code)}")


class GroupSync:
    def __init__(self, path: str) -> None:
        """`path`: any directory on the filesystem to flush."""
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.close = weakref.finalize(self, os.close, self._fd)
        self._cv = threading.Condition()
        self._requested = 0  # generation of the newest flush somebody waits for
        self._started = 0
        self._finished = 0
        self._errors: dict[int, OSError] = {}  # generation -> what its flush raised
        self._coroutines: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._asking: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}  # this turn's askers
        self._thread: threading.Thread | None = None
        self._thread_pid = 0

    def sync(self) -> None:
        """Returns once everything this thread wrote before the call is on stable storage."""
        with self._cv:
            target = self._ask()
            while self._finished < target:
                self._cv.wait()
            self._raise_for(target)

    async def sync_async(self) -> None:
        """`sync()` for a coroutine: the event loop goes on meanwhile. The coroutines that ask in
        one turn of the loop ask together, at its end: at once, the first would start a flush
        alone and the rest would wait for the one after it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        asking = self._asking.get(loop)
        if asking is None:
            asking = self._asking[loop] = []
            loop.call_soon(self._ask_for, loop)
        asking.append(future)
        await future

    def _ask_for(self, loop: asyncio.AbstractEventLoop) -> None:
        futures = self._asking.pop(loop)
        try:
            with self._cv:
                target = self._ask()
                self._coroutines.extend((target, loop, future) for future in futures)
        except Exception as exc:  # no flushing thread (it could not start): the askers hear of it
            for future in futures:
                if not future.done():
                    future.set_exception(exc)

    def _ask(self) -> int:
        """Under the lock: the generation that settles a request made now, and the flusher told."""
        target = self._started + 1
        if target > self._requested:
            self._requested = target
            self._cv.notify_all()
        if self._thread is None or self._thread_pid != os.getpid():  # none yet, or we forked
            self._thread_pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="group-sync", daemon=True)
            self._thread.start()
        return target

    def _raise_for(self, generation: int) -> None:
        if (error := self._errors.get(generation)) is not None:
            raise error

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._requested <= self._finished:
                    self._cv.wait()
                self._started += 1
                generation = self._started
            error: OSError | None = None
            try:
                _flush(self._fd)
            except OSError as exc:
                error = exc
            with self._cv:
                self._finished = generation
                if error is not None:
                    self._errors[generation] = error
                    for old in [g for g in self._errors if g < generation - 1024]:
                        del self._errors[old]
                settled = [c for c in self._coroutines if c[0] <= generation]
                self._coroutines = [c for c in self._coroutines if c[0] > generation]
                self._cv.notify_all()
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _target, loop, future in settled:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():  # one wake-up per loop for the whole group
                try:
                    loop.call_soon_threadsafe(_settle, futures, error)
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    pass


def _settle(futures: list[asyncio.Future[None]], error: OSError | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(OSError(error.errno, error.strerror))
