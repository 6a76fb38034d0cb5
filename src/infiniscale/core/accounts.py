"""Managing users, groups and role assignments, with oCIS's rules: who may do what (roles and their
permissions), what is valid, and which error each refusal is. Methods block (the directory is a
file or LDAP); callers run them in worker threads. It knows nothing of HTTP or OData syntax."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Protocol

from infiniscale.core.model.identity import Group, User
from infiniscale.core.roles import BY_ID, ROLES, can

SEARCH_MIN_LENGTH = 3
USERNAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]*(@[a-zA-Z0-9.-]+)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
APPLICATION_NAME = "ownCloud Infinite Scale"


class AccountError(Exception):
    """A refusal: HTTP-like status, OData error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def denied(message: str = "Forbidden") -> AccountError:
    return AccountError(403, "accessDenied", message)


def invalid(message: str) -> AccountError:
    return AccountError(400, "invalidRequest", message)


def not_found(message: str = "not found") -> AccountError:
    return AccountError(404, "itemNotFound", message)


class Directory(Protocol):
    def users(self) -> list[User]: ...
    def groups(self) -> list[Group]: ...
    def get_by_name(self, username: str) -> User | None: ...
    def get_by_id(self, user_id: str) -> User | None: ...
    def put_user(self, user_id: str, username: str, password: str, display_name: str, email: str,
                 role: str = "user") -> None: ...
    def update_user(self, username: str, *, display_name: str | None = None, email: str | None = None,
                    role: str | None = None) -> User | None: ...
    def rename_user(self, user_id: str, new_name: str) -> User | None: ...
    def delete_user(self, user_id: str) -> bool: ...
    def set_password(self, username: str, password: str) -> bool: ...
    def verify_password(self, user_id: str, password: str) -> bool: ...
    def put_group(self, group_id: str, name: str, members: list[str]) -> None: ...
    def delete_group(self, group_id: str) -> bool: ...
    def rename_group(self, group_id: str, new_name: str) -> bool: ...
    def set_members(self, group_id: str, add: list[str] = (), remove: list[str] = ()) -> bool: ...


@dataclass(frozen=True)
class Assignment:
    id: str
    role_id: str
    user_id: str


def assignment_of(user: User) -> Assignment:
    role = ROLES.get(user.role, ROLES["user"])
    return Assignment(str(uuid.uuid5(uuid.NAMESPACE_OID, f"{user.id}/{role.id}")), role.id, user.id)


