"""Users and groups in an LDAP directory (OpenLDAP, Active Directory, oCIS's idm), configured with
oCIS's `OCIS_LDAP_*` settings. Passwords are checked by binding as the user. Writes (Graph user
and group management, autoprovisioning) need `GRAPH_LDAP_SERVER_WRITE_ENABLED`; otherwise the
directory is read-only and such requests are refused.

Roles are not an LDAP attribute: they are kept beside, in `roles.mpk` of the idm folder (user id ->
role), as oCIS keeps them in its settings service. Every call opens its own short connection
(ldap3 is synchronous; callers run it in worker threads)."""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
from dataclasses import dataclass

import msgpack
from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPBindError, LDAPException, LDAPInvalidCredentialsResult
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from infiniscale.core.accounts import AccountError
from infiniscale.core.model.identity import Group, User
from infiniscale.drivers.decomposed.fsutil import write_atomic


@dataclass(frozen=True)
class LdapConfig:
    uri: str
    bind_dn: str
    bind_password: str
    user_base_dn: str
    group_base_dn: str
    user_filter: str = ""
    group_filter: str = ""
    user_objectclass: str = "inetOrgPerson"
    group_objectclass: str = "groupOfNames"
    user_id: str = "entryUUID"
    user_name: str = "uid"
    user_mail: str = "mail"
    user_display_name: str = "displayName"
    group_id: str = "entryUUID"
    group_name: str = "cn"
    group_member: str = "member"
    insecure: bool = False
    write_enabled: bool = False
    admin_user_id: str = ""


