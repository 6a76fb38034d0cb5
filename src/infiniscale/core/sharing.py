"""Sharing: user and group shares of files and folders under the unified roles, and what their
recipients did with them (accepted, pending, declined, hidden).

Shares live in documents (no database), each found without scanning:
    spaces/<space id>           every share on an item of the space {share id: record}
    received/users/<user id>    shares a user received (`direct`), and the user's state of any
                                share, group shares too {share id: {space, direct, state, hidden, mount}}
    received/groups/<group id>  shares a group received {share id: space id}
    created/<user id>           shares a user made {share id: space id}
    ids/<share id, 8 digits>    where a share is {space}
    counters                    the last share id given out
Share ids are numbers: clients treat them as opaque strings, and pyocclient (still used in
scripts) can only update or delete shares whose ids are integers. Blocking: callers run these
methods in worker threads.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from infiniscale.core import unified_roles
from infiniscale.core.model.errors import AlreadyExists, Conflict, Forbidden, InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import NodeInfo
from infiniscale.core.ports.documents import DocumentStore
from infiniscale.core.roles import can
from infiniscale.core.spaces import READ, WRITE, SpaceRole, parse_time
from infiniscale.core.unified_roles import UnifiedRole

USER_SHARE, GROUP_SHARE, LINK_SHARE = 0, 1, 3
# oCIS's storage and space id of the virtual Shares space (the share jail)
SHARE_JAIL = "a0ca6a90-a365-4782-871e-d44447bbc668"
SHARE_JAIL_DRIVE = f"{SHARE_JAIL}${SHARE_JAIL}"
ACCEPTED, PENDING, DECLINED = 0, 1, 2


@dataclass(frozen=True)
class Share:
    id: str
    share_type: int
    space_id: str
    node_id: str
    grantee: str  # user id or group id
    role_id: str
    creator: str  # who shared
    owner: str  # who owns the shared item's space
    created_ns: int
    updated_ns: int
    expires: str = ""  # ISO 8601, empty: never
    # public links
    token: str = ""
    password_hash: str = ""
    name: str = ""
    quicklink: bool = False

    @property
    def role(self) -> UnifiedRole:
        return unified_roles.by_id(self.role_id)

    @property
    def link_type(self) -> str:
        return self.role_id.partition(":")[2] if self.share_type == LINK_SHARE else ""

    def expired(self, now: float) -> bool:
        return bool(self.expires) and parse_time(self.expires) <= now


@dataclass(frozen=True)
class Received:
    share: Share
    state: int
    hidden: bool
    mount: str  # the name of its folder in the Shares space (accepted shares)


def _record(share: Share) -> dict:
    record = {"type": share.share_type, "node": share.node_id, "grantee": share.grantee, "role": share.role_id,
              "creator": share.creator, "owner": share.owner, "created": share.created_ns,
              "updated": share.updated_ns, "expires": share.expires}
    if share.share_type == LINK_SHARE:
        record.update(token=share.token, password=share.password_hash, name=share.name, quick=share.quicklink)
    return record


def _share(share_id: str, space_id: str, record: dict) -> Share:
    return Share(id=share_id, share_type=record["type"], space_id=space_id, node_id=record["node"],
                 grantee=record["grantee"], role_id=record["role"], creator=record["creator"],
                 owner=record["owner"], created_ns=record["created"], updated_ns=record["updated"],
                 expires=record.get("expires", ""), token=record.get("token", ""),
                 password_hash=record.get("password", ""), name=record.get("name", ""),
                 quicklink=bool(record.get("quick", False)))


def principal_key(principal_id: str) -> str:
    """A user's or group's id as a document name: ids from a directory may hold any character."""
    return hashlib.sha256(principal_id.encode()).hexdigest()[:32]


def _free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    for n in range(1, 10_000):
        candidate = f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})"
        if candidate not in taken:
            return candidate
    raise Conflict("too many shares with this name")


LINK_USER_PREFIX = "link:"


def link_user(share: Share) -> User:
    """Who acts through a public link: nobody in the directory, with no role of their own."""
    return User(id=LINK_USER_PREFIX + share.id, username="public", display_name="Public link", role="")


def shared_role(grants: list[Share], chain: list[NodeInfo]) -> SpaceRole | None:
    """What the best of a user's shares allows on the end of `chain`: shares of an item on the
    chain count (a share of a folder reaches everything below it)."""
    on_chain = {node.id for node in chain}
    best: SpaceRole | None = None
    for share in grants:
        if share.node_id not in on_chain:
            continue
        role = share.role
        level = WRITE if role.allows("initiate_file_upload") else READ
        if best is None or level > best.level:
            best = SpaceRole(name="share", id=role.id, display_name=role.display_name, level=level,
                             ocs_permissions=role.ocs, actions=role.actions, shared_root=share.node_id,
                             permissions=role.permissions)
    return best


class ShareBook:
    """The share documents: reading, finding and writing shares, nothing about who may."""

    def __init__(self, docs: DocumentStore) -> None:
        self.docs = docs

    def in_space(self, space_id: str, *, live: bool = True) -> list[Share]:
        now = time.time()
        shares = [_share(sid, space_id, rec) for sid, rec in self.docs.read(f"spaces/{space_id}").items()]
        return [s for s in shares if not (live and s.expired(now))]

    @staticmethod
    def _id_doc(share_id: str) -> str:
        if not share_id.isdigit() or len(share_id) > 18:
            raise NotFound("share not found")
        return f"ids/{int(share_id):08d}"

    def new_id(self, space_id: str) -> str:
        """The next share id, recorded with the space that will hold the share."""
        with self.docs.updating("counters") as doc:
            number = int(doc.get("share", 0)) + 1
            doc["share"] = number
        with self.docs.updating(self._id_doc(str(number))) as doc:
            doc["space"] = space_id
        return str(number)

    def get(self, share_id: str) -> Share:
        space_id = self.docs.read(self._id_doc(share_id)).get("space")
        if not space_id:
            raise NotFound("share not found")
        record = self.docs.read(f"spaces/{space_id}").get(share_id)
        if record is None:
            raise NotFound("share not found")
        return _share(share_id, space_id, record)

    def add(self, share: Share) -> None:
        with self.docs.updating(f"spaces/{share.space_id}") as doc:
            for rec in doc.values():
                if share.share_type == LINK_SHARE:
                    break  # any number of links per item
                if (rec["node"], rec["grantee"], rec["type"]) == (share.node_id, share.grantee, share.share_type):
                    raise AlreadyExists("the item is already shared with this user or group")
            doc[share.id] = _record(share)
        with self.docs.updating(f"created/{principal_key(share.creator)}") as doc:
            doc[share.id] = share.space_id
        if share.share_type == LINK_SHARE:
            with self.docs.updating(f"links/{share.token}") as doc:
                doc.update(space=share.space_id, share=share.id)
        elif share.share_type == GROUP_SHARE:
            with self.docs.updating(f"received/groups/{principal_key(share.grantee)}") as doc:
                doc[share.id] = share.space_id
        else:
            with self.docs.updating(f"received/users/{principal_key(share.grantee)}") as doc:
                doc[share.id] = {**doc.get(share.id, {}), "space": share.space_id, "direct": True}

    def by_token(self, token: str) -> Share:
        """A live public link by its token."""
        if not token.isalnum() or not 4 <= len(token) <= 64:
            raise NotFound("link not found")
        entry = self.docs.read(f"links/{token}")
        if not entry:
            raise NotFound("link not found")
        share = self.get(entry["share"])
        if share.expired(time.time()):
            raise NotFound("link not found")
        return share

    def remove_expired(self) -> list[Share]:
        """Removes every share and link past its expiry (they stopped working then). Returns those this
        call removed: when several processes sweep at once, each share is reported by one of them."""
        removed = []
        for space_id in self.docs.names("spaces"):
            for share in self.in_space(space_id, live=False):
                if share.expired(time.time()) and self.remove(share):
                    removed.append(share)
        return removed

    def put(self, share: Share) -> None:
        with self.docs.updating(f"spaces/{share.space_id}") as doc:
            if share.id not in doc:
                raise NotFound("share not found")
            doc[share.id] = _record(share)

    def remove(self, share: Share) -> bool:
        """Removes the share; False when it was already gone."""
        with self.docs.updating(f"spaces/{share.space_id}") as doc:
            existed = doc.pop(share.id, None) is not None
        with self.docs.updating(f"created/{principal_key(share.creator)}") as doc:
            doc.pop(share.id, None)
        if share.share_type == LINK_SHARE:
            with self.docs.updating(f"links/{share.token}") as doc:
                doc.clear()
        else:
            kind = "groups" if share.share_type == GROUP_SHARE else "users"
            with self.docs.updating(f"received/{kind}/{principal_key(share.grantee)}") as doc:
                doc.pop(share.id, None)
        with self.docs.updating(self._id_doc(share.id)) as doc:
            doc.clear()
        return existed

    def _shares(self, index: dict) -> list[Share]:
        """The live shares an index names (entries whose share is gone or expired are skipped)."""
        by_space: dict[str, list[str]] = {}
        for share_id, value in index.items():
            space_id = value if isinstance(value, str) else value["space"]
            by_space.setdefault(space_id, []).append(share_id)
        now = time.time()
        found = []
        for space_id, ids in by_space.items():
            doc = self.docs.read(f"spaces/{space_id}")
            found += [s for s in (_share(i, space_id, doc[i]) for i in ids if i in doc) if not s.expired(now)]
        return found

    def created_by(self, user_id: str) -> list[Share]:
        return self._shares(self.docs.read(f"created/{principal_key(user_id)}"))

    def received_by(self, user: User) -> tuple[list[Share], dict]:
        """The live shares the user received directly or through a group, and the user's states."""
        states = self.docs.read(f"received/users/{principal_key(user.id)}")
        # the user's document also keeps their state of group shares: only direct entries count
        index: dict = {sid: v["space"] for sid, v in states.items() if v.get("direct")}
        for group_id in user.groups:
            index.update(self.docs.read(f"received/groups/{principal_key(group_id)}"))
        return self._shares(index), states

    def set_state(self, user_id: str, share: Share, **change: object) -> dict:
        with self.docs.updating(f"received/users/{principal_key(user_id)}") as doc:
            entry = {"space": share.space_id, **doc.get(share.id, {}), **change}
            doc[share.id] = entry
        return entry


