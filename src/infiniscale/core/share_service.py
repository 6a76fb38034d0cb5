"""The sharing operations the protocols call (OCS and Libre Graph alike): the blocking work of
core/sharing.py in worker threads, and an event after each change."""

from __future__ import annotations

from infiniscale.core.files import FileService
from infiniscale.core.model import events
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.sharing import GROUP_SHARE, LINK_SHARE, Share, Sharing
from infiniscale.core.unified_roles import UnifiedRole


class ShareService:
    def __init__(self, files: FileService, sharing: Sharing) -> None:
        self.files = files
        self.sharing = sharing

    async def create(self, actor: User, owner_id: str, node: NodeInfo, share_type: int, grantee: str,
                     role: UnifiedRole, expires: str = "") -> Share:
        share = await self.files._run(self.sharing.create, actor, owner_id, node, share_type, grantee, role,
                                      expires)
        await self.files.bus.publish(events.ShareCreated(
            executant=actor.id, space_id=share.space_id, share_id=share.id, node_id=share.node_id,
            grantee_type="group" if share_type == GROUP_SHARE else "user", grantee=grantee, role_id=role.id))
        return share

    async def create_link(self, actor: User, owner_id: str, node: NodeInfo, link_type: str, password: str = "",
                          expires: str = "", name: str = "", quicklink: bool = False) -> Share:
        link = await self.files._run(self.sharing.create_link, actor, owner_id, node, link_type, password,
                                     expires, name, quicklink)
        await self.files.bus.publish(events.LinkCreated(executant=actor.id, space_id=link.space_id,
                                                        share_id=link.id, node_id=link.node_id,
                                                        link_type=link.link_type))
        return link

    async def update(self, actor: User, share: Share, role: UnifiedRole | None = None,
                     expires: str | None = None) -> Share:
        updated = await self.files._run(self.sharing.update, share, role, expires)
        await self.files.bus.publish(events.ShareUpdated(executant=actor.id, space_id=share.space_id,
                                                         share_id=share.id, node_id=share.node_id,
                                                         role_id=updated.role_id, expires=updated.expires,
                                                         fields=changed_fields(share, updated)))
        return updated

    async def update_link(self, actor: User, link: Share, node: NodeInfo, link_type: str | None = None,
                          password: str | None = None, expires: str | None = None,
                          name: str | None = None) -> Share:
        updated = await self.files._run(self.sharing.update_link, actor, link, node, link_type, password, expires,
                                        name)
        await self.files.bus.publish(events.LinkUpdated(executant=actor.id, space_id=link.space_id,
                                                        share_id=link.id, node_id=link.node_id,
                                                        link_type=updated.link_type, token=updated.token,
                                                        fields=changed_fields(link, updated)))
        return updated

    async def remove(self, actor: User, share: Share) -> None:
        await self.files._run(self.sharing.book.remove, share)
        if share.share_type == LINK_SHARE:
            await self.files.bus.publish(events.LinkRemoved(executant=actor.id, space_id=share.space_id,
                                                            share_id=share.id, node_id=share.node_id))
            return
        await self.files.bus.publish(events.ShareRemoved(
            executant=actor.id, space_id=share.space_id, share_id=share.id, node_id=share.node_id,
            grantee_type="group" if share.share_type == GROUP_SHARE else "user", grantee=share.grantee))

    async def set_state(self, actor: User, share: Share, state: int | None = None, hidden: bool | None = None,
                        mount: str | None = None) -> None:
        await self.files._run(self.sharing.set_state, actor, share, state, hidden, mount)
        if state is not None:
            await self.files.bus.publish(events.ShareStateChanged(executant=actor.id, space_id=share.space_id,
                                                                  share_id=share.id, state=state))

    async def expire(self) -> int:
        """Removes the shares past their expiry; their recipients hear of it (links expire silently)."""
        removed = await self.files._run(self.sharing.book.remove_expired)
        for share in removed:
            if share.share_type != LINK_SHARE:
                await self.files.bus.publish(events.ShareExpired(
                    executant=share.creator, space_id=share.space_id, share_id=share.id, node_id=share.node_id,
                    grantee_type="group" if share.share_type == GROUP_SHARE else "user", grantee=share.grantee))
        return len(removed)


def changed_fields(before: Share, after: Share) -> tuple[str, ...]:
    """What an update changed, named as oCIS names it in activities."""
    fields = []
    if before.role_id != after.role_id:
        fields.append("permission")
    if before.password_hash != after.password_hash:
        fields.append("password")
    if before.expires != after.expires:
        fields.append("expiration date")
    if before.name != after.name:
        fields.append("display name")
    return tuple(fields)
