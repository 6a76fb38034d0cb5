"""`infiniscale storage check`: verifies a whole storage tree and optionally repairs it.

Errors are inconsistencies (a missing or wrong-sized blob, a tree size that does not add up, a
dangling link, an unfinished operation). Garbage is what an interrupted write leaves unreferenced
(temp files, blobs or nodes never linked); it is harmless and `repair` reclaims it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace

from infiniscale.core.model.errors import NotFound
from infiniscale.drivers.decomposed import revisions
from infiniscale.drivers.decomposed.fsutil import TEMP_PREFIX
from infiniscale.drivers.decomposed.layout import SpaceLayout
from infiniscale.drivers.decomposed.tree import DecomposedStorage


@dataclass
class CheckReport:
    spaces: int = 0
    nodes: int = 0
    files: int = 0
    folders: int = 0
    trashed: int = 0
    revisions: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)  # the first examples only
    garbage_count: int = 0
    repaired: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        lines = [
            f"spaces {self.spaces}, nodes {self.nodes} ({self.folders} folders, {self.files} files, "
            f"{self.trashed} trashed, {self.revisions} revisions), {self.bytes} bytes",
            f"errors {len(self.errors)}, reclaimable garbage {self.garbage_count}, repaired {len(self.repaired)}",
        ]
        lines += [f"ERROR {e}" for e in self.errors[:200]]
        lines += [f"garbage {g}" for g in self.garbage[:50]]
        lines += [f"repaired {r}" for r in self.repaired[:200]]
        lines.append("storage is consistent" if self.clean else "storage has errors")
        return "\n".join(lines)


def printable(path: str | bytes) -> str:
    """A file system path as text any terminal or log accepts: bytes that are not UTF-8 (temp links
    start with 0xff on purpose) appear as \\xNN escapes."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def _walk_files(top: str):
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            yield dirpath, name


