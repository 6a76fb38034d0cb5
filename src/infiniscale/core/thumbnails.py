"""Previews (`?preview=1`): what may be previewed, the size and format oCIS answers with, a cache on
disk, and a limit on how many render at once.

Size: the requested box snaps to the configured resolutions as oCIS does. Only the source's longer
side is compared: a source smaller than the request keeps its size (no upscaling), otherwise the
smallest resolution at least as large as the request wins, or the largest there is.
Cache: `<cache>/<node id[:2]>/<node id>/<blob id>-<W>x<H>-<processor>.<ext>`; a new version of the file
makes a new name, and the node's directory goes when the file is purged or overwritten
(`forget_old`, driven by events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from infiniscale.core.model import events
from infiniscale.core.model.errors import InvalidArgument, NotFound
from infiniscale.core.model.ids import unique_suffix
from infiniscale.core.model.media import mime_type
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.ports.events import EventBus
from infiniscale.core.ports.imaging import ImageError, Thumbnailer

log = logging.getLogger("infiniscale.thumbnails")

DEFAULT_RESOLUTIONS = ((16, 16), (32, 32), (64, 64), (128, 128), (1080, 1920), (1920, 1080), (2160, 3840),
                       (3840, 2160), (4320, 7680), (7680, 4320))
PROCESSORS = ("thumbnail", "fit", "resize", "fill")
SUPPORTED = frozenset({
    "image/png", "image/jpg", "image/jpeg", "image/gif", "image/bmp", "image/x-ms-bmp", "image/tiff", "image/webp",
    "image/heic", "image/heif", "application/pdf", "text/plain", "text/markdown",
})
MAX_FILE_BYTES = 50 * 1000 * 1000  # larger sources are refused (as oCIS: "image is too large")
MAX_TEXT_BYTES = 8 << 10  # how much of a text file is drawn


class TooManyRenders(Exception):
    """All rendering slots are busy (429 with Retry-After)."""


class TooLarge(Exception):
    pass


@dataclass(frozen=True)
class PreviewRequest:
    width: int
    height: int
    processor: str


def parse_request(query: dict[str, str]) -> PreviewRequest:
    """x, y (default 32) and processor from the query; InvalidArgument with oCIS's messages."""
    size = {}
    for key, side in (("x", "width"), ("y", "height")):
        raw = query.get(key, "") or "32"
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise InvalidArgument(f"Cannot set {side} of 0 or smaller!")
        size[side] = min(value, 10_000)
    processor = query.get("processor", "").lower()
    return PreviewRequest(size["width"], size["height"], processor if processor in PROCESSORS else "")


def snap(resolutions: tuple[tuple[int, int], ...], want_w: int, want_h: int, src_w: int, src_h: int
         ) -> tuple[int, int]:
    landscape = src_w > src_h
    wanted, source = (want_w, src_w) if landscape else (want_h, src_h)
    if source < wanted:
        return (src_w, src_h)
    fitting = [r for r in resolutions if (r[0] if landscape else r[1]) >= wanted]
    if not fitting:
        return resolutions[-1]
    return min(fitting, key=lambda r: r[0] if landscape else r[1])


def previewable(media_type: str) -> bool:
    return media_type in SUPPORTED


def output_format(media_type: str, name: str) -> str:
    if media_type == "image/png" or name.lower().endswith(".png"):
        return "png"
    if media_type == "image/gif" or name.lower().endswith(".gif"):
        return "gif"
    return "jpeg"


CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}


