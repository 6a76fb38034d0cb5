"""C library functions Python 3.11 has no binding for (syncfs, sync_file_range, malloc_trim, ...),
from one handle on the C library per process."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any


def _open() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


_LIBC = _open()


def function(name: str, argtypes: list[Any], restype: Any = ctypes.c_int) -> Any | None:
    """The C function `name` with its argument and result types; None where this C library has
    none (not glibc, not Linux). A call releases the GIL while it runs; errors are in
    `ctypes.get_errno()`."""
    found = getattr(_LIBC, name, None) if _LIBC is not None else None
    if found is None:
        return None
    found.argtypes = argtypes
    found.restype = restype
    return found
