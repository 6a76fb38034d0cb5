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


TUS_EXTENSIONS = "creation,creation-with-upload,checksum,expiration,termination"


def search_capability(content: bool) -> dict[str, Any]:
    """What search understands (the web client shows filters for what is enabled)."""
    return {"property": {
        "name": {"enabled": True},
        "mtime": {"enabled": True, "keywords": ["today", "last 7 days", "last 30 days", "this year", "last year"]},
        "size": {"enabled": True},
        "mediatype": {"enabled": True, "keywords": ["document", "spreadsheet", "presentation", "pdf", "image", "video",
                                                    "audio", "folder", "archive"]},
        "type": {"enabled": True}, "tag": {"enabled": True}, "tags": {"enabled": True},
        "content": {"enabled": content}, "scope": {"enabled": True},
    }}


def capabilities(max_chunk_size: int, *, favorites: bool = True, max_quota: int = 0, sharing: bool = False,
                 auto_accept_shares: bool = True, link_passwords: tuple[bool, bool] = (True, False),
                 password_min: int = 8) -> dict[str, Any]:
    """`link_passwords`: whether every link, and whether writeable links, need a password."""
    every, writeable = link_passwords
    """The capabilities document with oCIS's shape. Values say what this server does: a feature
    that is not served yet is advertised as off, so that clients do not try it."""
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
                "support-url-signing": False,  # set by the app when signed URLs are served
                "support-sse": False,
            },
            # the desktop clients know these spellings only; lowercase ones make them skip checksums
            "checksums": {"supportedTypes": ["SHA1", "MD5", "Adler32"], "preferredUploadType": "SHA1"},
            "files": {
                "privateLinks": True,
                "bigfilechunking": False,
                "undelete": True,
                "versioning": True,
                "favorites": favorites,
                "full_text_search": False,
                "tags": True,
                "blacklisted_files": [],
                "tus_support": {
                    "version": "1.0.0",
                    "resumable": "1.0.0",
                    "extension": TUS_EXTENSIONS,
                    "max_chunk_size": max_chunk_size,
                    "http_method_override": "",
                },
                "archivers": [],
                "app_providers": [],
            },
            "dav": {
                "chunking": "1.0",
                "chunkingParallelUploadDisabled": False,
                "reports": [],  # search-files comes with search
                "trashbin": "1.0",
                "propfind": {"depth_infinity": False},
            },
            "files_sharing": {
                "api_enabled": sharing,
                "resharing": False,
                "group_sharing": sharing,
                "sharing_roles": sharing,
                "deny_access": False,
                "auto_accept_share": auto_accept_shares,
                "share_with_group_members_only": False,
                "share_with_membership_groups_only": False,
                "search_min_length": 3,
                "default_permissions": 22,
                "user_enumeration": {"enabled": False, "group_members_only": False},
                "public": {
                    "enabled": sharing, "send_mail": False, "social_share": False, "upload": sharing,
                    "multiple": sharing, "supports_upload_only": sharing,
                    "password": {"enforced": every, "enforced_for": {
                        "read_only": every, "read_write": every or writeable,
                        "read_write_delete": every or writeable, "upload_only": every or writeable}},
                    "expire_date": {"enabled": False}, "can_edit": sharing, "alias": False,
                    "default_permissions": 1,
                },
                "user": {"send_mail": False, "profile_picture": False, "settings": [],
                         "expire_date": {"enabled": False}},
                "federation": {"outgoing": False, "incoming": False},
            },
            "spaces": {"version": "1.0.0", "enabled": True, "projects": True, "share_jail": sharing,
                       "max_quota": max_quota},
            "graph": {"personal-data-export": False, "users": {
                "read_only_attributes": [], "create_disabled": True, "delete_disabled": True,
                "change_password_self_disabled": True}},
            "password_policy": {"min_characters": password_min, "max_characters": 72, "min_lowercase_characters": 0,
                                "min_uppercase_characters": 0, "min_digits": 0, "min_special_characters": 0},
            "notifications": {"ocs-endpoints": [], "configurable": False},
        },
    }