class Previews:
    def __init__(self, thumbnailer: Thumbnailer, cache_dir: str, *, max_concurrent: int = 0,
                 wait_s: float = 10.0, resolutions: tuple[tuple[int, int], ...] = DEFAULT_RESOLUTIONS) -> None:
        """`max_concurrent` > 0: as oCIS, a request finding every slot busy gets TooManyRenders at
        once. 0: one slot per core, and a request waits up to `wait_s` for one."""
        self.thumbnailer = thumbnailer
        self.cache_dir = cache_dir
        self.resolutions = resolutions
        self.fail_fast = max_concurrent > 0
        self.wait_s = wait_s
        self._slots = asyncio.Semaphore(max_concurrent or os.cpu_count() or 1)
        self.rendered = 0  # how many were rendered (not served from the cache)

    def _node_dir(self, node_id: str) -> str:
        return os.path.join(self.cache_dir, node_id[:2], node_id)

    def cache_path(self, node: NodeInfo, req: PreviewRequest, fmt: str) -> str:
        name = f"{node.blob_id}-{req.width}x{req.height}-{req.processor or 'default'}.{fmt}"
        return os.path.join(self._node_dir(node.id), name)

    async def preview(self, node: NodeInfo, req: PreviewRequest, source: Callable[[], object]) -> tuple[bytes, str]:
        """The preview image and its content type. `source()` (awaitable) gives the content as a
        local path or bytes. NotFound for what cannot be previewed, InvalidArgument for a folder."""
        if node.is_folder:
            raise InvalidArgument("Unsupported file type")
        media_type = mime_type(node.name)
        if not previewable(media_type) or not node.blob_id:
            raise NotFound(f"File with name {node.name} could not be located")
        if node.size > MAX_FILE_BYTES:
            raise TooLarge("thumbnails: image is too large")
        fmt = output_format(media_type, node.name)
        path = self.cache_path(node, req, fmt)
        cached = await asyncio.to_thread(_read_if_exists, path)
        if cached is not None:
            return cached, CONTENT_TYPES[fmt]
        processor = req.processor or ("resize" if media_type == "image/gif" else "thumbnail")
        await self._acquire()
        try:
            data = await source()  # type: ignore[misc]
            image = await asyncio.to_thread(
                self.thumbnailer.render, data, media_type, req.width, req.height, processor, fmt,
                lambda w, h: snap(self.resolutions, req.width, req.height, w, h))
        except ImageError as exc:
            log.info("no preview of %s: %s", node.id, exc)
            raise NotFound(f"File with name {node.name} could not be located") from None
        finally:
            self._slots.release()
        self.rendered += 1
        await asyncio.to_thread(self._store, node, path, image)
        return image, CONTENT_TYPES[fmt]

    def _store(self, node: NodeInfo, path: str, image: bytes) -> None:
        """Caches a rendered preview, and drops the node's previews of earlier contents: they can
        never be served again (the key holds the content), so they go when the new content is
        first previewed, not at every upload (a file's last previewed content stays until then)."""
        _write_atomically(path, image)
        self.forget(node.id, keep_blob=node.blob_id)

    async def _acquire(self) -> None:
        if self.fail_fast:
            if self._slots.locked():
                raise TooManyRenders()
            await self._slots.acquire()
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_s)
        except TimeoutError:
            raise TooManyRenders() from None

    def forget(self, node_id: str, keep_blob: str = "") -> None:
        """Drops the node's cached previews (all, or those of other contents than `keep_blob`)."""
        folder = self._node_dir(node_id)
        if not keep_blob:
            shutil.rmtree(folder, ignore_errors=True)
            return
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return
        for name in names:
            if not name.startswith(keep_blob + "-"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))


def _read_if_exists(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write_atomically(path: str, data: bytes) -> None:
    """A cache entry: no fsync (a lost entry is rendered again), but never a torn file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{unique_suffix()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class PreviewJanitor:
    """Consumer group `thumbnails`: a file's cached previews go when it is purged (a trashed file
    keeps them, for a restore). Those of replaced contents go when the new one is previewed
    (`Previews._store`): the group takes no upload events, which were most of its traffic."""

    GROUP = "thumbnails"
    TYPES = frozenset({events.ItemPurged.type})
    LINGER_S = 0.5

    def __init__(self, previews: Previews) -> None:
        self.previews = previews

    async def run(self, bus: EventBus) -> None:
        # cached previews are keyed by content, so none is ever served stale: dropping them can
        # wait for a batch
        async for batch in bus.subscribe_batches(self.GROUP, self.TYPES, linger_s=self.LINGER_S):
            # only purges: a group made by an earlier version may take other types still
            purged = [e.node_id for e in batch if isinstance(e, events.ItemPurged)]
            if purged:
                await asyncio.to_thread(lambda purged=purged: [self.previews.forget(n) for n in purged])
