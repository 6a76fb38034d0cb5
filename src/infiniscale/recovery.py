"""Start-up recovery and the clean-shutdown marker, kept apart from the HTTP stack so the parent
process of the server stays small."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys

from infiniscale.drivers.decomposed.fsutil import lock_fd
from infiniscale.settings import Settings

log = logging.getLogger("infiniscale.recovery")


def unclean_marker(settings: Settings) -> str:
    return os.path.join(settings.storage_root, ".running")


class InstanceLock:
    """Tells whether other servers use the same storage. Every running server holds a shared lock
    on `.instances`; only a server that can take it exclusively is alone, and only then may it
    repair (repair reclaims temp files that another live server could still be writing)."""

    def __init__(self, settings: Settings) -> None:
        os.makedirs(settings.storage_root, exist_ok=True)
        self.fd = os.open(os.path.join(settings.storage_root, ".instances"), os.O_RDWR | os.O_CREAT, 0o600)

    def alone(self) -> bool:
        return lock_fd(self.fd, wait=False)

    def share(self) -> None:
        lock_fd(self.fd, exclusive=False)


def recover(settings: Settings) -> InstanceLock:
    """Before serving: if the last run did not stop cleanly, finish interrupted operations and
    recompute derived data (tree sizes, tree mtimes, listing caches); reclaim what interrupted
    writes left. Skipped while other servers run on the same storage."""
    lock = InstanceLock(settings)
    marker = unclean_marker(settings)
    if lock.alone() and os.path.exists(marker):
        log.warning("the last run did not stop cleanly: checking and repairing storage")
        # in a child process: a walk over a large tree must not leave its memory in the server
        result = subprocess.run([sys.executable, "-m", "infiniscale", "storage", "check", "--repair", "--after-crash"],
                                capture_output=True, check=False)
        # names in the report are file system bytes; never let one stop the start-up
        lines = result.stdout.decode("utf-8", "backslashreplace").splitlines()
        stderr = result.stderr.decode("utf-8", "backslashreplace")
        log.warning("storage repair: %s", lines[1] if len(lines) > 1 else stderr[-500:])
        for line in lines[2:]:
            log.warning("storage repair: %s", line)
    with open(marker, "w") as fh:
        fh.write(str(os.getpid()))
    lock.share()
    return lock


def mark_clean_shutdown(settings: Settings, lock: InstanceLock) -> None:
    """The last server to stop marks the storage clean."""
    if lock.alone():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(unclean_marker(settings))
    os.close(lock.fd)
