"""Composition root: builds drivers from settings and hands them to the core and the protocols.
The only module that knows every layer."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os

from infiniscale.asgi import App
from infiniscale.core.files import FileService
from infiniscale.drivers.bus_local import LocalEventBus
from infiniscale.drivers.decomposed.check import check
from infiniscale.drivers.decomposed.tree import DecomposedStorage
from infiniscale.drivers.directory_builtin import BuiltinDirectory
from infiniscale.observability import setup_logging
from infiniscale.protocols.auth import BasicAuthenticator
from infiniscale.protocols.webdav.app import WebDavApp
from infiniscale.protocols.webdav.context import DavConfig, DavContext
from infiniscale.settings import Settings

SETTINGS_ENV = "INFINISCALE_RESOLVED_SETTINGS"
log = logging.getLogger("infiniscale.runtime")


def directory_path(settings: Settings) -> str:
    return os.path.join(settings.base_data_path, "idm", "users.mpk")


def build_directory(settings: Settings) -> BuiltinDirectory:
    return BuiltinDirectory(directory_path(settings))


def build_storage(settings: Settings) -> DecomposedStorage:
    return DecomposedStorage(settings.storage_root)


def build_app(settings: Settings) -> App:
    storage = build_storage(settings)
    bus = LocalEventBus()
    files = FileService(storage, bus, settings.storage_mount_id, settings.max_name_length)
    dav = DavContext(files, DavConfig(base_url=settings.url.rstrip("/"),
                                      allow_depth_infinity=settings.allow_propfind_depth_infinity,
                                      max_xml_bytes=settings.max_request_xml_bytes))
    auth = BasicAuthenticator(build_directory(settings), enabled=settings.enable_basic_auth)
    return App(WebDavApp(dav), auth, base_url=settings.url.rstrip("/"),
               max_chunk_size=settings.upload_max_chunk_size,
               depth_infinity=settings.allow_propfind_depth_infinity)


def create_app() -> App:
    """granian's factory in each worker process: settings come resolved from the parent."""
    settings = Settings.from_json(os.environ[SETTINGS_ENV])
    setup_logging(settings.log_level, settings.log_pretty)
    return build_app(settings)


def unclean_marker(settings: Settings) -> str:
    return os.path.join(settings.storage_root, ".running")


class InstanceLock:
    """Tells whether other servers use the same storage. Every running server holds a shared flock
    on `.instances`; only a server that can take it exclusively is alone, and only then may it
    repair (repair reclaims temp files that another live server could still be writing)."""

    def __init__(self, settings: Settings) -> None:
        os.makedirs(settings.storage_root, exist_ok=True)
        self.fd = os.open(os.path.join(settings.storage_root, ".instances"), os.O_RDWR | os.O_CREAT, 0o600)

    def alone(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def share(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_SH)


def recover(settings: Settings) -> InstanceLock:
    """Before serving: if the last run did not stop cleanly, finish interrupted operations and
    recompute derived data (tree sizes, tree mtimes, listing caches); reclaim what interrupted
    writes left. Skipped while other servers run on the same storage."""
    lock = InstanceLock(settings)
    marker = unclean_marker(settings)
    if lock.alone() and os.path.exists(marker):
        log.warning("the last run did not stop cleanly: checking and repairing storage")
        report = check(build_storage(settings), repair=True)
        log.warning("storage repair: %s", report.summary().splitlines()[1])
    with open(marker, "w") as fh:
        fh.write(str(os.getpid()))
    lock.share()
    return lock


def mark_clean_shutdown(settings: Settings, lock: InstanceLock) -> None:
    """The last server to stop marks the storage clean."""
    if lock.alone():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(unclean_marker(settings))
    os.close(lock.fd)
