"""Thumbnailer port: an image of a file's content, fitted to a box."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# (source width, source height) -> the box to render into
Snap = Callable[[int, int], tuple[int, int]]


class ImageError(Exception):
    """The content cannot be read as what its media type says, or is too large to render."""


class Thumbnailer(Protocol):
    def render(self, source: str | bytes, media_type: str, width: int, height: int, processor: str,
               out_format: str, snap: Snap) -> bytes:
        """`source` is a file path or the content itself. Blocking; ImageError for bad input.
        `processor`: thumbnail (cover the box and crop), fit (inside the box), resize (exactly
        the box), fill (as thumbnail). `out_format`: png, jpeg or gif."""
        ...
