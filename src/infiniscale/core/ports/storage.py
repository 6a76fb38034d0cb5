"""StorageDriver port: what the core needs from a storage driver. Methods block; the core calls
them in worker threads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

from infiniscale.core.model.nodes import NodeInfo

Precondition = Callable[[NodeInfo | None], None]


class BlobSink(Protocol):
    """New content on its way into the storage. Methods block."""

    blob_id: str

    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def write_parts(self, parts: list[bytes]) -> None:
        """Consecutive buffers, written as if joined."""
    def finish(self) -> None:
        """Everything written is durable when this returns."""
    def discard(self) -> None:
        """Drops what was written; a no-op once the blob was committed."""
    committed: bool


class BlobSource(Protocol):
    """The content of one file, open for reading."""

    size: int

    def chunks(self, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes from `start` to `end` inclusive, streamed."""
    def close(self) -> None: ...


class StorageDriver(Protocol):
    def space_exists(self, space_id: str) -> bool: ...
    def space_info(self, space_id: str) -> dict: ...
    def space_version(self, space_id: str) -> tuple[int, int, int]: ...
    def create_space(self, space_id: str, space_type: str, name: str, owner_id: str) -> NodeInfo: ...
    def stat(self, space_id: str, node_id: str) -> NodeInfo: ...
    def child(self, space_id: str, parent_id: str, name: str) -> NodeInfo | None: ...
    def resolve(self, space_id: str, names: list[str], start: NodeInfo | None = None) -> list[NodeInfo]: ...
    def ancestors(self, space_id: str, node: NodeInfo) -> list[NodeInfo]: ...
    def iter_children(self, space_id: str, parent_id: str, cached: bool = False) -> Iterator[NodeInfo]: ...
    def remote_blobs(self, space_id: str) -> bool:
        """Whether the space's content lives on another server (opening it takes a round trip)."""
    def local_metadata(self, space_id: str) -> bool:
        """Whether reading the space's tree is local file access (no round trip to another machine)."""
    def open_blob(self, space_id: str, node: NodeInfo) -> BlobSource:
        """Raises FileNotFoundError when the content is gone (an overwrite removed it meanwhile)."""
    def blob_path(self, space_id: str, node: NodeInfo) -> str | None:
        """The local file holding the content, for readers that need a file (None: not local)."""
    def new_blob(self, space_id: str) -> BlobSink: ...
    def new_upload_path(self, space_id: str) -> str:
        """A local file to assemble content in, for `commit_upload`."""
    def make_folder(self, space_id: str, parent: NodeInfo, name: str, owner_id: str) -> NodeInfo: ...
    def commit_upload(self, space_id: str, parent: NodeInfo, name: str, upload_path: str, size: int,
                      checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                      precondition: Precondition | None = None) -> tuple[NodeInfo, bool]: ...
    def commit_blob(self, space_id: str, parent: NodeInfo, name: str, sink: BlobSink, size: int,
                    checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                    precondition: Precondition | None = None) -> tuple[NodeInfo, bool]: ...
    async def commit_blob_inline(self, space_id: str, parent: NodeInfo, name: str, sink: BlobSink, size: int,
                                 checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                                 precondition: Precondition | None = None) -> tuple[NodeInfo, bool] | None:
        """`commit_blob` from the event loop, for local content; it never blocks the loop. None
        when it would have to wait for a lock: nothing is committed, use `commit_blob`."""
    def update_node(self, space_id: str, node_id: str, change: Callable[[NodeInfo], NodeInfo],
                    propagate: bool = True) -> NodeInfo: ...
    def move(self, space_id: str, node: NodeInfo, dst_parent: NodeInfo, dst_name: str, overwrite: bool,
             precondition: Precondition | None = None) -> tuple[NodeInfo, bool]: ...
    def copy(self, space_id: str, node: NodeInfo, dst_parent: NodeInfo, dst_name: str, overwrite: bool,
             depth_infinity: bool, owner_id: str,
             precondition: Precondition | None = None) -> tuple[NodeInfo, bool]: ...
    def delete(self, space_id: str, node: NodeInfo) -> None: ...
    def favorites(self, user_id: str) -> list[tuple[str, str]]: ...
    def set_favorite(self, user_id: str, space_id: str, node_id: str, on: bool) -> NodeInfo: ...