@dataclass(frozen=True)
class LinkPolicy:
    """When public links need a password (OCIS_SHARING_PUBLIC_SHARE_MUST_HAVE_PASSWORD, …WRITEABLE…)
    and what a password must be (the password policy)."""

    password_required: bool = True
    writeable_password_required: bool = False
    min_characters: int = 8
    max_characters: int = 72


class LinkPasswords:
    """Link passwords hashed with argon2id (as user passwords); a correct password is remembered
    for a while per process, so a client's every request does not pay a hash."""

    REMEMBER_S = 600

    def __init__(self) -> None:
        self.hasher = PasswordHasher(time_cost=5, memory_cost=7 * 1024, parallelism=1)
        self._verified: dict[str, float] = {}

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, share: Share, password: str) -> bool:
        key = hashlib.sha256(f"{share.id}\0{share.password_hash}\0{password}".encode()).hexdigest()
        now = time.monotonic()
        if self._verified.get(key, 0) > now:
            return True
        try:
            self.hasher.verify(share.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = now + self.REMEMBER_S
        return True


class Sharing:
    """Who may share what with whom, and what recipients see."""

    def __init__(self, book: ShareBook, roles: tuple[UnifiedRole, ...], auto_accept: bool = True,
                 links: LinkPolicy = LinkPolicy()) -> None:
        self.book = book
        self.roles = roles
        self.auto_accept = auto_accept
        self.link_policy = links
        self.passwords = LinkPasswords()

    # ------------------------------------------------------------ sharing

    def role_for(self, node: NodeInfo, role_id: str = "", ocs_permissions: int | None = None) -> UnifiedRole:
        """The enabled role to grant on this node, by id or by OCS permission bits."""
        kind = unified_roles.FOLDER if node.is_folder else unified_roles.FILE
        choices = unified_roles.for_resource(self.roles, kind)
        if role_id:
            role = next((r for r in choices if r.id == role_id), None)
        else:
            role = next((r for r in choices if r.ocs == ocs_permissions), None)
        if role is None:
            raise InvalidArgument("this role cannot be granted on this item")
        return role

    def create(self, actor: User, owner_id: str, node: NodeInfo, share_type: int, grantee: str,
               role: UnifiedRole, expires: str = "") -> Share:
        """The caller checked that `actor` may share `node` (a manager of its space)."""
        if node.is_root:
            raise Forbidden("the root of a space cannot be shared")
        if share_type == USER_SHARE and grantee == actor.id:
            raise InvalidArgument("cannot share with yourself")
        if expires and parse_time(expires) <= time.time():
            raise InvalidArgument("the expiration date is in the past")
        now = time.time_ns()
        share = Share(id=self.book.new_id(node.space_id),
                      share_type=share_type, space_id=node.space_id, node_id=node.id, grantee=grantee,
                      role_id=role.id, creator=actor.id, owner=owner_id, created_ns=now, updated_ns=now,
                      expires=expires)
        self.book.add(share)
        return share

    def update(self, share: Share, role: UnifiedRole | None = None, expires: str | None = None) -> Share:
        if expires and parse_time(expires) <= time.time():
            raise InvalidArgument("the expiration date is in the past")
        changed = replace(share, role_id=role.id if role else share.role_id,
                          expires=share.expires if expires is None else expires, updated_ns=time.time_ns())
        self.book.put(changed)
        return changed

    # ------------------------------------------------------------ public links

    def _check_password(self, actor: User, link_type: str, password: str) -> None:
        policy = self.link_policy
        if link_type == "internal":
            if password:
                raise InvalidArgument("internal links have no password")
            return
        if not password:
            writeable = link_type != "view"
            exempt = not writeable and can(actor.role, "ReadOnlyPublicLinkPassword.Delete")
            if (policy.password_required and not exempt) or (writeable and policy.writeable_password_required):
                raise InvalidArgument("missing required password")
            return
        if len(password) < policy.min_characters:
            raise InvalidArgument(f"the password must be at least {policy.min_characters} characters long")
        if len(password.encode()) > policy.max_characters:
            raise InvalidArgument(f"the password must be at most {policy.max_characters} bytes long")

    @staticmethod
    def _link_role(link_type: str, node: NodeInfo) -> UnifiedRole:
        role = unified_roles.LINK_ROLES.get(link_type)
        if role is None or (unified_roles.FOLDER if node.is_folder else unified_roles.FILE) not in role.applies_to:
            raise InvalidArgument("this link type cannot be used for this item")
        return role

    def create_link(self, actor: User, owner_id: str, node: NodeInfo, link_type: str, password: str = "",
                    expires: str = "", name: str = "", quicklink: bool = False) -> Share:
        """The caller checked that `actor` may share `node`."""
        role = self._link_role(link_type, node)
        if node.is_root and node.space_id == owner_id:
            raise Forbidden("the root of a personal space cannot be shared")
        self._check_password(actor, link_type, password)
        if expires and parse_time(expires) <= time.time():
            raise InvalidArgument("the expiration date is in the past")
        now = time.time_ns()
        token = "".join(secrets.choice(string.ascii_letters) for _ in range(15))
        share = Share(id=self.book.new_id(node.space_id), share_type=LINK_SHARE, space_id=node.space_id,
                      node_id=node.id, grantee="", role_id=role.id, creator=actor.id, owner=owner_id,
                      created_ns=now, updated_ns=now, expires=expires, token=token,
                      password_hash=self.passwords.hash(password) if password else "", name=name,
                      quicklink=quicklink)
        self.book.add(share)
        return share

    def update_link(self, actor: User, share: Share, node: NodeInfo, link_type: str | None = None,
                    password: str | None = None, expires: str | None = None, name: str | None = None) -> Share:
        """`password` None keeps it, "" removes it (where allowed)."""
        new_type = link_type or share.link_type
        role = self._link_role(new_type, node)
        password_hash = share.password_hash
        if password is not None:
            self._check_password(actor, new_type, password)
            password_hash = self.passwords.hash(password) if password else ""
        elif not password_hash:
            self._check_password(actor, new_type, "")
        if expires and parse_time(expires) <= time.time():
            raise InvalidArgument("the expiration date is in the past")
        changed = replace(share, role_id=role.id, password_hash=password_hash,
                          expires=share.expires if expires is None else expires,
                          name=share.name if name is None else name, updated_ns=time.time_ns())
        self.book.put(changed)
        return changed

    # ------------------------------------------------------------ receiving

    def received(self, user: User, name_of: Callable[[Share], str] | None = None) -> list[Received]:
        """Every live share the user received, with its state and, given `name_of` (the shared
        item's name), its mount name: one mount per shared item (a direct and a group share of it
        make one), named after the item, ` (1)`, ` (2)` … on collisions, in the order the items
        were first shared. A mount's name is kept from then on (an owner's rename does not move
        it, and later requests need not look the item up again)."""
        shares, states = self.book.received_by(user)
        shares.sort(key=lambda s: (s.created_ns, s.id))
        default = ACCEPTED if self.auto_accept else PENDING
        out = [Received(share, int(states.get(share.id, {}).get("state", default)),
                        bool(states.get(share.id, {}).get("hidden", False)),
                        str(states.get(share.id, {}).get("mount", ""))) for share in shares]
        if name_of is None:
            return out
        by_item: dict[tuple[str, str], str] = {}
        taken: set[str] = {r.mount for r in out if r.mount}
        for r in out:
            item = (r.share.space_id, r.share.node_id)
            if r.mount:
                by_item.setdefault(item, r.mount)
        named = []
        for r in out:
            item = (r.share.space_id, r.share.node_id)
            if item not in by_item:
                by_item[item] = _free_name(name_of(r.share), taken)
                taken.add(by_item[item])
            if r.state == ACCEPTED and not r.mount:
                self.book.set_state(user.id, r.share, mount=by_item[item])
            named.append(replace(r, mount=by_item[item]))
        return named

    def set_state(self, user: User, share: Share, state: int | None = None, hidden: bool | None = None,
                  mount: str | None = None) -> None:
        change: dict = {}
        if state is not None:
            change["state"] = state
        if hidden is not None:
            change["hidden"] = hidden
        if mount is not None:
            change["mount"] = mount
        self.book.set_state(user.id, share, **change)

    def grants(self, user: User, space_id: str) -> list[Share]:
        """The user's live received shares on items of this space (what gives access to them)."""
        shares, _states = self.book.received_by(user)
        return [s for s in shares if s.space_id == space_id]