class Checker:
    def __init__(self, storage: DecomposedStorage, repair: bool = False) -> None:
        self.storage = storage
        self.repair = repair
        self.report = CheckReport()
        self.stored: dict[str, int] = {}  # blob id -> size, of the space being checked
        self.content: dict[str, str] = {}  # file node id -> its blob id, of the space being checked

    def run(self) -> CheckReport:
        for space_id in self.storage.list_space_ids():
            self.check_space(space_id)
        return self.report

    def check_space(self, space_id: str) -> None:
        storage, report = self.storage, self.report
        layout = storage.layout(space_id)
        report.spaces += 1
        pending = sorted(os.listdir(layout.journal)) if os.path.isdir(layout.journal) else []
        if pending:
            if self.repair:
                storage.replay_journal(space_id)
                report.repaired.append(f"{space_id}: finished {len(pending)} interrupted operations")
            else:
                report.errors.append(f"{space_id}: {len(pending)} unfinished operations in the journal")
        referenced_blobs: set[str] = set()
        reachable: set[str] = set()
        self.stored = storage.blobs.sizes(space_id)
        try:
            self._check_folder(layout, space_id, referenced_blobs, reachable)
        except NotFound:
            report.errors.append(f"{space_id}: space root metadata missing")
            return
        self._check_trash(layout, referenced_blobs, reachable)
        self._check_revisions(layout, referenced_blobs, reachable)
        self._collect_garbage(layout, referenced_blobs, reachable)
        self.content = {}

    def _check_folder(self, layout: SpaceLayout, folder_id: str, blobs: set[str], reachable: set[str],
                      path: str = "/") -> tuple[int, int]:
        """Checks a folder and its subtree; returns its (tree size, tree mtime)."""
        storage, report = self.storage, self.report
        node, trashed = storage._read_node(layout, folder_id)
        reachable.add(folder_id)
        report.nodes += 1
        report.folders += 1
        total, newest = 0, node.tmtime_ns
        node_dir = layout.node_dir(folder_id)
        if not os.path.isdir(node_dir):
            report.errors.append(f"{layout.space_id}:{path}: folder directory missing")
            return node.size, newest
        for entry in os.scandir(os.fsencode(node_dir)):
            if entry.name.startswith(TEMP_PREFIX):
                self._garbage(entry.path, f"{path}: temp link")
                continue
            name = entry.name.decode("utf-8", "replace")
            child_path = path + name
            try:
                child_id = os.readlink(entry.path).decode()
                child, child_trashed = storage._read_node(layout, child_id)
            except (OSError, NotFound):
                self._stale_link(entry.path, f"{layout.space_id}:{child_path}: dangling link")
                continue
            if child_trashed or child.parent_id != folder_id or child.name != name:
                self._stale_link(entry.path, f"{layout.space_id}:{child_path}: stale link")
                continue
            if child.id in reachable:
                report.errors.append(f"{layout.space_id}:{child_path}: node linked twice")
                continue
            if child.is_folder:
                size, tmtime = self._check_folder(layout, child.id, blobs, reachable, child_path + "/")
            else:
                size, tmtime = self._check_file(layout, child, blobs, reachable, child_path)
            total += size
            newest = max(newest, tmtime)
        if total != node.size or newest > node.tmtime_ns:
            message = f"{layout.space_id}:{path}: tree size {node.size} but contents add up to {total}"
            if newest > node.tmtime_ns:
                message = f"{layout.space_id}:{path}: tree mtime older than its contents"
            if self.repair:
                storage._write_node(layout, replace(node, size=total, tmtime_ns=newest + 1), trashed=trashed)
                report.repaired.append(message)
                newest += 1
            else:
                report.errors.append(message)
        return total, newest

    def _check_file(self, layout: SpaceLayout, node, blobs: set[str], reachable: set[str],
                    path: str) -> tuple[int, int]:
        report = self.report
        reachable.add(node.id)
        report.nodes += 1
        report.files += 1
        report.bytes += node.size
        blobs.add(node.blob_id)
        self.content[node.id] = node.blob_id
        actual = self.stored.get(node.blob_id)
        if actual is None:
            report.errors.append(f"{layout.space_id}:{path}: blob {node.blob_id} missing")
        else:
            if actual != node.size:
                report.errors.append(f"{layout.space_id}:{path}: blob has {actual} bytes, metadata says "
                                     f"{node.size}")
        return node.size, node.tmtime_ns

    def _check_trash(self, layout: SpaceLayout, blobs: set[str], reachable: set[str]) -> None:
        if not os.path.isdir(layout.trash):
            return
        for name in os.listdir(layout.trash):
            try:
                node, trashed = self.storage._read_node(layout, name)
            except NotFound:
                self._stale_link(os.path.join(layout.trash, name), f"{layout.space_id}: dangling trash link")
                continue
            if not trashed:
                self._stale_link(os.path.join(layout.trash, name), f"{layout.space_id}: stale trash link")
                continue
            self.report.trashed += 1
            self._mark_subtree(layout, node, blobs, reachable)

    def _check_revisions(self, layout: SpaceLayout, blobs: set[str], reachable: set[str]) -> None:
        """Revisions of live or trashed files must have their blobs; those of files that are gone,
        and those a crash left equal to the current content, are garbage."""
        for node_id in revisions.node_ids(layout):
            folder = layout.revision_dir(node_id)
            for rev in revisions.listing(layout, node_id):
                record = os.path.join(folder, rev.key + revisions.SUFFIX)
                if node_id not in reachable:
                    self._garbage(record, "revision of a removed file")
                elif self.content.get(node_id) == rev.blob_id:
                    self._garbage(record, "revision equal to the current content")
                else:
                    self.report.revisions += 1
                    blobs.add(rev.blob_id)
                    actual = self.stored.get(rev.blob_id)
                    if actual != rev.size:
                        what = "missing" if actual is None else f"has {actual} bytes, not {rev.size}"
                        self.report.errors.append(f"{layout.space_id}: revision {rev.key} of {node_id}: "
                                                  f"blob {rev.blob_id} {what}")

    def _mark_subtree(self, layout: SpaceLayout, node, blobs: set[str], reachable: set[str]) -> None:
        reachable.add(node.id)
        if node.blob_id:
            blobs.add(node.blob_id)
            self.content[node.id] = node.blob_id
        if node.is_folder:
            for child in self.storage.iter_children(layout.space_id, node.id):
                self._mark_subtree(layout, child, blobs, reachable)

    def _collect_garbage(self, layout: SpaceLayout, blobs: set[str], reachable: set[str]) -> None:
        for dirpath, name in _walk_files(layout.tmp):
            self._garbage(os.path.join(dirpath, name), "unfinished upload")
        for dirpath, name in _walk_files(layout.revisions):
            if name.endswith(".tmp"):
                self._garbage(os.path.join(dirpath, name), "temp revision record")
        remote = self.storage.remote_blobs(layout.space_id)
        for dirpath, name in _walk_files(layout.blobs):
            if remote or name not in blobs:  # with remote blobs, local files are unfinished uploads
                self._garbage(os.path.join(dirpath, name), "unreferenced blob")
        if remote:
            for blob_id in self.stored.keys() - blobs:
                self._garbage_blob(layout.space_id, blob_id)
        for dirpath, name in _walk_files(layout.nodes):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                continue
            if name.endswith(".tmp"):
                self._garbage(full, "temp metadata")
            elif name.endswith((".idx", ".idx-dropped")):
                # listing caches and their marks: dropped on repair (they rebuild), garbage when their
                # folder is gone
                if self.repair:
                    with contextlib.suppress(OSError):
                        os.unlink(full)
                elif name.split(".idx", 1)[0] not in reachable:
                    self._garbage(full, "listing cache of a removed folder")
            elif name.endswith(".mpk") and name[:-4] not in reachable:
                self._garbage(full, "unlinked node")
                folder = full[:-4]
                if self.repair and os.path.isdir(folder):
                    for child in os.listdir(folder):
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join(folder, child))
                    with contextlib.suppress(OSError):
                        os.rmdir(folder)

    def _garbage(self, path: str | bytes, what: str) -> None:
        self.report.garbage_count += 1
        if len(self.report.garbage) < 50:  # a crashed upload storm may leave thousands
            self.report.garbage.append(f"{what}: {printable(path)}")
        if self.repair:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _garbage_blob(self, space_id: str, blob_id: str) -> None:
        self.report.garbage_count += 1
        if len(self.report.garbage) < 50:
            self.report.garbage.append(f"unreferenced blob: {space_id}/{blob_id}")
        if self.repair:
            self.storage.blobs.delete(space_id, blob_id)

    def _stale_link(self, path: str | bytes, message: str) -> None:
        if self.repair:
            with contextlib.suppress(OSError):
                os.unlink(path)
            self.report.repaired.append(message)
        else:
            self.report.errors.append(message)


def check(storage: DecomposedStorage, repair: bool = False) -> CheckReport:
    return Checker(storage, repair=repair).run()
