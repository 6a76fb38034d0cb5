"""Which HTTP worker of a server runs the event consumers: one at a time.

Every worker of a consumer group fetches from the same durable consumer, so two workers split the
events between them: each pays its own fetches, acknowledgements, thread trips and transactions for
half-sized batches, both event loops carry consumer work beside requests, and two processes write
the activity log's database at once. One worker holding the claim runs every group instead; when it
ends (a crash, a respawn) another takes the claim over, and events wait in the stream meanwhile.

The claim is an abstract Unix socket named after the server's main process: binding it is atomic,
only one process can hold the name, and the kernel lets go of it when its holder ends, however that
happens. No file is left behind. Processes started with `--roles workers` do not claim: they are
the deployment's consumers and share the work on purpose.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from functools import partial

RETRY_S = 2.0  # how soon a waiting worker notices that the holder has gone


class ConsumerClaim:
    def __init__(self, name: str) -> None:
        self.address = "\0" + name  # the abstract namespace: no file on disk
        self._socket: socket.socket | None = None

    @classmethod
    def for_server(cls) -> ConsumerClaim:
        """The claim shared by the workers of this server: they are children of one main process."""
        return cls(f"infiniscale/consumers/{os.getppid()}")

    def try_take(self) -> bool:
        if self._socket is not None:
            return True
        candidate = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            candidate.bind(self.address)
        except OSError:  # EADDRINUSE: another worker holds it
            candidate.close()
            return False
        self._socket = candidate
        return True

    async def wait(self) -> None:
        while not self.try_take():
            await asyncio.sleep(RETRY_S)

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def guard(self, jobs: tuple[Callable[[], Awaitable[None]], ...]) -> tuple[Callable[[], Awaitable[None]], ...]:
        """The jobs, each starting once this process holds the claim."""
        return tuple(partial(self._once_claimed, job) for job in jobs)

    async def _once_claimed(self, job: Callable[[], Awaitable[None]]) -> None:
        await self.wait()
        await job()
