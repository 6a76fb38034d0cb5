"""Small filesystem primitives: atomic durable writes and cross-process locks.

Every write that can be observed goes through a temp file in the same directory, is fsynced, renamed
into place and its directory fsynced: a crash leaves the old or the new file, never a mix.

Locks are fcntl locks owned by the open file description ("OFD locks", Linux 3.15+): like flock,
every holder with its own open of the file excludes the others, threads included; unlike flock,
the NFS client hands them to the server, so they hold between machines sharing one data directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import time
from collections.abc import Iterator

from infiniscale.core.model.ids import unique_suffix

_FLOCK = "hhqqi4x"  # struct flock on Linux: type, whence, start, len (0: to the end), pid (0 for OFD locks)


def lock_fd(fd: int, exclusive: bool = True, wait: bool = True) -> bool:
    """Locks the whole file for this open file description. Without `wait`, returns False at once
    when somebody else holds a conflicting lock. A held lock is converted in one step."""
    kind = fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK, struct.pack(_FLOCK, kind, 0, 0, 0, 0))
    except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: held elsewhere
        if wait:
            raise
        return False
    return True


def unlock_fd(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_UNLCK, 0, 0, 0, 0))


# Names that can never come from a user: user-supplied names are valid UTF-8, this byte never is.
TEMP_PREFIX = b"\xff.tmp-"


def fsync_dir(path: str | bytes) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write until every byte is written (a write may take fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomic(path: str, data: bytes, durable: bool = True, sync_dir: bool = True,
                 newer_mtime: bool = False) -> None:
    """Replaces `path` with `data` atomically; with `durable` the new content survives power loss.
    `sync_dir=False` leaves the directory entry to a later directory fsync of the same operation:
    on journaling filesystems (ext4, XFS) that fsync commits every earlier rename with it.
    `newer_mtime` (for files whose readers cache them by their stat, written under a lock) gives the
    new file an mtime later than the old one's to the nanosecond: the filesystem's own clock ticks
    in milliseconds and inodes are reused, so two quick rewrites could otherwise look the same."""
    tmp = write_staged(path, data, durable, newer_mtime)
    os.rename(tmp, path)
    if durable and sync_dir:
        fsync_dir(os.path.dirname(path))


def write_new(path: str, data: bytes, durable: bool = True) -> None:
    """Creates `path` with `data`, failing if it exists. Only for files nothing refers to yet (the
    sidecar of a node before its link is made): a crash leaves unreferenced garbage for
    `storage check`, so the temp file and rename of `write_atomic` are not needed. Without
    `durable`, a group sync before the file is referred to makes it durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_staged(path: str, data: bytes, durable: bool = False, newer_mtime: bool = False) -> str:
    """Writes what is to replace `path` into a temp file beside it and returns the temp file's
    name: renaming it over `path` is the atomic replacement. Without `durable`, the caller makes it
    durable before the rename (a group sync); `newer_mtime` as for `write_atomic`."""
    tmp = f"{path}.{unique_suffix()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, data)
        if newer_mtime:
            try:
                previous = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                previous = 0
            stamp = max(time.time_ns(), previous + 1)
            os.utime(fd, ns=(stamp, stamp))
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def makedirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


class _LockFiles(threading.local):
    """Open lock files of one thread, kept for reuse: opening and closing them cost two system
    calls per lock taken, on the hottest paths. flock belongs to the open file description, so
    each thread needs its own; a lock the thread already holds gets a fresh description, which
    keeps nested acquisitions exactly as exclusive as before."""

    LIMIT = 128

    def __init__(self) -> None:
        self.idle: dict[str, int] = {}

    def take(self, path: str) -> int:
        fd = self.idle.pop(path, None)
        return fd if fd is not None else os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def give_back(self, path: str, fd: int) -> None:
        if path in self.idle or len(self.idle) >= self.LIMIT:
            os.close(fd)
        else:
            self.idle[path] = fd


_lock_files = _LockFiles()


class WouldBlock(Exception):
    """A lock is held elsewhere, and the caller (a coroutine on the event loop) may not wait."""


@contextlib.contextmanager
def flocked(path: str, shared: bool = False, wait: bool = True) -> Iterator[None]:
    """Holds a lock on `path` (created if missing). Works across processes and threads alike:
    every holder has its own open file description. Without `wait`, raises WouldBlock at once
    when somebody else holds it."""
    fd = _lock_files.take(path)
    try:
        locked = lock_fd(fd, exclusive=not shared, wait=wait)
    except BaseException:
        os.close(fd)
        raise
    if not locked:
        _lock_files.give_back(path, fd)
        raise WouldBlock(path)
    try:
        yield
    finally:
        try:
            unlock_fd(fd)
        except BaseException:
            os.close(fd)  # closing releases the lock in any case
            raise
        _lock_files.give_back(path, fd)


# filesystems whose every metadata operation may be a round trip to another machine
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs",
                                 "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "davfs", "sshfs"})


def filesystem_type(path: str, mountinfo: str | None = None) -> str:
    """The type of the filesystem `path` is on, from /proc/self/mountinfo ("" if unknown)."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
                mountinfo = f.read()
        except OSError:
            return ""
    target = os.path.realpath(path)
    best, found = -1, ""
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not rest:
            continue
        mount_point = parts[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= best:  # the last of equal mounts is the one on top
            best, found = len(mount_point), rest.split()[0]
    return found


def on_network_filesystem(path: str, mountinfo: str | None = None) -> bool:
    kind = filesystem_type(path, mountinfo)
    return kind in NETWORK_FILESYSTEMS or kind.startswith("fuse")
