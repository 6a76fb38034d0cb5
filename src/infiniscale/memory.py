"""Keeping a worker's resident memory close to what it uses.

glibc keeps freed heap memory for reuse. A transfer's buffers are freed when it ends, yet a worker
that streamed a few GiB stayed tens of MiB larger for the rest of its life: `malloc_trim` returns
those pages. It costs a few milliseconds, so it runs only after transfers this large.
"""

from __future__ import annotations

import ctypes
import logging

from infiniscale.core import libc

LARGE_TRANSFER = 32 << 20
log = logging.getLogger("infiniscale.memory")

# Blocks this large get a mapping of their own, unmapped when freed. glibc starts there too but
# raises the threshold after the first such block is freed, and from then on serves large blocks
# from the heap it keeps: the search index's commits (its arena pages are 1 MiB) left the worker
# holding the index 10-15 MiB larger at each peak. Streaming buffers stay just below (blobs.py).
LARGE_BLOCK = 1 << 20
# Setting that threshold also fixes the heap's trim threshold, at 128 KiB: each streamed chunk
# freed at the top of the heap would be handed back and asked for again (GET of 1 GiB lost a
# quarter of its speed). Free memory at the top is kept up to this much.
HEAP_TOP_KEPT = 8 << 20
_M_ARENA_MAX = -8
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# None where the C library is not glibc: then there is nothing to tune
_malloc_trim = libc.function("malloc_trim", [ctypes.c_size_t])
_mallopt = libc.function("mallopt", [ctypes.c_int, ctypes.c_int])


def tune_allocator() -> None:
    """Called once when a worker process starts."""
    if _mallopt is None:
        return
    # each thread would get a malloc arena of its own that keeps its freed memory; with a pool of
    # storage threads that multiplies resident memory for nothing: two arenas are plenty
    _mallopt(_M_ARENA_MAX, 2)
    _mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK)
    _mallopt(_M_TRIM_THRESHOLD, HEAP_TOP_KEPT)


def after_transfer(size: int) -> None:
    if size >= LARGE_TRANSFER:
        give_back()


def give_back() -> None:
    """Returns the heap's free pages to the system (a few milliseconds)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
