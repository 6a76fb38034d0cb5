"""Starting the disk writes of a large file while it is still being written.

A large upload is fsynced once, when it is complete. Left alone, the kernel keeps its pages dirty
until then (with the usual limits, a GiB and more on a machine with memory to spare), and the final
fsync writes all of it while the client waits: about a third of a second per GiB on the disks we
measured, after the whole body had arrived. Asking for the writeback of each finished stretch as
the body comes in keeps the disk busy alongside the network, and the final fsync finds almost
nothing left to write. The pages stay cached, so reading the file back right away costs no more.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from infiniscale.core import libc

# a stretch this long is handed to the disk at once: far above the size of small files, which the
# commit's group flush handles, and small enough that the disk starts early in a large one
STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2  # start writing the dirty pages of the range; do not wait for them


def _load() -> Callable[[int, int, int], bool] | None:
    """sync_file_range(2) (Linux)."""
    call = libc.function("sync_file_range", [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint])
    if call is None:
        return None

    def start(fd: int, offset: int, length: int) -> bool:
        # a hint: where it fails (a filesystem without it), the final fsync still writes everything
        return call(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0

    return start


start_writeback: Callable[[int, int, int], bool] | None = _load()


class WritebackPacer:
    """Follows the writes of one file descriptor and starts the writeback of every `STEP` bytes
    written past `offset` (writes are sequential from there)."""

    def __init__(self, fd: int, offset: int = 0) -> None:
        self.fd = fd
        self.started_to = offset  # everything before this was handed to the disk

    def written_to(self, end: int) -> None:
        """The file's bytes up to `end` have been written."""
        if end - self.started_to >= STEP:
            self._start_to(end)

    def ended_at(self, end: int) -> None:
        """No more writes through this descriptor (one request of a resumable upload): what is left
        goes to the disk too, as the next request's writes are followed by a pacer of their own."""
        if end > self.started_to:
            self._start_to(end)

    def _start_to(self, end: int) -> None:
        if start_writeback is not None:
            start_writeback(self.fd, self.started_to, end - self.started_to)
        self.started_to = end
