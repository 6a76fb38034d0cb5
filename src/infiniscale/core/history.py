"""Versions and trash bins: what users get back after overwriting or deleting something.

Both belong to a space, and the space role decides (`list_file_versions`, `restore_file_version`,
`list_recycle`, `restore_recycle_item`, `purge_recycle`): a member without the permission gets
Forbidden, anybody else NotFound. Access through a share gives no trash bin (it is the space's),
but a share that allows it gives the versions of the files it covers.
"""

from __future__ import annotations

from collections.abc import Sequence

from infiniscale.core.files import Chain, FileService, ancestor_ids
from infiniscale.core.model import events
from infiniscale.core.model.errors import Conflict, Forbidden, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo, Revision, TrashItem
from infiniscale.core.ports.storage import BlobSource
from infiniscale.core.spaces import READ, WRITE, SpaceRole


class History:
    def __init__(self, files: FileService) -> None:
        self.files = files
        self.driver = files.driver

    async def _role(self, user: User, space_id: str, permission: str, level: int = READ,
                    chain: Chain | None = None) -> SpaceRole:
        _space, role = await self.files._check_access(user, space_id, level, chain)
        if not role.may(permission):
            raise Forbidden("insufficient permissions")
        return role

    # ---------------------------------------------------------------- versions

    async def versions(self, user: User, chain: Chain) -> list[Revision]:
        """The file's earlier contents, newest first."""
        node = chain[-1]
        await self._role(user, node.space_id, "list_file_versions", READ, chain)
        if node.is_folder:
            raise NotFound("a folder has no versions")
        found = await self.files._run(self.driver.list_revisions, node.space_id, node.id)
        return found[::-1]

    async def version(self, user: User, chain: Chain, key: str) -> Revision:
        node = chain[-1]
        await self._role(user, node.space_id, "list_file_versions", READ, chain)
        if node.is_folder:
            raise NotFound("a folder has no versions")
        return await self.files._run(self.driver.revision, node.space_id, node.id, key)

    async def open_version(self, rev: Revision, space_id: str) -> BlobSource:
        return await self.files._run(self.driver.open_revision, space_id, rev)

    async def restore_version(self, user: User, chain: Chain, key: str,
                              tokens: frozenset[str] = frozenset()) -> NodeInfo:
        """The version becomes the content; the content it replaces becomes a version."""
        node = chain[-1]
        await self._role(user, node.space_id, "restore_file_version", WRITE, chain)
        if node.is_folder:
            raise NotFound("a folder has no versions")
        rev = await self.files._run(self.driver.revision, node.space_id, node.id, key)
        await self.files.require_write(user, chain, tokens, rev.size - node.size)
        restored = await self.files._run(self.driver.restore_revision, node.space_id, node, key)
        await self.files.bus.publish(events.FileVersionRestored(
            executant=user.id, space_id=node.space_id, node_id=node.id, parent_id=node.parent_id,
            name=node.name, key=key, ancestors=ancestor_ids(chain[:-1])))
        return restored

    # ---------------------------------------------------------------- trash bin

    async def trash(self, user: User, space_id: str) -> list[TrashItem]:
        await self._role(user, space_id, "list_recycle")
        return await self.files._run(self.driver.list_trash, space_id)

    async def trash_entry(self, user: User, space_id: str, node_id: str,
                          names: Sequence[str] = ()) -> tuple[TrashItem, NodeInfo]:
        """A trash item, and the node `names` lead to inside it (the item itself without names)."""
        await self._role(user, space_id, "list_recycle")
        return await self._entry(space_id, node_id, names)

    async def _entry(self, space_id: str, node_id: str, names: Sequence[str]) -> tuple[TrashItem, NodeInfo]:
        item = await self.files._run(self.driver.trash_item, space_id, node_id)
        node = item.node
        for name in names:
            child = await self.files._run(self.driver.child, space_id, node.id, name) if node.is_folder else None
            if child is None:
                raise NotFound("trash item not found")
            node = child
        return item, node

    async def children(self, space_id: str, folder: NodeInfo) -> list[NodeInfo]:
        """What a folder inside a deleted folder holds (its entry was checked by `trash_entry`)."""
        found: list[NodeInfo] = []
        async for batch in self.files.children(space_id, folder):
            found.extend(batch)
        return found

    async def restore(self, user: User, space_id: str, node_id: str, dst_parent: Chain, dst_name: str,
                      overwrite: bool, tokens: frozenset[str] = frozenset(),
                      names: list[str] | None = None) -> tuple[NodeInfo, bool]:
        """Puts a deleted item back at `dst_parent/dst_name` (in the same space); with `names`,
        only that item inside a deleted folder."""
        await self._role(user, space_id, "restore_recycle_item", WRITE)
        dst_name = self.files.name(dst_name)
        if dst_parent[-1].space_id != space_id:
            raise Conflict("a deleted item can only be restored into its own space")
        if not dst_parent[-1].is_folder:
            raise Conflict("the destination parent is not a folder")
        item, node = await self._entry(space_id, node_id, names or ())
        await self.files.require_write(user, dst_parent, tokens, node.size)
        if names:
            restored, replaced = await self.files._run(self.driver.restore_from_trashed_folder, space_id, node_id,
                                                       names, dst_parent[-1], dst_name, overwrite)
        else:
            restored, replaced = await self.files._run(self.driver.restore_trash, space_id, node_id,
                                                       dst_parent[-1], dst_name, overwrite)
        await self.files.bus.publish(events.ItemRestored(
            executant=user.id, space_id=space_id, node_id=node_id, parent_id=dst_parent[-1].id, name=dst_name,
            old_parent_id=item.origin_parent_id, old_name=item.origin_name, ancestors=ancestor_ids(dst_parent)))
        return restored, replaced

    async def purge(self, user: User, space_id: str, node_id: str) -> None:
        await self._role(user, space_id, "purge_recycle", WRITE)
        item = await self.files._run(self.driver.trash_item, space_id, node_id)
        await self.files._run(self.driver.purge_trash, space_id, node_id)
        await self.files.bus.publish(events.ItemPurged(executant=user.id, space_id=space_id, node_id=node_id,
                                                       name=item.node.name))

    async def empty(self, user: User, space_id: str) -> int:
        await self._role(user, space_id, "purge_recycle", WRITE)
        items = await self.files._run(self.driver.list_trash, space_id)
        for item in items:
            try:
                await self.files._run(self.driver.purge_trash, space_id, item.node.id)
            except NotFound:
                continue  # purged meanwhile
            await self.files.bus.publish(events.ItemPurged(executant=user.id, space_id=space_id,
                                                           node_id=item.node.id, name=item.node.name))
        return len(items)
