"""The unified roles of oCIS: one table of who may do what, shared by sharing (Graph invite, OCS
shares) and space membership. Each role has oCIS's id, a set of CS3 permissions, the resource kinds
it applies to (file, folder, drive root), its OCS permission bits and, derived from the CS3
permissions, its Libre Graph actions."""

from __future__ import annotations

from dataclasses import dataclass

from infiniscale.core.model.errors import InvalidArgument

# CS3 resource permissions, and the Libre Graph action each one grants (oCIS maps them 1:1)
ACTION_OF = {
    "add_grant": "permissions/create",
    "create_container": "children/create",
    "delete": "standard/delete",
    "get_path": "path/read",
    "get_quota": "quota/read",
    "initiate_file_download": "content/read",
    "initiate_file_upload": "upload/create",
    "list_grants": "permissions/read",
    "list_container": "children/read",
    "list_file_versions": "versions/read",
    "list_recycle": "deleted/read",
    "move": "path/update",
    "remove_grant": "permissions/delete",
    "purge_recycle": "deleted/delete",
    "restore_file_version": "versions/update",
    "restore_recycle_item": "deleted/update",
    "stat": "basic/read",
    "update_grant": "permissions/update",
    "deny_grant": "permissions/deny",
}
ACTION_PREFIX = "libre.graph/driveItem/"

FILE, FOLDER, DRIVE = "file", "folder", "drive"
CONDITIONS = {FILE: "exists @Resource.File", FOLDER: "exists @Resource.Folder", DRIVE: "exists @Resource.Root"}

# OCS permission bits
OCS_READ, OCS_UPDATE, OCS_CREATE, OCS_DELETE, OCS_SHARE = 1, 2, 4, 8, 16

_VIEW = frozenset({"stat", "get_path", "get_quota", "initiate_file_download", "list_container", "list_recycle"})
_EDIT = _VIEW | {"create_container", "delete", "initiate_file_upload", "move", "restore_recycle_item"}
_SPACE_EDIT = _EDIT | {"list_grants", "list_file_versions", "restore_file_version"}
_FILE_EDIT = _VIEW | {"initiate_file_upload", "restore_recycle_item"}
_MANAGE = _SPACE_EDIT | {"add_grant", "update_grant", "remove_grant", "deny_grant", "purge_recycle"}


@dataclass(frozen=True)
class UnifiedRole:
    key: str  # oCIS's name of the role, as GRAPH_AVAILABLE_ROLES and OCS `role` use it
    id: str
    display_name: str
    description: str
    applies_to: tuple[str, ...]
    permissions: frozenset[str]
    ocs: int

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(ACTION_PREFIX + action for cs3, action in ACTION_OF.items() if cs3 in self.permissions)

    def allows(self, permission: str) -> bool:
        return permission in self.permissions


ROLES: tuple[UnifiedRole, ...] = (
    UnifiedRole("Viewer", "b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5", "Can view", "View and download.",
                (FILE, FOLDER), _VIEW, OCS_READ),
    UnifiedRole("ViewerListGrants", "d5041006-ebb3-4b4a-b6a4-7c180ecfb17d", "Can view",
                "View, download and show all invited people.", (FILE, FOLDER), _VIEW | {"list_grants"}, OCS_READ),
    UnifiedRole("SpaceViewer", "a8d5fe5e-96e3-418d-825b-534dbdf22b99", "Can view", "View and download.",
                (DRIVE,), _VIEW | {"list_grants"}, OCS_READ),
    UnifiedRole("Editor", "fb6c3e19-e378-47e5-b277-9732f9de6e21", "Can edit",
                "View, download, upload, edit, add and delete.", (FOLDER,), _EDIT,
                OCS_READ | OCS_UPDATE | OCS_CREATE | OCS_DELETE),
    UnifiedRole("EditorListGrants", "e8ea8b21-abd4-45d2-b893-8d1546378e9e", "Can edit",
                "View, download, upload, edit, add, delete and show all invited people.", (FOLDER,),
                _EDIT | {"list_grants"}, OCS_READ | OCS_UPDATE | OCS_CREATE | OCS_DELETE),
    UnifiedRole("SpaceEditor", "58c63c02-1d89-4572-916a-870abc5a1b7d", "Can edit",
                "View, download, upload, edit, add, delete including the history.", (DRIVE,), _SPACE_EDIT,
                OCS_READ | OCS_UPDATE | OCS_CREATE | OCS_DELETE),
    UnifiedRole("SpaceEditorWithoutVersions", "3284f2d5-0070-4ad8-ac40-c247f7c1fb27", "Can edit without versions",
                "View, download, upload, edit, add and delete.", (DRIVE,),
                _SPACE_EDIT - {"list_file_versions", "restore_file_version"},
                OCS_READ | OCS_UPDATE | OCS_CREATE | OCS_DELETE),
    UnifiedRole("FileEditor", "2d00ce52-1fc2-4dbc-8b95-a73b73395f5a", "Can edit", "View, download and edit.",
                (FILE,), _FILE_EDIT, OCS_READ | OCS_UPDATE),
    UnifiedRole("FileEditorListGrants", "c1235aea-d106-42db-8458-7d5610fb0a67", "Can edit",
                "View, download, edit and show all invited people.", (FILE,), _FILE_EDIT | {"list_grants"},
                OCS_READ | OCS_UPDATE),
    UnifiedRole("EditorLite", "1c996275-f1c9-4e71-abdf-a42f6495e960", "Can upload", "View, download and upload.",
                (FOLDER,), frozenset({"stat", "get_path", "create_container", "initiate_file_upload",
                                      "initiate_file_download", "list_container", "move"}), OCS_CREATE),
    UnifiedRole("Manager", "312c0871-5ef7-4b3a-85b6-0e4074c64049", "Can manage",
                "View, download, upload, edit, add, delete and manage members.", (DRIVE,), _MANAGE,
                OCS_READ | OCS_UPDATE | OCS_CREATE | OCS_DELETE | OCS_SHARE),
    UnifiedRole("SecureViewer", "aa97fe03-7980-45ac-9e50-b325749fd7e6", "Can view (secure)",
                "View only documents, images and PDFs. Watermarks will be applied.", (FILE, FOLDER, DRIVE),
                frozenset({"stat", "get_path", "list_container"}), OCS_READ),
    UnifiedRole("Denied", "63e64e19-8d43-42ec-a738-2b6af2610efa", "Cannot access", "Deny all access.",
                (FOLDER,), frozenset(), 0),
)
BY_ID = {role.id: role for role in ROLES}
BY_KEY = {role.key: role for role in ROLES}
# enabled unless GRAPH_AVAILABLE_ROLES names others
DEFAULT_AVAILABLE = ("Viewer", "SpaceViewer", "Editor", "SpaceEditor", "FileEditor", "EditorLite", "Manager")


