"""Tags on files and folders (Libre Graph `extensions/org.libregraph/tags`, `oc:tags`).

A node's tags are in its metadata (`tags`, comma-separated, as oCIS keeps them), so listings show
them at no extra cost. Each space also has a document of which nodes carry which tag, so the tags
a user can see are listed without walking every tree; entries of nodes deleted since are skipped
when the list is read.
"""

from __future__ import annotations

from dataclasses import replace

from infiniscale.core.files import FileService
from infiniscale.core.model import events
from infiniscale.core.model.errors import Forbidden, InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import ResourceId
from infiniscale.core.model.nodes import TAGS_KEY, NodeInfo
from infiniscale.core.ports.documents import DocumentStore
from infiniscale.core.spaces import WRITE

MAX_TAG_LENGTH = 100


def tags_of(node: NodeInfo) -> list[str]:
    return [t for t in node.props.get(TAGS_KEY, "").split(",") if t]


def clean(tags: object) -> list[str]:
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        raise InvalidArgument("tags must be a non-empty list of strings")
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if not tag or "," in tag or len(tag) > MAX_TAG_LENGTH:
            raise InvalidArgument(f"invalid tag {tag!r}")
        if tag not in out:
            out.append(tag)
    return out


class Tags:
    def __init__(self, files: FileService, index: DocumentStore) -> None:
        self.files = files
        self.index = index

    async def _target(self, user: User, resource_id: object) -> NodeInfo:
        if not isinstance(resource_id, str):
            raise InvalidArgument("resourceId is required")
        rid = ResourceId.parse(resource_id)
        chain = await self.files.resolve_id(user, rid, [])
        _space, role = await self.files._check_access(user, chain[-1].space_id, WRITE, chain)
        if role.shared_root and not role.may("initiate_file_upload"):
            raise Forbidden("no permission to tag this resource")
        return chain[-1]

    async def assign(self, user: User, resource_id: object, tags: object) -> None:
        wanted = clean(tags)
        node = await self._target(user, resource_id)
        added = await self._change(node, lambda current: current + [t for t in wanted if t not in current])
        if added:
            await self.files.bus.publish(events.TagsAdded(executant=user.id, space_id=node.space_id, node_id=node.id,
                                                          tags=tuple(added)))

    async def unassign(self, user: User, resource_id: object, tags: object) -> None:
        unwanted = clean(tags)
        node = await self._target(user, resource_id)
        removed = await self._change(node, lambda current: [t for t in current if t not in unwanted])
        if removed:
            await self.files.bus.publish(events.TagsRemoved(executant=user.id, space_id=node.space_id,
                                                            node_id=node.id, tags=tuple(removed)))

    async def _change(self, node: NodeInfo, change) -> list[str]:
        """Applies `change` to the node's tag list; returns the tags that came or went."""
        before: list[str] = []

        def apply(current: NodeInfo) -> NodeInfo:
            before[:] = tags_of(current)
            after = change(list(before))
            if after == before:
                return current
            props = dict(current.props)
            if after:
                props[TAGS_KEY] = ",".join(after)
            else:
                props.pop(TAGS_KEY, None)
            return replace(current, props=props)

        updated = await self.files._run(self.files.driver.update_node, node.space_id, node.id, apply)
        after = tags_of(updated)
        changed = sorted(set(before) ^ set(after))
        if changed:
            await self.files._run(self._reindex, node.space_id, node.id, after)
        return changed

    def _reindex(self, space_id: str, node_id: str, tags: list[str]) -> None:
        with self.index.updating(f"spaces/{space_id}") as doc:
            for tag in list(doc):
                holders = [n for n in doc[tag] if n != node_id]
                if holders:
                    doc[tag] = holders
                else:
                    del doc[tag]
            for tag in tags:
                doc.setdefault(tag, []).append(node_id)

    async def visible(self, user: User) -> list[str]:
        """Every tag on something the user can see in their spaces."""
        found: set[str] = set()
        for space_id in await self._member_spaces(user):
            doc = await self.files._run(self.index.read, f"spaces/{space_id}")
            for tag, holders in doc.items():
                if tag in found:
                    continue
                for node_id in holders:
                    if await self._live(space_id, node_id, tag):
                        found.add(tag)
                        break
        return sorted(found)

    async def _member_spaces(self, user: User) -> list[str]:
        spaces = await self.files._run(self.files.spaces.visible, user)
        return [space.id for space, role in spaces if role is not None and not space.disabled]

    async def _live(self, space_id: str, node_id: str, tag: str) -> bool:
        def current() -> NodeInfo:  # NotFound when it or a folder above it was deleted
            node = self.files.driver.stat(space_id, node_id)
            self.files.driver.ancestors(space_id, node)
            return node

        try:
            return tag in tags_of(await self.files._run(current))
        except (NotFound, InvalidArgument):
            return False
