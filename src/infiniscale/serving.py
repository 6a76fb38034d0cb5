"""Running the HTTP server (granian): in this very process when there is one HTTP worker, else as
the supervisor of one process per worker.

A supervising parent is a Python process of its own, about 30 MiB resident, whose only work is
to restart a worker that crashed. With a single worker the server is one program instead, as
oCIS is: whatever runs `infiniscale server` (systemd, a container runtime) restarts it if it ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infiniscale.settings import RESOLVED_ENV, Settings, http_worker_count

# a stop waits this long for requests in flight; live-update streams (SSE) never end by themselves
STOP_TIMEOUT_S = 10
BACKLOG = 2048
log = logging.getLogger("infiniscale.serving")


def serve(settings: Settings) -> None:
    """Serves until SIGTERM or SIGINT, then lets requests in flight finish (STOP_TIMEOUT_S at most)."""
    os.environ[RESOLVED_ENV] = settings.to_json()  # where `runtime.create_app` reads the settings
    if http_worker_count(settings) == 1:
        _serve_here(settings)
    else:
        _serve_with_worker_processes(settings)


def _options(settings: Settings) -> dict[str, Any]:
    from granian.constants import Interfaces
    from granian.log import LogLevels

    options: dict[str, Any] = {
        "address": settings.listen_host, "port": settings.listen_port, "interface": Interfaces.ASGI,
        "factory": True, "backlog": BACKLOG,
        # warnings always: a worker that died and was respawned must show in the log
        "log_level": LogLevels.debug if settings.log_level in ("debug", "trace") else LogLevels.warning,
    }
    if settings.tls:
        options |= {"ssl_cert": Path(settings.tls_cert), "ssl_key": Path(settings.tls_key),
                    "ssl_protocol_min": "tls1.2"}
    return options


def _serve_with_worker_processes(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Loops

    Granian("infiniscale.runtime:create_app", workers=http_worker_count(settings), loop=Loops.uvloop,
            respawn_failed_workers=True, workers_kill_timeout=STOP_TIMEOUT_S, **_options(settings)).serve()


class _DropExperimentalNotice(logging.Filter):
    """granian calls its in-process mode experimental at every start; for us it is the tested
    default on small machines, and an admin reading the log could take the notice for a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


def _serve_here(settings: Settings) -> None:
    import uvloop
    from granian.server.embed import Server

    from infiniscale.runtime import create_app

    server = Server(create_app, **_options(settings))
    logging.getLogger("_granian").addFilter(_DropExperimentalNotice())

    async def run() -> None:
        loop = asyncio.get_running_loop()
        serving = asyncio.current_task()

        def stop() -> None:
            server.signal_handler_interrupt()
            # granian waits for every connection to close: one that never does is cut after this
            loop.call_later(STOP_TIMEOUT_S, serving.cancel)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        try:
            await server.serve()
        except asyncio.CancelledError:
            log.warning("stopped with requests still open after %s s", STOP_TIMEOUT_S)

    uvloop.run(run())


async def end_live_streams_on_stop(end_all: Callable[[], None]) -> None:
    """Run once by each HTTP worker when it starts serving: SIGTERM and SIGINT end its live-update
    streams at once (they never end by themselves, and the stop would wait STOP_TIMEOUT_S for
    them), then go on to the handler the server installed: granian's in a worker process, or
    `_serve_here`'s. Python's handler runs beside the event loop's own, which still hears of the
    signal through its wake-up file descriptor."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread; an in-process test has none to chain
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        installed = signal.getsignal(signum)
        if not callable(installed):  # the default action: no server installed a handler here
            continue

        def chained(sig: int, frame: Any, installed: Callable = installed) -> None:
            loop.call_soon_threadsafe(end_all)
            installed(sig, frame)

        signal.signal(signum, chained)