# Public links: what each link type allows (oCIS's link types; the ids name them here only)
_LINK_READ = frozenset({"stat", "get_path", "list_container", "initiate_file_download"})
LINK_ROLES = {
    "view": UnifiedRole("link:view", "link:view", "View", "View and download.", (FILE, FOLDER), _LINK_READ,
                        OCS_READ),
    "upload": UnifiedRole("link:upload", "link:upload", "Upload", "View, download and upload.", (FOLDER,),
                          _LINK_READ | {"create_container", "initiate_file_upload"}, OCS_READ | OCS_CREATE),
    "edit": UnifiedRole("link:edit", "link:edit", "Edit", "View, download, upload, edit, add and delete.",
                        (FILE, FOLDER), _LINK_READ | {"create_container", "initiate_file_upload", "delete",
                                                      "move", "restore_recycle_item"},
                        OCS_READ | OCS_UPDATE | OCS_CREATE | OCS_DELETE),
    "createOnly": UnifiedRole("link:createOnly", "link:createOnly", "File drop", "Upload only, no listing.",
                              (FOLDER,), frozenset({"stat", "initiate_file_upload"}), OCS_CREATE),
    "internal": UnifiedRole("link:internal", "link:internal", "Internal", "Only for members who have access.",
                            (FILE, FOLDER), frozenset(), 0),
}
LINK_BY_ID = {role.id: role for role in LINK_ROLES.values()}


def by_id(role_id: str) -> UnifiedRole:
    """A unified role or a link type's role."""
    role = BY_ID.get(role_id) or LINK_BY_ID.get(role_id)
    if role is None:
        raise InvalidArgument(f"unknown role {role_id!r}")
    return role


def link_type_for(ocs_permissions: int, folder: bool) -> str:
    """The link type OCS permission bits ask for (1 view, 5 upload, 4 file drop, 15 or 3 edit)."""
    types = {1: "view", 5: "upload", 4: "createOnly", 15: "edit", 3: "edit", 0: "internal"}
    link_type = types.get(ocs_permissions)
    if link_type is None or (not folder and link_type in ("upload", "createOnly")) or (
            folder and ocs_permissions == 3):
        raise InvalidArgument("invalid permissions for a link")
    return link_type


def available(ids_or_keys: tuple[str, ...] = ()) -> tuple[UnifiedRole, ...]:
    """The enabled roles, in table order: the given ids (or names), else oCIS's default set."""
    if not ids_or_keys:
        return tuple(BY_KEY[key] for key in DEFAULT_AVAILABLE)
    chosen = set()
    for value in ids_or_keys:
        role = BY_ID.get(value) or BY_KEY.get(value)
        if role is None:
            raise InvalidArgument(f"unknown unified role {value!r}")
        chosen.add(role.id)
    return tuple(role for role in ROLES if role.id in chosen)


def for_resource(roles: tuple[UnifiedRole, ...], kind: str) -> tuple[UnifiedRole, ...]:
    """The roles that can be granted on a file, a folder or a drive root."""
    return tuple(role for role in roles if kind in role.applies_to)
