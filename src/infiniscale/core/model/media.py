"""Media types of files, guessed from their names, and the coarse groups search filters by."""

from __future__ import annotations

import mimetypes
from functools import lru_cache

FOLDER_MEDIA_TYPE = "httpd/unix-directory"

# search's `mediatype:<group>` (as the web client offers them) -> the media types in that group;
# an entry ending in "/" is a prefix
MEDIA_GROUPS: dict[str, tuple[str, ...]] = {
    "file": (),  # any file: handled by the type, not the media type
    "folder": (FOLDER_MEDIA_TYPE,),
    "document": (
        "application/msword", "application/rtf", "text/rtf", "text/plain", "text/markdown",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.",
        "application/vnd.ms-word.", "application/vnd.oasis.opendocument.text",
        "application/vnd.apple.pages", "application/x-iwork-pages-sffpages",
    ),
    "spreadsheet": (
        "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.",
        "application/vnd.oasis.opendocument.spreadsheet", "text/csv", "application/vnd.apple.numbers",
        "application/x-iwork-numbers-sffnumbers",
    ),
    "presentation": (
        "application/vnd.ms-powerpoint", "application/vnd.openxmlformats-officedocument.presentationml.",
        "application/vnd.oasis.opendocument.presentation", "application/vnd.apple.keynote",
        "application/x-iwork-keynote-sffkey",
    ),
    "pdf": ("application/pdf",),
    "image": ("image/",),
    "video": ("video/",),
    "audio": ("audio/",),
    "archive": (
        "application/zip", "application/x-tar", "application/gzip", "application/x-gzip",
        "application/x-7z-compressed", "application/x-rar-compressed", "application/vnd.rar",
        "application/x-bzip2", "application/x-xz", "application/zstd",
    ),
}


@lru_cache(maxsize=4096)
def mime_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def in_group(media_type: str, group: str) -> bool:
    return any(media_type.startswith(p) if p.endswith((".", "/")) else media_type == p
               for p in MEDIA_GROUPS.get(group, ()))


def groups_of(media_type: str) -> list[str]:
    return [g for g in MEDIA_GROUPS if in_group(media_type, g)]
