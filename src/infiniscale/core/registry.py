"""The space registry: which storage provider holds a space. Each provider is a storage driver with
its own mount id (the storage id in resource ids) and the space types it takes new spaces of, so
personal spaces can live on local disk and project spaces on S3. The registry is itself a storage
driver: every call names its space, and goes to the provider holding it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from infiniscale.core.model.errors import NotFound
from infiniscale.core.model.nodes import NodeInfo, Revision, TrashItem
from infiniscale.core.ports.storage import BlobSink, BlobSource, Precondition, StorageDriver


@dataclass(frozen=True)
class Provider:
    storage_id: str
    driver: StorageDriver
    space_types: frozenset[str] = frozenset()  # new spaces of these types; empty: any type


class SpaceRegistry:
    def __init__(self, providers: list[Provider]) -> None:
        if not providers:
            raise ValueError("at least one storage provider is needed")
        self.providers = providers
        self._located: dict[str, Provider] = {}  # a space never changes providers

    # ---------------------------------------------------------------- routing

    def locate(self, space_id: str) -> Provider | None:
        provider = self._located.get(space_id)
        if provider is not None:
            return provider
        if len(self.providers) == 1:
            return self.providers[0]
        for candidate in self.providers:
            if candidate.driver.space_exists(space_id):
                self._located[space_id] = candidate
                return candidate
        return None

    def provider_of(self, space_id: str) -> Provider:
        provider = self.locate(space_id)
        if provider is None:
            raise NotFound("space not found")
        return provider

    def _on(self, space_id: str) -> StorageDriver:
        return self.provider_of(space_id).driver

    def storage_id_of(self, space_id: str) -> str:
        return self.provider_of(space_id).storage_id

    def provider_by_storage_id(self, storage_id: str) -> Provider | None:
        return next((p for p in self.providers if p.storage_id == storage_id), None)

    def for_type(self, space_type: str) -> Provider:
        """Where a new space of this type goes: the first provider that names the type, else the
        first that takes any."""
        named = [p for p in self.providers if space_type in p.space_types]
        return (named or [p for p in self.providers if not p.space_types] or self.providers)[0]

    def same_provider(self, space_a: str, space_b: str) -> bool:
        return self.provider_of(space_a) is self.provider_of(space_b)

    # ---------------------------------------------------------------- spaces

    def space_exists(self, space_id: str) -> bool:
        provider = self.locate(space_id)
        return provider is not None and provider.driver.space_exists(space_id)

    def space_info(self, space_id: str) -> dict:
        return self._on(space_id).space_info(space_id)

    def space_version(self, space_id: str) -> tuple[int, int, int]:
        return self._on(space_id).space_version(space_id)

    def create_space(self, space_id: str, space_type: str, name: str, owner_id: str,
                     extra: dict | None = None) -> NodeInfo:
        provider = self.locate(space_id) if len(self.providers) == 1 else None
        provider = provider or self.for_type(space_type)
        root = provider.driver.create_space(space_id, space_type, name, owner_id, extra)  # type: ignore[call-arg]
        self._located[space_id] = provider
        return root

    def update_space(self, space_id: str, change: Callable[[dict], dict]) -> dict:
        return self._on(space_id).update_space(space_id, change)  # type: ignore[attr-defined]

    def purge_space(self, space_id: str) -> None:
        self._on(space_id).purge_space(space_id)  # type: ignore[attr-defined]
        self._located.pop(space_id, None)

    def list_space_ids(self, space_type: str | None = None) -> list[str]:
        found: list[str] = []
        for provider in self.providers:
            for space_id in provider.driver.list_space_ids(space_type):  # type: ignore[attr-defined]
                self._located.setdefault(space_id, provider)
                found.append(space_id)
        return sorted(found)

    # ---------------------------------------------------------------- nodes

    def stat(self, space_id: str, node_id: str) -> NodeInfo:
        return self._on(space_id).stat(space_id, node_id)

    def child(self, space_id: str, parent_id: str, name: str) -> NodeInfo | None:
        return self._on(space_id).child(space_id, parent_id, name)

    def resolve(self, space_id: str, names: list[str], start: NodeInfo | None = None) -> list[NodeInfo]:
        return self._on(space_id).resolve(space_id, names, start)

    def ancestors(self, space_id: str, node: NodeInfo) -> list[NodeInfo]:
        return self._on(space_id).ancestors(space_id, node)

    def iter_children(self, space_id: str, parent_id: str, cached: bool = False) -> Iterator[NodeInfo]:
        return self._on(space_id).iter_children(space_id, parent_id, cached)

    def remote_blobs(self, space_id: str) -> bool:
        return self._on(space_id).remote_blobs(space_id)

    def local_metadata(self, space_id: str) -> bool:
        return self._on(space_id).local_metadata(space_id)

    def open_blob(self, space_id: str, node: NodeInfo) -> BlobSource:
        return self._on(space_id).open_blob(space_id, node)

    def blob_path(self, space_id: str, node: NodeInfo) -> str | None:
        return self._on(space_id).blob_path(space_id, node)

    def new_blob(self, space_id: str) -> BlobSink:
        return self._on(space_id).new_blob(space_id)

    def new_upload_path(self, space_id: str) -> str:
        return self._on(space_id).new_upload_path(space_id)

    def make_folder(self, space_id: str, parent: NodeInfo, name: str, owner_id: str) -> NodeInfo:
        return self._on(space_id).make_folder(space_id, parent, name, owner_id)

    def commit_upload(self, space_id: str, parent: NodeInfo, name: str, upload_path: str, size: int,
                      checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                      precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        return self._on(space_id).commit_upload(space_id, parent, name, upload_path, size, checksums, mtime_ns,
                                                owner_id, precondition)

    def commit_blob(self, space_id: str, parent: NodeInfo, name: str, sink: BlobSink, size: int,
                    checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                    precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        return self._on(space_id).commit_blob(space_id, parent, name, sink, size, checksums, mtime_ns, owner_id,
                                              precondition)

    async def commit_blob_inline(self, space_id: str, parent: NodeInfo, name: str, sink: BlobSink, size: int,
                                 checksums: dict[str, str], mtime_ns: int | None, owner_id: str,
                                 precondition: Precondition | None = None) -> tuple[NodeInfo, bool] | None:
        return await self._on(space_id).commit_blob_inline(space_id, parent, name, sink, size, checksums, mtime_ns,
                                                           owner_id, precondition)

    def update_node(self, space_id: str, node_id: str, change: Callable[[NodeInfo], NodeInfo],
                    propagate: bool = True) -> NodeInfo:
        return self._on(space_id).update_node(space_id, node_id, change, propagate)

    def move(self, space_id: str, node: NodeInfo, dst_parent: NodeInfo, dst_name: str, overwrite: bool,
             precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        return self._on(space_id).move(space_id, node, dst_parent, dst_name, overwrite, precondition)

    def copy(self, space_id: str, node: NodeInfo, dst_parent: NodeInfo, dst_name: str, overwrite: bool,
             depth_infinity: bool, owner_id: str,
             precondition: Precondition | None = None) -> tuple[NodeInfo, bool]:
        return self._on(space_id).copy(space_id, node, dst_parent, dst_name, overwrite, depth_infinity, owner_id,
                                       precondition)

    def delete(self, space_id: str, node: NodeInfo) -> None:
        self._on(space_id).delete(space_id, node)

    # ---------------------------------------------------------------- versions and trash

    def list_revisions(self, space_id: str, node_id: str) -> list[Revision]:
        return self._on(space_id).list_revisions(space_id, node_id)  # type: ignore[attr-defined]

    def revision(self, space_id: str, node_id: str, key: str) -> Revision:
        return self._on(space_id).revision(space_id, node_id, key)  # type: ignore[attr-defined]

    def open_revision(self, space_id: str, rev: Revision) -> BlobSource:
        return self._on(space_id).open_revision(space_id, rev)  # type: ignore[attr-defined]

    def restore_revision(self, space_id: str, node: NodeInfo, key: str) -> NodeInfo:
        return self._on(space_id).restore_revision(space_id, node, key)  # type: ignore[attr-defined]

    def remove_revision(self, space_id: str, rev: Revision) -> None:
        self._on(space_id).remove_revision(space_id, rev)  # type: ignore[attr-defined]

    def prune_revisions(self, space_id: str, keep: int, older_than_ns: int, dry_run: bool = False) -> tuple[int, int]:
        return self._on(space_id).prune_revisions(space_id, keep, older_than_ns, dry_run)  # type: ignore[attr-defined]

    def list_trash(self, space_id: str) -> list[TrashItem]:
        return self._on(space_id).list_trash(space_id)  # type: ignore[attr-defined]

    def trash_item(self, space_id: str, node_id: str) -> TrashItem:
        return self._on(space_id).trash_item(space_id, node_id)  # type: ignore[attr-defined]

    def restore_trash(self, space_id: str, node_id: str, dst_parent: NodeInfo, dst_name: str,
                      overwrite: bool) -> tuple[NodeInfo, bool]:
        return self._on(space_id).restore_trash(space_id, node_id, dst_parent, dst_name,  # type: ignore[attr-defined]
                                                overwrite)

    def restore_from_trashed_folder(self, space_id: str, top_id: str, names: list[str], dst_parent: NodeInfo,
                                    dst_name: str, overwrite: bool) -> tuple[NodeInfo, bool]:
        return self._on(space_id).restore_from_trashed_folder(  # type: ignore[attr-defined]
            space_id, top_id, names, dst_parent, dst_name, overwrite)

    def purge_trash(self, space_id: str, node_id: str) -> int:
        return self._on(space_id).purge_trash(space_id, node_id)  # type: ignore[attr-defined]

    def empty_trash(self, space_id: str, older_than_ns: int | None = None) -> tuple[int, int]:
        return self._on(space_id).empty_trash(space_id, older_than_ns)  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- per user

    def favorites(self, user_id: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for provider in self.providers:
            found += provider.driver.favorites(user_id)
        return found

    def set_favorite(self, user_id: str, space_id: str, node_id: str, on: bool) -> NodeInfo:
        return self._on(space_id).set_favorite(user_id, space_id, node_id, on)

    def free_bytes(self, space_id: str) -> int:
        return self._on(space_id).free_bytes(space_id)  # type: ignore[attr-defined]
