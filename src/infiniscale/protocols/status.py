"""status.php and the capabilities document, with the values oCIS reports (clients check them)."""

from __future__ import annotations

from typing import Any

from infiniscale import __version__

VERSION = "10.11.0.0"
VERSION_STRING = "10.11.0"
PRODUCT = "Infinite Scale"


def status_document() -> dict[str, Any]:
    return {
        "installed": True,
        "maintenance": False,
        "needsDbUpgrade": False,
        "version": VERSION,
        "versionstring": VERSION_STRING,
        "edition": "Community",
        "productname": PRODUCT,
        "product": PRODUCT,
        "productversion": __version__,
    }


def capabilities(max_chunk_size: int) -> dict[str, Any]:
    return {
        "version": {
            "major": 10, "minor": 11, "micro": 0, "string": VERSION_STRING, "edition": "Community",
            "product": PRODUCT, "productversion": __version__,
        },
        "capabilities": {
            "core": {
                "pollinterval": 60,
                "webdav-root": "remote.php/webdav",
                "status": status_document(),
                "support-url-signing": True,
                "support-sse": False,
            },
            "checksums": {"supportedTypes": ["SHA1", "MD5", "Adler32"], "preferredUploadType": "SHA1"},
            "files": {
                "privateLinks": True,
                "bigfilechunking": False,
                "undelete": False,
                "versioning": False,
                "favorites": False,
                "full_text_search": False,
                "tags": False,
                "blacklisted_files": [],
                "archivers": [],
                "app_providers": [],
            },
            "dav": {"reports": [], "propfind": {"depth_infinity": False}},
            "files_sharing": {"api_enabled": False},
            "spaces": {"version": "1.0.0", "enabled": True, "projects": False, "share_jail": False},
            "graph": {"personal-data-export": False, "users": {}},
            "notifications": {"ocs-endpoints": []},
        },
    }
