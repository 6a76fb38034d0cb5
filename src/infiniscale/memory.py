"""Giving memory back to the system after a large transfer.

A transfer's buffers are freed when it ends, but glibc keeps freed heap memory for reuse, so a
worker that streamed a few GiB stays tens of MiB larger for the rest of its life. `malloc_trim`
returns those pages; it costs a few milliseconds, so it runs only after transfers this large.
"""

from __future__ import annotations

import ctypes
import logging

LARGE_TRANSFER = 32 << 20
log = logging.getLogger("infiniscale.memory")

try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc: nothing to do
    _malloc_trim = None


def after_transfer(size: int) -> None:
    if size >= LARGE_TRANSFER:
        give_back()


def give_back() -> None:
    """Returns the heap's free pages to the system (a few milliseconds)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
