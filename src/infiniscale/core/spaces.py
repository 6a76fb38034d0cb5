"""Spaces: who may do what in which space, their quota and their lifecycle.

A space record lives next to the space's tree (the driver keeps it as the space's marker), so the
storage stays the only source of truth. Personal spaces belong to their owner. Project spaces have
members, users or groups, each with one of the unified space roles; membership may expire. A
disabled space keeps its data but only its managers see it (to restore or purge it).

Records are cached per process and checked against the record file's version (one stat, no read)
on every use: a change of members, quota or state made by any process, or by the CLI, holds for the
very next request everywhere.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from infiniscale.core import unified_roles
from infiniscale.core.model.errors import Conflict, Forbidden, InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.roles import can

# access levels, each including the ones below it
READ, WRITE, MANAGE = 1, 2, 3


@dataclass(frozen=True)
class SpaceRole:
    name: str  # as the records store it
    id: str  # the unified role id clients send
    display_name: str
    level: int
    ocs_permissions: int
    actions: tuple[str, ...]
    # access through a share: the shared item, and the share role's CS3 permissions
    shared_root: str = ""
    permissions: frozenset[str] = frozenset()

    def may(self, permission: str) -> bool:
        """A CS3 permission of the role (a member's space role, or the share's role)."""
        return permission in self.permissions


def _space_role(name: str, unified_key: str, level: int) -> SpaceRole:
    unified = unified_roles.BY_KEY[unified_key]
    return SpaceRole(name, unified.id, unified.display_name, level, unified.ocs, unified.actions,
                     permissions=unified.permissions)


SPACE_ROLES = {
    "viewer": _space_role("viewer", "SpaceViewer", READ),
    "editor": _space_role("editor", "SpaceEditor", WRITE),
    "manager": _space_role("manager", "Manager", MANAGE),
}
ROLE_BY_ID = {role.id: role for role in SPACE_ROLES.values()}


def role_by_id(role_id: str) -> SpaceRole:
    role = ROLE_BY_ID.get(role_id)
    if role is None:
        raise InvalidArgument(f"unknown role {role_id!r}")
    return role


@dataclass(frozen=True)
class Member:
    key: str  # "u:<user id>" or "g:<group id>"
    role: str
    expires: str = ""  # RFC 3339, empty: never
    granted_by: str = ""

    @property
    def is_group(self) -> bool:
        return self.key.startswith("g:")

    @property
    def principal_id(self) -> str:
        return self.key[2:]

    def expired(self, now: float) -> bool:
        return bool(self.expires) and parse_time(self.expires) <= now


@dataclass(frozen=True)
class Space:
    id: str
    type: str  # personal | project
    name: str
    owner_id: str
    description: str = ""
    quota: int = 0  # bytes; 0: unlimited
    disabled_ns: int = 0
    members: tuple[Member, ...] = ()
    special: tuple[tuple[str, str], ...] = ()  # (image|readme, node id)
    created_ns: int = 0
    alias: str = ""  # project spaces: fixed at creation, a rename keeps it

    @property
    def disabled(self) -> bool:
        return self.disabled_ns > 0


def project_alias(name: str) -> str:
    return "project/" + re.sub(r"\s+", "-", name.strip().lower())


def parse_time(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidArgument(f"invalid date {value!r}") from None


def record_to_space(info: dict) -> Space:
    members = tuple(Member(key, m.get("role", "viewer"), m.get("expires", ""), m.get("by", ""))
                    for key, m in sorted((info.get("members") or {}).items()))
    return Space(id=info["id"], type=info.get("type", "personal"), name=info.get("name", ""),
                 owner_id=info.get("owner", ""), description=info.get("description", ""),
                 quota=int(info.get("quota") or 0), disabled_ns=int(info.get("disabled") or 0),
                 members=members, special=tuple(sorted((info.get("special") or {}).items())),
                 created_ns=int(info.get("created") or 0), alias=info.get("alias", ""))


class SpaceStore(Protocol):
    """What the storage driver offers for space records (blocking calls)."""
    def space_info(self, space_id: str) -> dict: ...
    def space_version(self, space_id: str) -> Any: ...
    def list_space_ids(self, space_type: str | None = None) -> list[str]: ...
    def create_space(self, space_id: str, space_type: str, name: str, owner_id: str,
                     extra: dict | None = None) -> Any: ...
    def update_space(self, space_id: str, change: Callable[[dict], dict]) -> dict: ...
    def purge_space(self, space_id: str) -> None: ...


@dataclass(frozen=True)
class Limits:
    default_project_quota: int = 1_000_000_000
    max_quota: int = 0  # 0: no cap


class Spaces:
    """Blocking: called from worker threads, like the driver it wraps."""

    def __init__(self, store: SpaceStore, limits: Limits = Limits()) -> None:
        self.store = store
        self.limits = limits
        self._cache: dict[str, tuple[Any, Space]] = {}  # space id -> (record version, record)
        self._lock = threading.Lock()

    # ------------------------------------------------------------ reading

    def get(self, space_id: str) -> Space:
        try:
            version = self.store.space_version(space_id)
            hit = self._cache.get(space_id)
            if hit is not None and hit[0] == version:
                return hit[1]
            space = record_to_space(self.store.space_info(space_id))
        except InvalidArgument:
            raise NotFound("space not found") from None
        with self._lock:
            self._cache[space_id] = (version, space)
        return space

    def peek(self, space_id: str) -> Space | None:
        """The cached record if it is still the current one (one stat, cheap enough for the event
        loop); None when it is not cached, has changed or is gone."""
        hit = self._cache.get(space_id)
        if hit is None:
            return None
        try:
            current = self.store.space_version(space_id)
        except (NotFound, InvalidArgument):
            return None
        return hit[1] if hit[0] == current else None

    def forget(self, space_id: str) -> None:
        """Drops a purged space's record from the cache."""
        with self._lock:
            self._cache.pop(space_id, None)

    def all(self, space_type: str | None = None) -> list[Space]:
        found = []
        for space_id in self.store.list_space_ids(space_type):
            try:
                found.append(self.get(space_id))
            except NotFound:
                continue  # purged meanwhile
        return found

    def role_of(self, user: User, space: Space) -> SpaceRole | None:
        """The user's role in the space: the owner of a personal space manages it; in a project
        space the strongest of the user's own and their groups' unexpired memberships."""
        if space.type == "personal":
            return SPACE_ROLES["manager"] if space.owner_id == user.id else None
        now = time.time()
        keys = {f"u:{user.id}", *(f"g:{gid}" for gid in user.groups)}
        best: SpaceRole | None = None
        for member in space.members:
            if member.key in keys and not member.expired(now):
                role = SPACE_ROLES.get(member.role)
                if role is not None and (best is None or role.level > best.level):
                    best = role
        return best

    def access(self, user: User, space_id: str, level: int = READ) -> tuple[Space, SpaceRole]:
        """The space and the user's role in it, when the user may act at `level`. Somebody without
        any role learns nothing (NotFound); a member below the level is Forbidden. A disabled space
        is out of reach for file access."""
        return self.check(user, self.get(space_id), level)

    def check(self, user: User, space: Space, level: int = READ) -> tuple[Space, SpaceRole]:
        role = self.role_of(user, space)
        if role is None or space.disabled:
            raise NotFound("resource not found")
        if role.level < level:
            raise Forbidden("insufficient permissions in this space")
        return space, role

    def visible(self, user: User, *, everything: bool = False) -> list[tuple[Space, SpaceRole | None]]:
        """Spaces the user is a member of (disabled ones only for their managers), or every space
        for those who may list all drives."""
        out = []
        # a user is a member of their own personal space and of project spaces only: no need to
        # read every other user's personal space
        candidates = self.all() if everything else self._own_personal(user) + self.all("project")
        for space in candidates:
            role = self.role_of(user, space)
            if everything or self.listed(space, role):
                out.append((space, role))
        return out

    def _own_personal(self, user: User) -> list[Space]:
        try:
            return [self.get(user.id)]
        except (NotFound, InvalidArgument):
            return []

    @staticmethod
    def listed(space: Space, role: SpaceRole | None) -> bool:
        """Whether a member with `role` sees the space among their drives: disabled spaces only
        their managers, to restore or purge them."""
        return role is not None and (not space.disabled or role.level >= MANAGE)

    def quota_of(self, space: Space) -> int:
        """Effective quota in bytes, 0 for unlimited."""
        cap = self.limits.max_quota
        if space.quota and cap:
            return min(space.quota, cap)
        return space.quota or cap

    # ------------------------------------------------------------ project spaces

    def create_project(self, user: User, name: str, description: str = "", quota: int | None = None) -> Space:
        if not can(user.role, "Drives.Create") or not can(user.role, "Drives.List"):
            raise Forbidden("insufficient permissions to create a space")
        name = self._valid_name(name)
        total = self.limits.default_project_quota if quota is None else self._valid_quota(quota)
        space_id = str(uuid.uuid4())
        extra = {"description": description, "quota": total, "alias": project_alias(name),
                 "members": {f"u:{user.id}": {"role": "manager", "by": user.id}}}
        self.store.create_space(space_id, "project", name, user.id, extra)
        return self.get(space_id)

    def update(self, user: User, space_id: str, *, name: str | None = None, description: str | None = None,
               quota: int | None = None, special: dict[str, str] | None = None) -> Space:
        space = self.get(space_id)
        role = self.role_of(user, space)
        quota_permission = "Drives.ReadWritePersonalQuota" if space.type == "personal" \
            else "Drives.ReadWriteProjectQuota"
        manages = role is not None and role.level >= MANAGE and not space.disabled
        if (name is not None or description is not None or special) and not (
                manages or can(user.role, "Drives.ReadWrite")):
            raise self._hidden_or_forbidden(role)
        if quota is not None and not can(user.role, quota_permission):
            raise self._hidden_or_forbidden(role)
        if name is not None:
            name = self._valid_name(name)
        if quota is not None:
            quota = self._valid_quota(quota)

        def change(info: dict) -> dict:
            if name is not None:
                info["name"] = name
            if description is not None:
                info["description"] = description
            if quota is not None:
                info["quota"] = quota
            if special:
                info["special"] = {**(info.get("special") or {}), **special}
            return info

        self.store.update_space(space_id, change)
        return self.get(space_id)

    def disable(self, user: User, space_id: str) -> Space:
        space = self._manageable(user, space_id, "Drives.DeleteProject")
        if space.type == "personal":
            raise Forbidden("personal spaces cannot be disabled")
        self.store.update_space(space_id, lambda info: {**info, "disabled": time.time_ns()})
        return self.get(space_id)

    def restore(self, user: User, space_id: str) -> Space:
        self._manageable(user, space_id, "Drives.DeleteProject")
        self.store.update_space(space_id, lambda info: {**info, "disabled": 0})
        return self.get(space_id)

    def purge(self, user: User, space_id: str) -> Space:
        space = self._manageable(user, space_id,
                                 "Drives.DeletePersonal" if self.get(space_id).type == "personal"
                                 else "Drives.DeleteProject")
        if not space.disabled:
            raise Conflict("a space must be disabled before it is purged")
        self.store.purge_space(space_id)
        self.forget(space_id)  # updated records need no forgetting (their version tells); a gone one does
        return space

    def _manageable(self, user: User, space_id: str, admin_permission: str) -> Space:
        space = self.get(space_id)
        role = self.role_of(user, space)
        if (role is None or role.level < MANAGE) and not can(user.role, admin_permission):
            raise self._hidden_or_forbidden(role)
        return space

    @staticmethod
    def _hidden_or_forbidden(role: SpaceRole | None) -> Exception:
        return NotFound("space not found") if role is None else Forbidden("insufficient permissions")

    @staticmethod
    def _valid_name(name: str) -> str:
        name = (name or "").strip()
        if not name:
            raise InvalidArgument("the space name must not be empty")
        if len(name) > 255 or any(c in name for c in '/\\.:?*"><|') or any(ord(c) < 32 for c in name):
            raise InvalidArgument("the space name contains forbidden characters or is too long")
        return name

    def _valid_quota(self, quota: int) -> int:
        if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
            raise InvalidArgument("the quota must be a non-negative number of bytes")
        if self.limits.max_quota and (quota == 0 or quota > self.limits.max_quota):
            raise InvalidArgument("the quota exceeds the maximum allowed")
        return quota

    # ------------------------------------------------------------ members

    def members(self, user: User, space_id: str) -> tuple[Space, SpaceRole]:
        """The space for listing its members: every member may see who else is in it."""
        return self.access(user, space_id, READ)

    def grant(self, user: User, space_id: str, principal_key: str, role: SpaceRole, expires: str = "") -> Member:
        space, _ = self.access(user, space_id, MANAGE)
        if space.type != "project":
            raise InvalidArgument("only project spaces have members")
        if expires and parse_time(expires) <= time.time():
            raise InvalidArgument("the expiration date is in the past")
        member = Member(principal_key, role.name, expires, user.id)
        if role.name != "manager":
            self._keep_a_manager(space, principal_key)

        def change(info: dict) -> dict:
            members = dict(info.get("members") or {})
            members[principal_key] = {"role": role.name, "expires": expires, "by": user.id}
            info["members"] = members
            return info

        self.store.update_space(space_id, change)
        return member

    def revoke(self, user: User, space_id: str, principal_key: str) -> None:
        space, _ = self.access(user, space_id, MANAGE)
        if all(m.key != principal_key for m in space.members):
            raise NotFound("permission not found")
        self._keep_a_manager(space, principal_key)

        def change(info: dict) -> dict:
            members = dict(info.get("members") or {})
            members.pop(principal_key, None)
            info["members"] = members
            return info

        self.store.update_space(space_id, change)


    @staticmethod
    def _keep_a_manager(space: Space, leaving_key: str) -> None:
        """A project space always keeps one user who manages it."""
        others = [m for m in space.members if m.key != leaving_key and m.role == "manager" and not m.is_group]
        leaving = next((m for m in space.members if m.key == leaving_key), None)
        if leaving is not None and leaving.role == "manager" and not leaving.is_group and not others:
            raise Forbidden("the last manager of a space cannot be removed")


def format_time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
