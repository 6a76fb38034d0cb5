"""`infiniscale storage scrub`: re-reads every blob (of live files, trashed ones and versions) and
compares it with the size and checksum stored when it was written. Reports corrupt and missing
blobs with the space and path they belong to, and blobs nothing refers to (orphans), which it can
remove. Runs at idle I/O priority, and resumes where an interrupted run stopped (per space).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from infiniscale.core.checksums import ChunkHasher
from infiniscale.core.model.errors import NotFound
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.drivers.decomposed import revisions
from infiniscale.drivers.decomposed.layout import SpaceLayout
from infiniscale.drivers.decomposed.tree import DecomposedStorage

READ_BLOCK = 4 << 20
IOPRIO_WHO_PROCESS, IOPRIO_CLASS_IDLE, IOPRIO_CLASS_SHIFT = 1, 3, 13
SYS_IOPRIO_SET = 251  # x86_64


@dataclass
class Finding:
    space_id: str
    path: str  # "/a/b.txt", "trash:<path>", "version <key> of /a/b.txt", or the orphan's blob path
    blob_id: str
    problem: str

    def line(self) -> str:
        return f"{self.problem}: space {self.space_id} {self.path} (blob {self.blob_id})"


@dataclass
class ScrubReport:
    spaces: int = 0
    blobs: int = 0
    bytes: int = 0
    corrupt: list[Finding] = field(default_factory=list)
    missing: list[Finding] = field(default_factory=list)
    orphans: list[Finding] = field(default_factory=list)
    removed: int = 0
    skipped_spaces: int = 0  # done by an earlier, interrupted run

    @property
    def clean(self) -> bool:
        return not self.corrupt and not self.missing

    def summary(self) -> str:
        lines = [f"spaces {self.spaces} ({self.skipped_spaces} done before), blobs read {self.blobs}, "
                 f"{self.bytes} bytes",
                 f"corrupt {len(self.corrupt)}, missing {len(self.missing)}, orphans {len(self.orphans)}"
                 + (f" ({self.removed} removed)" if self.removed else "")]
        lines += [f.line() for f in self.corrupt + self.missing + self.orphans]
        lines.append("every blob is intact" if self.clean else "blobs are damaged")
        return "\n".join(lines)


def idle_io_priority() -> None:
    """Let the scrub's reads yield to everything else (Linux; best effort elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).syscall(SYS_IOPRIO_SET, IOPRIO_WHO_PROCESS, 0,
                                                  IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT)


def strongest(stored: dict[str, str]) -> str | None:
    """The strongest checksum stored for a blob (sha1, md5, then adler32), the one compared."""
    return next((a for a in ("sha1", "md5", "adler32") if a in stored), None)


class Scrubber:
    def __init__(self, storage: DecomposedStorage, *, remove_orphans: bool = False, state_path: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.storage = storage
        self.remove_orphans = remove_orphans
        self.state_path = state_path
        self.progress = progress
        self.report = ScrubReport()

    def run(self) -> ScrubReport:
        done = self._load_state()
        space_ids = self.storage.list_space_ids()
        for index, space_id in enumerate(space_ids, 1):
            if space_id in done:
                self.report.skipped_spaces += 1
            else:
                self.scrub_space(space_id)
                done.add(space_id)
                self._save_state(done)
            self.report.spaces += 1
            if self.progress:
                self.progress(index, len(space_ids))
        if self.state_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.state_path)  # a finished run starts from the beginning next time
        return self.report

    def _load_state(self) -> set[str]:
        if not self.state_path:
            return set()
        try:
            with open(self.state_path) as fh:
                return set(json.load(fh).get("done", []))
        except (FileNotFoundError, ValueError):
            return set()

    def _save_state(self, done: set[str]) -> None:
        if self.state_path:
            tmp = self.state_path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump({"done": sorted(done)}, fh)
            os.replace(tmp, self.state_path)

    def scrub_space(self, space_id: str) -> None:
        storage = self.storage
        layout = storage.layout(space_id)
        stored = storage.blobs.sizes(space_id)
        referenced: set[str] = set()
        for path, node in self._files(layout):
            referenced.add(node.blob_id)
            self._verify(space_id, path, node.blob_id, node.size, node.checksums, stored)
            for rev in revisions.listing(layout, node.id):
                referenced.add(rev.blob_id)
                self._verify(space_id, f"version {rev.key} of {path}", rev.blob_id, rev.size, rev.checksums, stored)
        for blob_id in sorted(stored.keys() - referenced):
            where = storage.blobs.local_path(space_id, blob_id) or f"{space_id}/{blob_id}"
            self.report.orphans.append(Finding(space_id, where, blob_id, "orphan"))
            if self.remove_orphans:
                storage.blobs.delete(space_id, blob_id)
                self.report.removed += 1

    def _files(self, layout: SpaceLayout) -> Iterator[tuple[str, NodeInfo]]:
        """Every file with its path: the live tree, then what is in the trash."""
        yield from self._walk(layout, layout.space_id, "/")
        for item in self.storage.list_trash(layout.space_id):
            path = f"trash:/{item.origin_path}"
            if item.node.is_folder:
                yield from self._walk(layout, item.node.id, path + "/")
            else:
                yield path, item.node

    def _walk(self, layout: SpaceLayout, folder_id: str, path: str) -> Iterator[tuple[str, NodeInfo]]:
        for child in self.storage.iter_children(layout.space_id, folder_id):
            if child.is_folder:
                yield from self._walk(layout, child.id, f"{path}{child.name}/")
            else:
                yield f"{path}{child.name}", child

    def _verify(self, space_id: str, path: str, blob_id: str, size: int, checksums: dict[str, str],
                stored: dict[str, int]) -> None:
        if blob_id not in stored:
            self.report.missing.append(Finding(space_id, path, blob_id, "missing"))
            return
        algorithm = strongest(checksums)
        try:
            actual_size, digest = self._read(space_id, blob_id, size, algorithm)
        except (FileNotFoundError, NotFound):
            self.report.missing.append(Finding(space_id, path, blob_id, "missing"))
            return
        self.report.blobs += 1
        self.report.bytes += actual_size
        if actual_size != size:
            self.report.corrupt.append(Finding(space_id, path, blob_id, f"corrupt (size {actual_size}, not {size})"))
        elif algorithm is not None and digest != checksums[algorithm]:  # none stored: the size is all there is
            self.report.corrupt.append(Finding(space_id, path, blob_id, "corrupt (checksum differs)"))

    def _read(self, space_id: str, blob_id: str, size: int, algorithm: str | None) -> tuple[int, str | None]:
        """The blob's length and its hex digest in `algorithm` (None: length only)."""
        hasher = ChunkHasher(algorithm) if algorithm else None
        total = 0

        def feed(block: bytes) -> None:
            nonlocal total
            if hasher is not None:
                hasher.update(block)
            total += len(block)

        local = self.storage.blobs.local_path(space_id, blob_id)
        if local is not None:
            with open(local, "rb", buffering=0) as fh:
                while block := fh.read(READ_BLOCK):
                    feed(block)
        else:
            asyncio.run(self._read_remote(space_id, blob_id, size, feed))
        return total, hasher.digest().hex() if hasher is not None else None

    async def _read_remote(self, space_id: str, blob_id: str, size: int, feed: Callable[[bytes], None]) -> None:
        if size == 0:
            return
        source = self.storage.blobs.open(space_id, blob_id, size)
        try:
            async for chunk in source.chunks(0, size - 1):
                feed(chunk)
        finally:
            source.close()
