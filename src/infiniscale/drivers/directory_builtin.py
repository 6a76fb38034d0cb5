"""The built-in user directory: users and groups in one file in the data directory, with argon2id
password hashes. Written atomically; re-read when the file changes (other processes may write)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import msgpack
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from infiniscale.core.accounts import AccountError
from infiniscale.core.model.identity import Group, User
from infiniscale.drivers.decomposed.fsutil import flocked, write_atomic

DEMO_USERS = (
    # username, password, display name, mail, role
    ("einstein", "relativity", "Albert Einstein", "einstein@example.org", "user"),
    ("marie", "radioactivity", "Marie Curie", "marie@example.org", "user"),
    ("richard", "superfluidity", "Richard Feynman", "richard@example.org", "user"),
    ("moss", "vista", "Maurice Moss", "moss@example.org", "spaceadmin"),
    ("katherine", "gemini", "Katherine Johnson", "katherine@example.org", "spaceadmin"),
)
# fixed ids, so that demo data is recognisable across installations (as in oCIS)
DEMO_IDS = {
    "einstein": "4c510ada-c86b-4815-8820-42cdf82c3d51",
    "marie": "f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c",
    "richard": "932b4540-8d16-481e-8ef4-588e4b6b151c",
    "moss": "058bff95-6708-4fe5-91e4-9ea3d377588b",
    "katherine": "534bb038-6f9d-4093-946f-133be61fa4e7",
}
DEMO_GROUPS = {
    "users": ["einstein", "marie", "richard", "moss", "katherine"],
    "philosophy-haters": ["einstein"],
    "physics-lovers": ["einstein", "marie", "richard"],
    "sailing-lovers": ["einstein"],
    "violin-haters": ["einstein"],
    "polonium-lovers": ["marie"],
    "radium-lovers": ["marie"],
    "quantum-lovers": ["richard"],
}

# argon2id with 7 MiB and 5 passes: one of OWASP's equivalent settings (like 19 MiB with 2 passes),
# the one that holds least memory per login being checked. Hashes made with other settings keep
# verifying with their own (they are part of the stored hash).
_hasher = PasswordHasher(time_cost=5, memory_cost=7 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class BuiltinDirectory:
    local = True  # lookups read a local file: cheap enough to make on the event loop

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, dict] = {}
        self._groups: dict[str, dict] = {}

    # ------------------------------------------------------------ file

    def _load(self) -> None:
        stamp = self.version()
        if stamp is None:
            self._users, self._groups, self._stamp = {}, {}, None
            return
        if stamp == self._stamp:
            return
        with open(self.path, "rb") as fh:
            data = msgpack.unpackb(fh.read(), raw=False)
        self._users = {u["username"]: u for u in data.get("users", [])}
        self._groups = {g["name"]: g for g in data.get("groups", [])}
        self._stamp = stamp

    def version(self) -> tuple[int, int, int] | None:
        """Changes with every write of the directory (one stat): what others cache about its users
        holds only while it stays the same."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino, st.st_size

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Read-modify-write of the whole file under a lock that holds across processes: two
        workers changing users at once both land, neither overwrites the other. Changes the block
        made in memory and did not save (an error) are dropped by reading the file again."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with flocked(self.path + ".lock"), self._lock:
            self._load()
            try:
                yield
            except BaseException:
                self._stamp = None
                raise

    def _save(self) -> None:
        data = {"users": list(self._users.values()), "groups": list(self._groups.values())}
        try:
            write_atomic(self.path, msgpack.packb(data), newer_mtime=True)
        finally:
            self._stamp = None

    # ------------------------------------------------------------ reading

    def _user(self, record: dict) -> User:
        groups = tuple(g["id"] for g in self._groups.values() if record["username"] in g["members"])
        return User(id=record["id"], username=record["username"], display_name=record["display_name"],
                    email=record.get("email", ""), groups=groups, role=record.get("role", "user"))

    def get_by_name(self, username: str) -> User | None:
        with self._lock:
            self._load()
            record = self._users.get(username)
            return self._user(record) if record else None

    def get_by_id(self, user_id: str) -> User | None:
        with self._lock:
            self._load()
            for record in self._users.values():
                if record["id"] == user_id:
                    return self._user(record)
            return None

    def authenticate(self, username: str, password: str) -> User | None:
        """Checks the password; None when the user is unknown or the password wrong."""
        with self._lock:
            self._load()
            record = self._users.get(username)
        if record is None:
            return None
        try:
            _hasher.verify(record["password"], password)
        except (VerificationError, InvalidHashError):
            return None
        with self._lock:
            return self._user(record)

    def groups(self) -> list[Group]:
        with self._lock:
            self._load()
            return [Group(id=g["id"], name=g["name"], members=tuple(g["members"])) for g in self._groups.values()]

    # ------------------------------------------------------------ writing

    def put_user(self, user_id: str, username: str, password: str, display_name: str, email: str,
                 role: str = "user", replace: bool = False) -> None:
        """Creates a user; a name that is taken is refused (409), also when another process took it
        a moment ago, so two first logins of one new user cannot make two ids for it. `replace`
        overwrites that user instead (group memberships, kept by name, stay)."""
        secret = hash_password(password)  # slow: outside the lock
        with self._writing():
            if username in self._users and not replace:
                raise AccountError(409, "nameAlreadyExists", "a user with that name already exists")
            self._users[username] = {"id": user_id, "username": username, "display_name": display_name,
                                     "email": email, "role": role, "password": secret}
            self._save()

    def update_user(self, username: str, *, display_name: str | None = None, email: str | None = None,
                    role: str | None = None) -> User | None:
        with self._writing():
            record = self._users.get(username)
            if record is None:
                return None
            for key, value in (("display_name", display_name), ("email", email), ("role", role)):
                if value is not None:
                    record[key] = value
            self._save()
            self._load()
            return self._user(self._users[username])

    def set_password(self, username: str, password: str) -> bool:
        with self._writing():
            record = self._users.get(username)
            if record is None:
                return False
            record["password"] = hash_password(password)
            self._save()
            return True

    def users(self) -> list[User]:
        with self._lock:
            self._load()
            return [self._user(r) for r in self._users.values()]

    def rename_user(self, user_id: str, new_name: str) -> User | None:
        with self._writing():
            record = next((r for r in self._users.values() if r["id"] == user_id), None)
            if record is None or (new_name in self._users and self._users[new_name] is not record):
                return None
            old = record["username"]
            del self._users[old]
            record["username"] = new_name
            self._users[new_name] = record
            for group in self._groups.values():  # memberships are kept by user name
                group["members"] = [new_name if m == old else m for m in group["members"]]
            self._save()
            self._load()
            return self._user(self._users[new_name])

    def delete_user(self, user_id: str) -> bool:
        with self._writing():
            record = next((r for r in self._users.values() if r["id"] == user_id), None)
            if record is None:
                return False
            del self._users[record["username"]]
            for group in self._groups.values():
                group["members"] = [m for m in group["members"] if m != record["username"]]
            self._save()
            return True

    def verify_password(self, user_id: str, password: str) -> bool:
        user = self.get_by_id(user_id)
        return user is not None and self.authenticate(user.username, password) is not None

    def delete_group(self, group_id: str) -> bool:
        with self._writing():
            name = next((n for n, g in self._groups.items() if g["id"] == group_id), None)
            if name is None:
                return False
            del self._groups[name]
            self._save()
            return True

    def rename_group(self, group_id: str, new_name: str) -> bool:
        with self._writing():
            name = next((n for n, g in self._groups.items() if g["id"] == group_id), None)
            if name is None or (new_name in self._groups and new_name != name):
                return False
            group = self._groups.pop(name)
            group["name"] = new_name
            self._groups[new_name] = group
            self._save()
            return True

    def set_members(self, group_id: str, add: list[str] = (), remove: list[str] = ()) -> bool:
        """Adds and removes members (user names) of a group."""
        with self._writing():
            group = next((g for g in self._groups.values() if g["id"] == group_id), None)
            if group is None:
                return False
            members = [m for m in group["members"] if m not in remove]
            members += [m for m in add if m not in members]
            group["members"] = members
            self._save()
            return True

    def put_group(self, group_id: str, name: str, members: list[str]) -> None:
        with self._writing():
            self._groups[name] = {"id": group_id, "name": name, "members": members}
            self._save()

    def ensure_demo_users(self) -> None:
        import uuid

        for username, password, display, mail, role in DEMO_USERS:
            if self.get_by_name(username) is None:
                self.put_user(DEMO_IDS[username], username, password, display, mail, role)
        existing = {g.name for g in self.groups()}
        for name, members in DEMO_GROUPS.items():
            if name not in existing:
                self.put_group(str(uuid.uuid5(uuid.NAMESPACE_URL, f"infiniscale-group:{name}")), name, members)
