"""Shares kept as documents: created, found per space, per recipient (directly and through groups)
and per creator without scanning, updated, removed, expired; recipients' states; two stores on one
folder (two processes) agree at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infiniscale.core import unified_roles
from infiniscale.core.model.errors import AlreadyExists, Forbidden, InvalidArgument, NotFound
from infiniscale.core.model.identity import User
from infiniscale.core.model.nodes import FILE, FOLDER, NodeInfo
from infiniscale.core.sharing import (
    ACCEPTED,
    DECLINED,
    GROUP_SHARE,
    PENDING,
    USER_SHARE,
    ShareBook,
    Sharing,
    principal_key,
)
from infiniscale.drivers.documents_files import FileDocumentStore

SPACE = "4c510ada-c86b-4815-8820-42cdf82c3d51"
OWNER = User(id=SPACE, username="einstein", display_name="Einstein")
MARIE = User(id="f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c", username="marie", display_name="Marie",
             groups=("grp-physics",))
RICHARD = User(id="932b4540-8d16-481e-8ef4-588e4b6b151c", username="richard", display_name="Richard")
FOLDER_NODE = NodeInfo(space_id=SPACE, id="node-folder-1", parent_id=SPACE, name="Projects", type=FOLDER,
                       mtime_ns=1, tmtime_ns=1)
FILE_NODE = NodeInfo(space_id=SPACE, id="node-file-1", parent_id=SPACE, name="notes.txt", type=FILE,
                     mtime_ns=1, tmtime_ns=1)


@pytest.fixture
def sharing(tmp_path: Path) -> Sharing:
    return Sharing(ShareBook(FileDocumentStore(str(tmp_path / "shares"))), unified_roles.available())


def test_roles_by_id_or_ocs_bits_and_by_kind_of_item(sharing):
    editor = sharing.role_for(FOLDER_NODE, ocs_permissions=15)
    assert editor.key == "Editor"
    assert sharing.role_for(FILE_NODE, ocs_permissions=3).key == "FileEditor"
    assert sharing.role_for(FOLDER_NODE, ocs_permissions=4).key == "EditorLite"
    assert sharing.role_for(FILE_NODE, role_id=unified_roles.BY_KEY["Viewer"].id).key == "Viewer"
    with pytest.raises(InvalidArgument):
        sharing.role_for(FILE_NODE, ocs_permissions=15)  # Editor does not apply to files
    with pytest.raises(InvalidArgument):
        sharing.role_for(FOLDER_NODE, role_id=unified_roles.BY_KEY["SecureViewer"].id)  # not enabled


def test_a_user_share_is_found_by_space_recipient_and_creator(sharing):
    viewer = sharing.role_for(FOLDER_NODE, ocs_permissions=1)
    share = sharing.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, MARIE.id, viewer)
    assert share.id.isdigit()  # pyocclient updates and deletes only shares with integer ids
    assert sharing.book.get(share.id) == share
    assert [s.id for s in sharing.book.in_space(SPACE)] == [share.id]
    assert [s.id for s in sharing.book.created_by(OWNER.id)] == [share.id]
    received = sharing.received(MARIE)
    assert [(r.share.id, r.state) for r in received] == [(share.id, ACCEPTED)]
    assert [s.id for s in sharing.grants(MARIE, SPACE)] == [share.id]
    assert sharing.grants(RICHARD, SPACE) == []
    with pytest.raises(AlreadyExists):
        sharing.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, MARIE.id, viewer)


def test_group_shares_reach_members_and_states_are_per_user(sharing):
    viewer = sharing.role_for(FILE_NODE, ocs_permissions=1)
    share = sharing.create(OWNER, OWNER.id, FILE_NODE, GROUP_SHARE, "grp-physics", viewer)
    assert [r.share.id for r in sharing.received(MARIE)] == [share.id]
    assert sharing.received(RICHARD) == []
    sharing.set_state(MARIE, share, state=DECLINED)
    assert sharing.received(MARIE)[0].state == DECLINED
    # leaving the group ends the share for her, whatever state she had set
    assert sharing.received(User(id=MARIE.id, username="marie", display_name="Marie")) == []


def test_update_expiry_and_removal(sharing):
    viewer = sharing.role_for(FOLDER_NODE, ocs_permissions=1)
    share = sharing.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, MARIE.id, viewer)
    editor = sharing.role_for(FOLDER_NODE, ocs_permissions=15)
    updated = sharing.update(share, role=editor)
    assert sharing.book.get(share.id).role.key == "Editor" and updated.updated_ns >= share.updated_ns
    with pytest.raises(InvalidArgument):
        sharing.update(share, expires="2001-01-01T00:00:00Z")
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    sharing.update(share, expires=soon)
    assert sharing.grants(MARIE, SPACE)
    time.sleep(1.2)
    assert sharing.grants(MARIE, SPACE) == []  # expired: no access, not listed
    assert sharing.received(MARIE) == []
    sharing.book.remove(share)
    with pytest.raises(NotFound):
        sharing.book.get(share.id)
    assert sharing.book.created_by(OWNER.id) == []


def test_refusals(sharing):
    viewer = sharing.role_for(FOLDER_NODE, ocs_permissions=1)
    root = NodeInfo(space_id=SPACE, id=SPACE, parent_id="", name="", type=FOLDER, mtime_ns=1, tmtime_ns=1)
    with pytest.raises(Forbidden):
        sharing.create(OWNER, OWNER.id, root, USER_SHARE, MARIE.id, viewer)
    with pytest.raises(InvalidArgument):
        sharing.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, OWNER.id, viewer)
    with pytest.raises(InvalidArgument):
        sharing.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, MARIE.id, viewer, expires="2001-01-01")
    with pytest.raises(NotFound):
        sharing.book.get("not-a-share-id")


def test_pending_by_default_without_auto_accept(tmp_path):
    sharing = Sharing(ShareBook(FileDocumentStore(str(tmp_path / "shares"))), unified_roles.available(),
                      auto_accept=False)
    share = sharing.create(OWNER, OWNER.id, FILE_NODE, USER_SHARE, MARIE.id, sharing.role_for(FILE_NODE, "", 1))
    assert sharing.received(MARIE)[0].state == PENDING
    sharing.set_state(MARIE, share, state=ACCEPTED, mount="notes.txt")
    accepted = sharing.received(MARIE)[0]
    assert (accepted.state, accepted.mount) == (ACCEPTED, "notes.txt")


def test_two_stores_on_one_folder_agree_at_once(tmp_path):
    first = Sharing(ShareBook(FileDocumentStore(str(tmp_path / "shares"))), unified_roles.available())
    second = Sharing(ShareBook(FileDocumentStore(str(tmp_path / "shares"))), unified_roles.available())
    assert second.received(MARIE) == []  # cached empty
    share = first.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, MARIE.id, first.role_for(FOLDER_NODE, "", 1))
    assert [r.share.id for r in second.received(MARIE)] == [share.id]
    second.book.remove(share)
    assert first.received(MARIE) == []


def test_document_names_cannot_traverse(tmp_path):
    store = FileDocumentStore(str(tmp_path / "docs"))
    for bad in ("spaces/../../etc", "spaces/..", "received/users/a/../b"):
        with pytest.raises(InvalidArgument):
            store.read(bad)


def test_mount_names_one_per_item_with_suffixes_on_collisions(sharing):
    other = NodeInfo(space_id=SPACE, id="node-file-2", parent_id="node-folder-1", name="notes.txt", type=FILE,
                     mtime_ns=1, tmtime_ns=1)
    viewer = sharing.role_for(FILE_NODE, "", 1)
    first = sharing.create(OWNER, OWNER.id, FILE_NODE, USER_SHARE, MARIE.id, viewer)
    sharing.create(OWNER, OWNER.id, FILE_NODE, GROUP_SHARE, "grp-physics", viewer)  # same item: one mount
    sharing.create(OWNER, OWNER.id, other, USER_SHARE, MARIE.id, viewer)
    names = {"node-file-1": "notes.txt", "node-file-2": "notes.txt"}
    mounts = [(r.share.node_id, r.mount) for r in sharing.received(MARIE, lambda s: names[s.node_id])]
    assert mounts == [("node-file-1", "notes.txt"), ("node-file-1", "notes.txt"), ("node-file-2", "notes (1).txt")]
    names["node-file-2"] = "owner renamed it.txt"  # a mount keeps its name
    assert [r.mount for r in sharing.received(MARIE, lambda s: names[s.node_id])][2] == "notes (1).txt"
    sharing.set_state(MARIE, first, mount="renamed.txt")
    mounts = [r.mount for r in sharing.received(MARIE, lambda s: names[s.node_id])]
    assert mounts == ["renamed.txt", "renamed.txt", "notes (1).txt"]


def test_expired_shares_are_cleaned_up(sharing):
    viewer = sharing.role_for(FOLDER_NODE, ocs_permissions=1)
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    expiring = sharing.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, MARIE.id, viewer, expires=soon)
    lasting = sharing.create(OWNER, OWNER.id, FILE_NODE, USER_SHARE, MARIE.id, viewer)
    assert sharing.book.remove_expired() == []
    time.sleep(1.2)
    assert [s.id for s in sharing.book.remove_expired()] == [expiring.id]
    assert sharing.book.remove_expired() == []  # reported once
    assert [s.id for s in sharing.book.in_space(SPACE, live=False)] == [lasting.id]
    assert [s.id for s in sharing.book.created_by(OWNER.id)] == [lasting.id]
    with pytest.raises(NotFound):
        sharing.book.get(expiring.id)
    assert sharing.book.docs.read(f"received/users/{principal_key(MARIE.id)}").keys() == {lasting.id}


def test_principals_with_any_id_can_share_and_receive(sharing):
    odd = User(id="uid=bob,ou=people", username="bob", display_name="Bob", groups=("cn=a b,ou=groups",))
    share = sharing.create(OWNER, OWNER.id, FOLDER_NODE, USER_SHARE, odd.id, sharing.role_for(FOLDER_NODE, "", 1))
    sharing.create(OWNER, OWNER.id, FILE_NODE, GROUP_SHARE, "cn=a b,ou=groups", sharing.role_for(FILE_NODE, "", 1))
    assert {r.share.node_id for r in sharing.received(odd)} == {FOLDER_NODE.id, FILE_NODE.id}
    sharing.set_state(odd, share, state=DECLINED)
    assert sharing.received(odd)[0].state == DECLINED