class Accounts:
    def __init__(self, directory: Directory, application_id: str) -> None:
        self.directory = directory
        self.application_id = application_id

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def is_admin(actor: User) -> bool:
        return can(actor.role, "Accounts.ReadWrite")

    def _require_admin(self, actor: User) -> None:
        if not self.is_admin(actor):
            raise denied()

    def _user(self, key: str) -> User:
        user = self.directory.get_by_id(key) or self.directory.get_by_name(key)
        if user is None:
            raise not_found()
        return user

    def _group(self, key: str) -> Group:
        for group in self.directory.groups():
            if key in (group.id, group.name):
                return group
        raise not_found()

    def _check_search(self, actor: User, search: str) -> None:
        """Everybody may look others up (to share with them), but only by a search term."""
        if self.is_admin(actor):
            return
        quoted = len(search) >= 2 and search[0] == search[-1] == '"'
        if len(search) < SEARCH_MIN_LENGTH + (2 if quoted else 0):
            raise denied("search term too short")

    @staticmethod
    def _matches(search: str, *values: str) -> bool:
        term = search.strip('"').casefold()
        return not term or any(term in v.casefold() for v in values)

    def sharees(self, actor: User, search: str) -> tuple[list[User], list[Group]]:
        """Whom the actor may share with, by a search term (OCS sharees): users by user name, mail
        or display name, groups by name."""
        if not search.strip():
            raise invalid("search term is missing")
        self._check_search(actor, search)
        users = [u for u in self.directory.users() if self._matches(search, u.username, u.email, u.display_name)]
        groups = [g for g in self.directory.groups() if self._matches(search, g.name)]
        return users, groups

    # ------------------------------------------------------------------ users

    def list_users(self, actor: User, search: str = "") -> tuple[list[User], bool]:
        """The users matching `search`, and whether the actor may see all of their attributes."""
        self._check_search(actor, search)
        users = [u for u in self.directory.users() if self._matches(search, u.username, u.email, u.display_name)]
        return users, self.is_admin(actor)

    def get_user(self, actor: User, key: str) -> User:
        return self._user(key)

    def create_user(self, actor: User, doc: dict) -> User:
        self._require_admin(actor)
        if "id" in doc:
            raise invalid("user id is a read-only attribute")
        display = doc.get("displayName")
        if not isinstance(display, str) or not display.strip():
            raise invalid("missing required Attribute: 'displayName'")
        username = doc.get("onPremisesSamAccountName")
        if not isinstance(username, str) or not username:
            raise invalid("missing required Attribute: 'onPremisesSamAccountName'")
        if not USERNAME.match(username) or len(username) > 255:
            raise invalid("Invalid username")
        mail = doc.get("mail") or ""
        if mail and (not isinstance(mail, str) or not EMAIL.match(mail)):
            raise invalid("invalid email address")
        user_type = str(doc.get("userType") or "Member")
        if user_type.lower() not in ("member", "guest"):
            raise invalid("invalid userType attribute, valid options are 'Member' or 'Guest'")
        password = (doc.get("passwordProfile") or {}).get("password") or uuid.uuid4().hex + uuid.uuid4().hex
        if not isinstance(password, str):
            raise invalid("invalid password")
        if self.directory.get_by_name(username) is not None:
            raise AccountError(409, "nameAlreadyExists", "a user with that name already exists")
        self.directory.put_user(str(uuid.uuid4()), username, password, display.strip(), mail, "user")
        created = self.directory.get_by_name(username)
        assert created is not None
        return created

    def update_user(self, actor: User, key: str, doc: dict) -> User:
        self._require_admin(actor)
        user = self._user(key)
        if "id" in doc and doc["id"] != user.id:
            raise AccountError(405, "notAllowed", "the user id cannot be changed")
        if "preferredLanguage" in doc and user.id != actor.id:
            raise invalid("user is not allowed to change other users language")
        mail = doc.get("mail")
        if mail is not None and (not isinstance(mail, str) or not EMAIL.match(mail)):
            raise invalid(f"'{mail}' is not a valid email address")
        user_type = doc.get("userType")
        if user_type is not None and str(user_type).lower() not in ("member", "guest"):
            raise invalid("invalid userType attribute, valid options are 'Member' or 'Guest'")
        new_name = doc.get("onPremisesSamAccountName")
        if new_name is not None and new_name != user.username:
            if not isinstance(new_name, str) or not USERNAME.match(new_name):
                raise invalid("Invalid username")
            if self.directory.get_by_name(new_name) is not None:
                raise AccountError(409, "nameAlreadyExists", "a user with that name already exists")
            renamed = self.directory.rename_user(user.id, new_name)
            assert renamed is not None
            user = renamed
        display = doc.get("displayName")
        if display is not None or mail is not None:
            updated = self.directory.update_user(user.username, display_name=display, email=mail)
            assert updated is not None
            user = updated
        password = (doc.get("passwordProfile") or {}).get("password")
        if isinstance(password, str) and password:
            self.directory.set_password(user.username, password)
        return user

    def delete_user(self, actor: User, key: str) -> None:
        self._require_admin(actor)
        user = self._user(key)
        if user.id == actor.id:
            raise AccountError(403, "notAllowed", "self deletion forbidden")
        self.directory.delete_user(user.id)

    def update_me(self, actor: User, doc: dict) -> User:
        if "displayName" in doc:
            raise invalid("user is not allowed to change own displayname")
        if "mail" in doc:
            raise invalid("user is not allowed to change own mail")
        unknown = set(doc) - {"preferredLanguage"}
        if unknown:
            raise invalid(f"invalid request body: unknown field {sorted(unknown)[0]!r}")
        return actor

    def change_password(self, actor: User, current: str, new: str) -> None:
        if not current:
            raise invalid("current password cannot be empty")
        if not new:
            raise invalid("new password cannot be empty")
        if current == new:
            raise invalid("new password must be different from current password")
        if not self.directory.verify_password(actor.id, current):
            raise invalid("wrong current password")
        self.directory.set_password(actor.username, new)

    # ------------------------------------------------------------------ groups

    def list_groups(self, actor: User, search: str = "") -> tuple[list[Group], bool]:
        self._check_search(actor, search)
        return [g for g in self.directory.groups() if self._matches(search, g.name)], self.is_admin(actor)

    def get_group(self, actor: User, key: str) -> Group:
        return self._group(key)

    def create_group(self, actor: User, doc: dict) -> Group:
        self._require_admin(actor)
        if "id" in doc:
            raise invalid("group id is a read-only attribute")
        name = doc.get("displayName")
        if not isinstance(name, str):
            raise invalid("Missing Required Attribute")
        name = name.strip()
        if not 1 <= len(name) <= 256:
            raise invalid("Invalid displayName")
        if any(g.name == name for g in self.directory.groups()):
            raise AccountError(409, "nameAlreadyExists", "group already exists")
        group_id = str(uuid.uuid4())
        self.directory.put_group(group_id, name, [])
        return self._group(group_id)

    def update_group(self, actor: User, key: str, doc: dict, member_ids: list[str]) -> None:
        self._require_admin(actor)
        group = self._group(key)
        name = doc.get("displayName")
        renamed = isinstance(name, str) and name.strip() and name.strip() != group.name
        if renamed and not self.directory.rename_group(group.id, str(name).strip()):
            raise AccountError(409, "nameAlreadyExists", "Group name already in use")
        if member_ids:
            if len(member_ids) > 20:
                raise invalid("Request is limited to 20 members")
            self.add_members(actor, group.id, member_ids)

    def delete_group(self, actor: User, key: str) -> None:
        self._require_admin(actor)
        if not self.directory.delete_group(self._group(key).id):
            raise not_found()

    def members(self, actor: User, key: str) -> list[User]:
        self._require_admin(actor)
        group = self._group(key)
        return [u for u in (self.directory.get_by_name(m) for m in group.members) if u is not None]

    def add_members(self, actor: User, key: str, user_ids: list[str]) -> None:
        self._require_admin(actor)
        group = self._group(key)
        names = [self._user(uid).username for uid in user_ids]
        self.directory.set_members(group.id, add=names)

    def remove_member(self, actor: User, key: str, user_id: str) -> None:
        self._require_admin(actor)
        group = self._group(key)
        user = self._user(user_id)
        if user.username not in group.members:
            raise not_found()
        self.directory.set_members(group.id, remove=[user.username])

    # ------------------------------------------------------------------ roles

    def application(self) -> dict:
        return {"id": self.application_id, "displayName": APPLICATION_NAME,
                "appRoles": [{"id": r.id, "displayName": r.display_name} for r in ROLES.values()]}

    def _require_role_admin(self, actor: User) -> None:
        self._require_admin(actor)
        if not can(actor.role, "Roles.ReadWrite"):
            raise AccountError(403, "notAllowed", "user has no role management permission")

    def assignments(self, actor: User, key: str) -> list[Assignment]:
        self._require_role_admin(actor)
        return [assignment_of(self._user(key))]

    def assign(self, actor: User, key: str, doc: dict) -> Assignment:
        self._require_role_admin(actor)
        user = self._user(key)
        if doc.get("principalId") != user.id:
            raise invalid(f"user id {user.id} does not match principal id {doc.get('principalId')}")
        if doc.get("resourceId") != self.application_id:
            raise invalid(f"resource id {doc.get('resourceId')} does not match the application id")
        role = BY_ID.get(str(doc.get("appRoleId")))
        if role is None:
            raise invalid(f"unknown appRoleId {doc.get('appRoleId')}")
        if user.id == actor.id:
            raise AccountError(403, "notAllowed", "Changing own role assignment forbidden")
        updated = self.directory.update_user(user.username, role=role.name)
        assert updated is not None
        return assignment_of(updated)

    def unassign(self, actor: User, key: str, assignment_id: str) -> None:
        self._require_role_admin(actor)
        user = self._user(key)
        if assignment_of(user).id != assignment_id:
            raise not_found(f"appRoleAssignment {assignment_id} not found for user {user.id}")
        if user.id == actor.id:
            raise AccountError(403, "notAllowed", "Removing own role assignment forbidden")
        self.directory.update_user(user.username, role="user-light")  # one role each: the least one
