"""Roles and their permissions, with oCIS's role ids and permission names. Each user has one role."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    name: str
    id: str
    display_name: str
    permissions: frozenset[str]


_OWN_SETTINGS = {"Language.ReadWrite", "AutoAcceptShares.ReadWriteDisabled", "EmailNotifications.ReadWriteDisabled",
                 "EmailSendingInterval.ReadWrite"}
_USER = _OWN_SETTINGS | {"PublicLink.Write", "Shares.Write", "Drives.Create", "Self.ReadWrite", "Favorites.List",
                         "Favorites.Write"}
_SPACEADMIN = _USER | {"Drives.DeleteProject", "Drives.List", "Drives.ReadWrite", "Drives.ReadWriteProjectQuota",
                       "Drives.ReadWriteEnabled", "ReadOnlyPublicLinkPassword.Delete"}
_ADMIN = (_SPACEADMIN - {"Self.ReadWrite"}) | {"Accounts.ReadWrite", "Groups.ReadWrite", "Roles.ReadWrite",
                                              "Settings.ReadWrite", "Logo.Write", "Drives.DeletePersonal",
                                              "Drives.ReadWritePersonalQuota"}

ROLES = {
    "admin": Role("admin", "71881883-1768-46bd-a24d-a356a2afdf7f", "Admin", frozenset(_ADMIN)),
    "spaceadmin": Role("spaceadmin", "2aadd357-682c-406b-8874-293091995fdd", "Space Admin", frozenset(_SPACEADMIN)),
    "user": Role("user", "d7beeea8-8ff4-406b-8fb6-ab2dd81e6b11", "User", frozenset(_USER)),
    "user-light": Role("user-light", "38071a68-456a-4553-846a-fa67bf5596cc", "User Light",
                       frozenset(_OWN_SETTINGS)),
}
BY_ID = {role.id: role for role in ROLES.values()}


def can(role_name: str, permission: str) -> bool:
    role = ROLES.get(role_name)
    return role is not None and permission in role.permissions
