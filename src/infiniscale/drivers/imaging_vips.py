"""Thumbnailer on libvips (Debian libvips42, through pyvips): JPEG, PNG, GIF, BMP, TIFF, WebP, HEIC
and the first page of PDFs are shrunk while they load, so a 24-megapixel photo never sits decoded
in memory; text files are drawn."""

from __future__ import annotations

import pyvips

from infiniscale.core.ports.imaging import ImageError, Snap

MAX_PIXELS = 7680 * 7680  # larger sources are refused before decoding
TEXT_BYTES = 8 << 10
TEXT_LINES = 40


def _load(source: str | bytes, **options) -> pyvips.Image:
    if isinstance(source, bytes):
        return pyvips.Image.new_from_buffer(source, "", access="sequential", **options)
    return pyvips.Image.new_from_file(source, access="sequential", **options)


class VipsThumbnailer:
    def render(self, source: str | bytes, media_type: str, width: int, height: int, processor: str,
               out_format: str, snap: Snap) -> bytes:
        try:
            if media_type.startswith("text/"):
                image = self._text(source)
                box = snap(image.width, image.height)
                image = self._shrink_loaded(image, box, processor)
            else:
                header = _load(source)
                if header.width * header.height > MAX_PIXELS:
                    raise ImageError("thumbnails: image is too large")
                box = snap(header.width, header.height)
                image = self._shrink(source, box, processor)
            return self._save(image, out_format)
        except pyvips.Error as exc:
            raise ImageError(str(exc).splitlines()[0]) from None

    @staticmethod
    def _options(box: tuple[int, int], processor: str) -> dict:
        if processor == "fit":
            return {"height": box[1], "size": "down"}
        if processor == "resize":
            return {"height": box[1], "size": "force"}
        # thumbnail, fill: cover the box and cut the rest, but never enlarge (a box the snapping
        # picked larger than the source stays the source's size)
        return {"height": box[1], "crop": "centre", "size": "down"}

    def _shrink(self, source: str | bytes, box: tuple[int, int], processor: str) -> pyvips.Image:
        options = self._options(box, processor)
        if isinstance(source, bytes):
            return pyvips.Image.thumbnail_buffer(source, box[0], **options)
        return pyvips.Image.thumbnail(source, box[0], **options)

    def _shrink_loaded(self, image: pyvips.Image, box: tuple[int, int], processor: str) -> pyvips.Image:
        return image.thumbnail_image(box[0], **self._options(box, processor))

    @staticmethod
    def _text(source: str | bytes) -> pyvips.Image:
        if isinstance(source, str):
            with open(source, "rb") as f:
                raw = f.read(TEXT_BYTES)
        else:
            raw = source[:TEXT_BYTES]
        lines = raw.decode("utf-8", errors="replace").splitlines()[:TEXT_LINES] or [" "]
        body = "\n".join(line.replace("\t", "    ")[:120] for line in lines)
        escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        text = pyvips.Image.text(escaped, width=600, dpi=96, font="monospace")
        page = pyvips.Image.black(640, max(text.height + 40, 480)).invert()  # white
        ink = text.invert()  # black letters on white
        return page.insert(ink, 20, 20).colourspace("srgb")

    @staticmethod
    def _save(image: pyvips.Image, out_format: str) -> bytes:
        if out_format == "png":
            return image.pngsave_buffer(compression=6)
        if out_format == "gif":
            return image.gifsave_buffer()
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        return image.jpegsave_buffer(Q=85, strip=True)