class LdapDirectory:
    local = False  # every lookup is a network round trip: callers keep it off the event loop

    def __init__(self, config: LdapConfig, idm_dir: str) -> None:
        self.config = config
        tls = Tls(validate=ssl.CERT_NONE) if config.insecure else None
        self.server = Server(config.uri, get_info=NONE, connect_timeout=5, tls=tls)
        self.roles_path = os.path.join(idm_dir, "roles.mpk")
        os.makedirs(idm_dir, exist_ok=True)
        self._roles_lock = threading.Lock()

    # ------------------------------------------------------------ connections and roles

    @contextlib.contextmanager
    def _connection(self):
        conn = Connection(self.server, self.config.bind_dn, self.config.bind_password, auto_bind=True,
                          receive_timeout=10, raise_exceptions=False)
        try:
            yield conn
        finally:
            conn.unbind()

    def _roles(self) -> dict[str, str]:
        try:
            with open(self.roles_path, "rb") as fh:
                return msgpack.unpackb(fh.read())
        except FileNotFoundError:
            return {}

    def _role_of(self, user_id: str) -> str:
        role = self._roles().get(user_id)
        if role:
            return role
        return "admin" if user_id and user_id == self.config.admin_user_id else "user"

    def _set_role(self, user_id: str, role: str) -> None:
        with self._roles_lock:
            roles = self._roles()
            roles[user_id] = role
            write_atomic(self.roles_path, msgpack.packb(roles))

    def _require_write(self) -> None:
        if not self.config.write_enabled:
            raise AccountError(403, "notAllowed", "the user directory is read-only")

    # ------------------------------------------------------------ reading

    def _user_attributes(self) -> list[str]:
        c = self.config
        return [c.user_id, c.user_name, c.user_mail, c.user_display_name]

    def _user_search(self, conn, condition: str) -> list:
        c = self.config
        flt = f"(&(objectClass={c.user_objectclass}){c.user_filter}{condition})"
        conn.search(c.user_base_dn, flt, SUBTREE, attributes=self._user_attributes())
        return list(conn.entries)

    @staticmethod
    def _first(entry, attribute: str) -> str:
        values = entry.entry_attributes_as_dict.get(attribute) or []
        return str(values[0]) if values else ""

    def _group_ids_of(self, conn, dn: str) -> tuple[str, ...]:
        c = self.config
        flt = f"(&(objectClass={c.group_objectclass}){c.group_filter}({c.group_member}={escape_filter_chars(dn)}))"
        conn.search(c.group_base_dn, flt, SUBTREE, attributes=[c.group_id])
        return tuple(self._first(e, c.group_id) for e in conn.entries)

    def _to_user(self, conn, entry) -> User:
        c = self.config
        user_id = self._first(entry, c.user_id)
        name = self._first(entry, c.user_name)
        return User(id=user_id, username=name, display_name=self._first(entry, c.user_display_name) or name,
                    email=self._first(entry, c.user_mail), groups=self._group_ids_of(conn, entry.entry_dn),
                    role=self._role_of(user_id))

    def _entry_by_name(self, conn, username: str):
        found = self._user_search(conn, f"({self.config.user_name}={escape_filter_chars(username)})")
        return found[0] if len(found) == 1 else None

    def _entry_by_id(self, conn, user_id: str):
        found = self._user_search(conn, f"({self.config.user_id}={escape_filter_chars(user_id)})")
        return found[0] if len(found) == 1 else None

    def get_by_name(self, username: str) -> User | None:
        with self._connection() as conn:
            entry = self._entry_by_name(conn, username)
            return self._to_user(conn, entry) if entry is not None else None

    def get_by_id(self, user_id: str) -> User | None:
        with self._connection() as conn:
            entry = self._entry_by_id(conn, user_id)
            return self._to_user(conn, entry) if entry is not None else None

    def users(self) -> list[User]:
        with self._connection() as conn:
            return [self._to_user(conn, e) for e in self._user_search(conn, "")]

    def groups(self) -> list[Group]:
        c = self.config
        with self._connection() as conn:
            conn.search(c.group_base_dn, f"(&(objectClass={c.group_objectclass}){c.group_filter})", SUBTREE,
                        attributes=[c.group_id, c.group_name, c.group_member])
            entries = list(conn.entries)
            names_by_dn: dict[str, str] = {}
            out = []
            for entry in entries:
                members = []
                for dn in entry.entry_attributes_as_dict.get(c.group_member) or []:
                    if not dn:
                        continue  # the empty placeholder member of a new group
                    if dn not in names_by_dn:
                        conn.search(dn, f"(objectClass={c.user_objectclass})", BASE, attributes=[c.user_name])
                        names_by_dn[dn] = self._first(conn.entries[0], c.user_name) if conn.entries else ""
                    if names_by_dn[dn]:
                        members.append(names_by_dn[dn])
                out.append(Group(id=self._first(entry, c.group_id), name=self._first(entry, c.group_name),
                                 members=tuple(members)))
            return out

    def authenticate(self, username: str, password: str) -> User | None:
        if not password:
            return None  # an empty password would be an anonymous bind, which "succeeds"
        with self._connection() as conn:
            entry = self._entry_by_name(conn, username)
            if entry is None:
                return None
            dn = entry.entry_dn
            user = self._to_user(conn, entry)
        try:
            probe = Connection(self.server, dn, password, auto_bind=True, receive_timeout=10)
        except (LDAPBindError, LDAPInvalidCredentialsResult, LDAPException):
            return None
        probe.unbind()
        return user

    def verify_password(self, user_id: str, password: str) -> bool:
        user = self.get_by_id(user_id)
        return user is not None and self.authenticate(user.username, password) is not None

    # ------------------------------------------------------------ writing

    def _user_dn(self, username: str) -> str:
        return f"{self.config.user_name}={escape_rdn(username)},{self.config.user_base_dn}"

    def put_user(self, user_id: str, username: str, password: str, display_name: str, email: str,
                 role: str = "user") -> None:
        """Creates a user; LDAP assigns the id (`user_id` is ignored unless the id attribute is a
        plain attribute the server lets us set)."""
        self._require_write()
        c = self.config
        attributes = {"objectClass": ["top", "person", "organizationalPerson", c.user_objectclass],
                      c.user_name: username, "cn": username, "sn": username, c.user_display_name: display_name,
                      "userPassword": password}
        if email:
            attributes[c.user_mail] = email
        if c.user_id.lower() != "entryuuid":
            attributes[c.user_id] = user_id
        with self._connection() as conn:
            if not conn.add(self._user_dn(username), attributes=attributes):
                raise AccountError(409 if conn.result.get("result") == 68 else 500,
                                   "nameAlreadyExists" if conn.result.get("result") == 68 else "generalException",
                                   conn.result.get("description", "ldap error"))
            created = self._entry_by_name(conn, username)
        if created is not None:
            self._set_role(self._first(created, c.user_id), role)

    def update_user(self, username: str, *, display_name: str | None = None, email: str | None = None,
                    role: str | None = None) -> User | None:
        c = self.config
        changes = {}
        if display_name is not None:
            changes[c.user_display_name] = [(MODIFY_REPLACE, [display_name])]
        if email is not None:
            changes[c.user_mail] = [(MODIFY_REPLACE, [email] if email else [])]
        with self._connection() as conn:
            entry = self._entry_by_name(conn, username)
            if entry is None:
                return None
            if changes:
                self._require_write()
                conn.modify(entry.entry_dn, changes)
            if role is not None:
                self._set_role(self._first(entry, c.user_id), role)
            entry = self._entry_by_name(conn, username)
            return self._to_user(conn, entry) if entry is not None else None

    def rename_user(self, user_id: str, new_name: str) -> User | None:
        self._require_write()
        with self._connection() as conn:
            entry = self._entry_by_id(conn, user_id)
            if entry is None:
                return None
            conn.modify(entry.entry_dn, {self.config.user_name: [(MODIFY_REPLACE, [new_name])]})
            conn.modify_dn(entry.entry_dn, f"{self.config.user_name}={escape_rdn(new_name)}")
        return self.get_by_id(user_id)

    def delete_user(self, user_id: str) -> bool:
        self._require_write()
        with self._connection() as conn:
            entry = self._entry_by_id(conn, user_id)
            return entry is not None and bool(conn.delete(entry.entry_dn))

    def set_password(self, username: str, password: str) -> bool:
        self._require_write()
        with self._connection() as conn:
            entry = self._entry_by_name(conn, username)
            return entry is not None and bool(
                conn.modify(entry.entry_dn, {"userPassword": [(MODIFY_REPLACE, [password])]}))

    def _group_entry(self, conn, group_id: str):
        c = self.config
        conn.search(c.group_base_dn, f"(&(objectClass={c.group_objectclass})({c.group_id}="
                                     f"{escape_filter_chars(group_id)}))", SUBTREE, attributes=[c.group_member])
        return conn.entries[0] if conn.entries else None

    def put_group(self, group_id: str, name: str, members: list[str]) -> None:
        self._require_write()
        c = self.config
        with self._connection() as conn:
            member_dns = [self._user_dn(m) for m in members] or [""]  # groupOfNames needs a member
            attributes = {"objectClass": ["top", c.group_objectclass], c.group_name: name, c.group_member: member_dns}
            if c.group_id.lower() != "entryuuid":
                attributes[c.group_id] = group_id
            if not conn.add(f"{c.group_name}={escape_rdn(name)},{c.group_base_dn}", attributes=attributes):
                raise AccountError(409, "nameAlreadyExists", conn.result.get("description", "ldap error"))

    def delete_group(self, group_id: str) -> bool:
        self._require_write()
        with self._connection() as conn:
            entry = self._group_entry(conn, group_id)
            return entry is not None and bool(conn.delete(entry.entry_dn))

    def rename_group(self, group_id: str, new_name: str) -> bool:
        self._require_write()
        with self._connection() as conn:
            entry = self._group_entry(conn, group_id)
            return entry is not None and bool(
                conn.modify_dn(entry.entry_dn, f"{self.config.group_name}={escape_rdn(new_name)}"))

    def set_members(self, group_id: str, add: list[str] = (), remove: list[str] = ()) -> bool:
        self._require_write()
        c = self.config
        with self._connection() as conn:
            entry = self._group_entry(conn, group_id)
            if entry is None:
                return False
            current = set(entry.entry_attributes_as_dict.get(c.group_member) or [])
            adding = [dn for dn in (self._user_dn(m) for m in add) if dn not in current]
            removing = [dn for dn in (self._user_dn(m) for m in remove) if dn in current]
            changes = {}
            if adding:
                changes[c.group_member] = [(MODIFY_ADD, adding)]
            if removing:
                changes.setdefault(c.group_member, []).append((MODIFY_DELETE, removing))
            return not changes or bool(conn.modify(entry.entry_dn, changes))

    def ensure_demo_users(self) -> None:
        """Demo users belong to the built-in directory; an LDAP directory has its own."""
