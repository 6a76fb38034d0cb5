"""Every setting declared once: name, type, default, environment variable(s), help.

Values are layered: declared default < config file (infiniscale.yaml) < environment < command-line flags.
oCIS environment variable names are accepted wherever the meaning matches, so existing deployment
recipes keep working. A wrong value stops start-up with a message naming the setting and its source.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE_NAME = "infiniscale.yaml"
# the server's parent resolves the settings once and hands them to its worker processes in this variable
RESOLVED_ENV = "INFINISCALE_RESOLVED_SETTINGS"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting and its source."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on", "t"):
        return True
    if value in ("0", "false", "no", "off", "f", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_int(raw: str) -> int:
    return int(raw.strip())


def _parse_str(raw: str) -> str:
    return raw


def _parse_addr(raw: str) -> str:
    _host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {raw!r}")
    return raw


def _parse_storage_driver(raw: str) -> str:
    """oCIS's names and the newer ones for the same drivers."""
    value = raw.strip().lower()
    aliases = {"ocis": "ocis", "decomposed": "ocis", "s3ng": "s3ng", "decomposed_s3": "s3ng"}
    if value not in aliases:
        raise ValueError(f"expected one of {', '.join(aliases)}, got {raw!r}")
    return aliases[value]


def _parse_optional_driver(raw: str) -> str:
    return _parse_storage_driver(raw) if raw.strip() else ""


def _parse_log_level(raw: str) -> str:
    value = raw.strip().lower()
    levels = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")
    if value not in levels:
        raise ValueError(f"expected one of {', '.join(levels)}, got {raw!r}")
    return value


def _parse_resolutions(raw: str) -> str:
    sizes = [part.strip() for part in raw.split(",") if part.strip()]
    for size in sizes:
        w, sep, h = size.partition("x")
        if not sep or not w.isdigit() or not h.isdigit() or int(w) < 1 or int(h) < 1:
            raise ValueError(f"{size!r} is no WIDTHxHEIGHT")
    if not sizes:
        raise ValueError("at least one resolution is needed")
    return ",".join(sizes)


def _parse_roles(raw: str) -> str:
    roles = [r.strip() for r in raw.split(",") if r.strip()]
    if not roles or any(r not in ("http", "workers") for r in roles):
        raise ValueError(f"expected http, workers or both (comma-separated), got {raw!r}")
    return ",".join(roles)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _parse_duration(raw: str) -> int:
    """Seconds, from a plain number of seconds or a Go duration like `720h` or `1h30m`."""
    value = raw.strip().lower()
    if value.isdigit():
        return int(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"expected a duration like 720h, 30m or 45s, got {raw!r}")
    return int(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def _choice(*allowed: str, empty: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower() or empty
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


PARSERS: dict[type, Callable[[str], Any]] = {bool: _parse_bool, int: _parse_int, str: _parse_str}


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    env: tuple[str, ...]
    help: str
    parse: Callable[[str], Any] | None = None
    secret: bool = False

    def parse_text(self, raw: str) -> Any:
        parser = self.parse or PARSERS[self.type]
        return parser(raw)


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


DECLARED: tuple[Setting, ...] = (
    Setting("base_data_path", str, "", ("OCIS_BASE_DATA_PATH", "INFINISCALE_BASE_DATA_PATH"),
            "Directory holding all data (storage, users); default ~/.infiniscale"),
    Setting("config_dir", str, "", ("OCIS_CONFIG_DIR", "INFINISCALE_CONFIG_DIR"),
            "Directory of infiniscale.yaml and the TLS certificate; default <base_data_path>/config"),
    Setting("url", str, "https://localhost:9200", ("OCIS_URL", "OCIS_PUBLIC_URL"),
            "Public URL of this instance, used in absolute links"),
    Setting("http_addr", str, "0.0.0.0:9200", ("PROXY_HTTP_ADDR",),
            "Address the server listens on (host:port)", parse=_parse_addr),
    Setting("tls", bool, True, ("PROXY_TLS",), "Serve HTTPS with the configured certificate"),
    Setting("tls_cert", str, "", ("PROXY_TRANSPORT_TLS_CERT",),
            "TLS certificate file; default <config_dir>/server.crt"),
    Setting("tls_key", str, "", ("PROXY_TRANSPORT_TLS_KEY",), "TLS key file; default <config_dir>/server.key"),
    Setting("insecure", bool, False, ("OCIS_INSECURE",), "Accept self-signed certificates of peers"),
    Setting("log_level", str, "info", ("OCIS_LOG_LEVEL", "PROXY_LOG_LEVEL"),
            "Log level: error, warn, info, debug", parse=_parse_log_level),
    Setting("log_pretty", bool, False, ("OCIS_LOG_PRETTY",), "Human-readable logs instead of JSON lines"),
    Setting("workers", int, 0, ("INFINISCALE_HTTP_WORKERS",),
            "HTTP worker processes; 0 means one per CPU core but one, at least one (a single worker "
            "runs in the server's own process)"),
    Setting("roles", str, "http,workers", ("INFINISCALE_ROLES",),
            "What this process runs: http (the API), workers (event consumers), or both", _parse_roles),
    Setting("events_endpoint", str, "", ("OCIS_EVENTS_ENDPOINT",),
            "host:port of an external NATS server for events; empty: an embedded one is started when "
            "something consumes events (search, the audit log)"),
    Setting("nats_port", int, 0, ("NATS_NATS_PORT",),
            "Port of the embedded NATS server on 127.0.0.1; 0 picks a free one"),
    Setting("exclude_services", str, "", ("OCIS_EXCLUDE_RUN_SERVICES",),
            "Comma-separated services not to run; of oCIS's names, `search` is understood"),
    Setting("full_text_search", bool, True, ("FRONTEND_FULL_TEXT_SEARCH_ENABLED",),
            "Index the text of documents (plain text, PDF, OpenDocument, Office) for search by content"),
    Setting("disable_previews", bool, False, ("OCIS_DISABLE_PREVIEWS", "WEBDAV_DISABLE_PREVIEWS"),
            "Answer ?preview=1 with 404 instead of an image"),
    Setting("thumbnails_max_concurrent", int, 0, ("THUMBNAILS_MAX_CONCURRENT_REQUESTS",),
            "Previews rendered at once per process; more get 429 at once. 0: one per core, and a "
            "request waits up to 10 s for a turn"),
    Setting("thumbnails_resolutions", str, "16x16,32x32,64x64,128x128,1080x1920,1920x1080,2160x3840,3840x2160,"
            "4320x7680,7680x4320", ("THUMBNAILS_RESOLUTIONS",),
            "The sizes previews are rendered at (a request snaps to one)", parse=_parse_resolutions),
    Setting("thumbnails_root", str, "", ("THUMBNAILS_FILESYSTEMSTORAGE_ROOT",),
            "Where rendered previews are kept; default <data>/thumbnails"),
    Setting("audit_log_to_file", bool, False, ("AUDIT_LOG_TO_FILE",),
            "Write every file, share, space, user and group event as a JSON line to AUDIT_FILEPATH"),
    Setting("audit_filepath", str, "", ("AUDIT_FILEPATH",), "The audit log file; default <data>/audit.log"),
    Setting("audit_log_to_console", bool, False, ("AUDIT_LOG_TO_CONSOLE",),
            "Write the audit events as JSON lines to standard output"),
    Setting("activitylog_write_buffer", int, 1, ("ACTIVITYLOG_WRITE_BUFFER_DURATION",),
            "How long the activity log gathers events before writing them (e.g. 1s, 10s; whole seconds); "
            "0 writes each batch at once", _parse_duration),
    Setting("userlog_global_secret", str, "", ("USERLOG_GLOBAL_NOTIFICATIONS_SECRET",),
            "A `secret` header with this value may set global notifications (admins always may)", secret=True),
    Setting("smtp_host", str, "", ("NOTIFICATIONS_SMTP_HOST",),
            "Mail server for e-mail notifications; empty: no e-mail is sent"),
    Setting("smtp_port", int, 25, ("NOTIFICATIONS_SMTP_PORT",), "Port of the mail server"),
    Setting("smtp_sender", str, "", ("NOTIFICATIONS_SMTP_SENDER",),
            "From address of notification e-mails, e.g. `Infinite Scale <noreply@example.org>`"),
    Setting("smtp_username", str, "", ("NOTIFICATIONS_SMTP_USERNAME",),
            "User name at the mail server; default the sender's address"),
    Setting("smtp_password", str, "", ("NOTIFICATIONS_SMTP_PASSWORD",), "Password at the mail server",
            secret=True),
    Setting("smtp_authentication", str, "auto", ("NOTIFICATIONS_SMTP_AUTHENTICATION",),
            "How to log in: auto, login, plain, crammd5 or none",
            parse=_choice("auto", "login", "plain", "crammd5", "none", empty="auto")),
    Setting("smtp_encryption", str, "none", ("NOTIFICATIONS_SMTP_ENCRYPTION",),
            "Connection security: none, starttls or ssltls",
            parse=_choice("none", "starttls", "ssltls", empty="none")),
    Setting("smtp_insecure", bool, False, ("NOTIFICATIONS_SMTP_INSECURE",),
            "Do not verify the mail server's certificate"),
    Setting("admin_password", str, "", ("IDM_ADMIN_PASSWORD",),
            "Password of the admin user (used by init)", secret=True),
    Setting("create_demo_users", bool, False, ("IDM_CREATE_DEMO_USERS",),
            "Create the demo users einstein, marie, richard, moss, katherine"),
    Setting("enable_basic_auth", bool, False, ("PROXY_ENABLE_BASIC_AUTH",),
            "Accept HTTP Basic authentication with user name and password (app tokens work regardless)"),
    Setting("enable_app_auth", bool, True, ("PROXY_ENABLE_APP_AUTH",),
            "Accept app tokens as the password of HTTP Basic authentication"),
    Setting("app_auth_impersonation", bool, False, ("AUTH_APP_ENABLE_IMPERSONATION",),
            "Let admins create app tokens for other users"),
    Setting("identity_backend", str, "builtin", ("GRAPH_IDENTITY_BACKEND",),
            "Where users and groups live: builtin (a file in the data directory) or ldap"),
    Setting("ldap_uri", str, "", ("OCIS_LDAP_URI",),
            "LDAP server, e.g. ldaps://ldap.example.org:636"),
    Setting("ldap_bind_dn", str, "", ("OCIS_LDAP_BIND_DN",),
            "DN the server binds as to look users and groups up"),
    Setting("ldap_user_base_dn", str, "", ("OCIS_LDAP_USER_BASE_DN",),
            "Where users are searched"),
    Setting("ldap_group_base_dn", str, "", ("OCIS_LDAP_GROUP_BASE_DN",),
            "Where groups are searched"),
    Setting("ldap_user_filter", str, "", ("OCIS_LDAP_USER_FILTER",),
            "Extra LDAP filter for users, e.g. (memberOf=cn=cloud,ou=groups,dc=example,dc=org)"),
    Setting("ldap_group_filter", str, "", ("OCIS_LDAP_GROUP_FILTER",),
            "Extra LDAP filter for groups"),
    Setting("ldap_user_objectclass", str, "inetOrgPerson", ("OCIS_LDAP_USER_OBJECTCLASS",),
            "Object class of users"),
    Setting("ldap_group_objectclass", str, "groupOfNames", ("OCIS_LDAP_GROUP_OBJECTCLASS",),
            "Object class of groups"),
    Setting("ldap_user_schema_id", str, "entryUUID", ("OCIS_LDAP_USER_SCHEMA_ID",),
            "Attribute with the stable user id (entryUUID works on any OpenLDAP)"),
    Setting("ldap_user_schema_username", str, "uid", ("OCIS_LDAP_USER_SCHEMA_USERNAME",),
            "Attribute with the user name"),
    Setting("ldap_user_schema_mail", str, "mail", ("OCIS_LDAP_USER_SCHEMA_MAIL",),
            "Attribute with the mail address"),
    Setting("ldap_user_schema_displayname", str, "displayName", ("OCIS_LDAP_USER_SCHEMA_DISPLAYNAME",),
            "Attribute with the display name"),
    Setting("ldap_group_schema_id", str, "entryUUID", ("OCIS_LDAP_GROUP_SCHEMA_ID",),
            "Attribute with the stable group id"),
    Setting("ldap_group_schema_groupname", str, "cn", ("OCIS_LDAP_GROUP_SCHEMA_GROUPNAME",),
            "Attribute with the group name"),
    Setting("ldap_group_schema_member", str, "member", ("OCIS_LDAP_GROUP_SCHEMA_MEMBER",),
            "Attribute with the member DNs of a group"),
    Setting("ldap_insecure", bool, False, ("OCIS_LDAP_INSECURE",),
            "Do not verify the LDAP server certificate"),
    Setting("ldap_write_enabled", bool, False, ("GRAPH_LDAP_SERVER_WRITE_ENABLED",),
            "Let Graph create and change users and groups in LDAP"),
    Setting("ldap_bind_password", str, "", ("OCIS_LDAP_BIND_PASSWORD",), "Password of the bind DN",
            secret=True),
    Setting("graph_application_id", str, "", ("GRAPH_APPLICATION_ID",),
            "Id of the application whose app roles are the user roles (generated by init)"),
    Setting("oidc_issuer", str, "", ("OCIS_OIDC_ISSUER", "PROXY_OIDC_ISSUER"),
            "OpenID Connect issuer whose tokens are accepted (default: the built-in provider at OCIS_URL)"),
    Setting("idp_signing_key", str, "", ("IDP_SIGNING_PRIVATE_KEY_FILES",),
            "RSA key that signs the built-in provider's tokens (default <data>/idp/private-key.pem)"),
    Setting("idp_access_token_expiration", int, 300, ("IDP_ACCESS_TOKEN_EXPIRATION",),
            "Lifetime of access tokens of the built-in provider, in seconds"),
    Setting("idp_id_token_expiration", int, 300, ("IDP_ID_TOKEN_EXPIRATION",),
            "Lifetime of ID tokens of the built-in provider, in seconds"),
    Setting("idp_refresh_token_expiration", int, 2_592_000, ("IDP_REFRESH_TOKEN_EXPIRATION",),
            "Lifetime of refresh tokens of the built-in provider, in seconds"),
    Setting("web_oidc_client_id", str, "web", ("WEB_OIDC_CLIENT_ID",), "Client id of the web app"),
    Setting("user_oidc_claim", str, "preferred_username", ("PROXY_USER_OIDC_CLAIM",),
            "Token claim that names the user"),
    Setting("user_cs3_claim", str, "username", ("PROXY_USER_CS3_CLAIM",),
            "User attribute the claim is matched against: username or userid"),
    Setting("autoprovision_accounts", bool, False, ("PROXY_AUTOPROVISION_ACCOUNTS",),
            "Create users on their first login with a token of the OpenID Connect provider"),
    Setting("autoprovision_claim_username", str, "preferred_username", ("PROXY_AUTOPROVISION_CLAIM_USERNAME",),
            "Claim with the user name of an autoprovisioned user"),
    Setting("autoprovision_claim_email", str, "email", ("PROXY_AUTOPROVISION_CLAIM_EMAIL",),
            "Claim with the mail address of an autoprovisioned user"),
    Setting("autoprovision_claim_displayname", str, "name", ("PROXY_AUTOPROVISION_CLAIM_DISPLAYNAME",),
            "Claim with the display name of an autoprovisioned user"),
    Setting("role_assignment_driver", str, "default", ("PROXY_ROLE_ASSIGNMENT_DRIVER",),
            "default (roles kept in the directory) or oidc (role from a token claim at every login)"),
    Setting("role_assignment_oidc_claim", str, "roles", ("PROXY_ROLE_ASSIGNMENT_OIDC_CLAIM",),
            "Claim that carries the role when the role assignment driver is oidc"),
    Setting("login_max_failures", int, 10, ("INFINISCALE_LOGIN_MAX_FAILURES",),
            "Failed logins within the lockout window after which an account is locked (0: never)"),
    Setting("login_lockout_seconds", int, 300, ("INFINISCALE_LOGIN_LOCKOUT_SECONDS",),
            "Window of the failed-login count, and how long a locked account stays locked"),
    Setting("allow_propfind_depth_infinity", bool, False, ("OCDAV_ALLOW_PROPFIND_DEPTH_INFINITY",),
            "Allow PROPFIND with Depth: infinity"),
    Setting("graph_available_roles", str, "", ("GRAPH_AVAILABLE_ROLES",),
            "Unified role ids offered for sharing, comma-separated (empty: Viewer, SpaceViewer, Editor, "
            "SpaceEditor, FileEditor, EditorLite, Manager)"),
    Setting("public_link_password_required", bool, True,
            ("OCIS_SHARING_PUBLIC_SHARE_MUST_HAVE_PASSWORD", "SHARING_PUBLIC_SHARE_MUST_HAVE_PASSWORD"),
            "Every public link needs a password (space admins may still make read-only links without)"),
    Setting("public_writeable_link_password_required", bool, False,
            ("OCIS_SHARING_PUBLIC_WRITEABLE_SHARE_MUST_HAVE_PASSWORD",
             "SHARING_PUBLIC_WRITEABLE_SHARE_MUST_HAVE_PASSWORD"),
            "Public links that allow uploads need a password even when others do not"),
    Setting("password_min_characters", int, 8, ("OCIS_PASSWORD_POLICY_MIN_CHARACTERS",),
            "Shortest password accepted for public links"),
    Setting("auto_accept_shares", bool, True, ("FRONTEND_AUTO_ACCEPT_SHARES",),
            "Received shares are accepted (mounted in Shares) without the recipient's action"),
    Setting("spaces_default_quota", int, 1_000_000_000, ("GRAPH_SPACES_DEFAULT_QUOTA",),
            "Quota in bytes of a new project space when none is given (0: unlimited)"),
    Setting("spaces_max_quota", int, 0, ("OCIS_SPACES_MAX_QUOTA",),
            "Largest quota in bytes any space may have; 0: no cap"),
    Setting("max_name_length", int, 255, ("OCDAV_NAME_VALIDATION_MAX_LENGTH",),
            "Longest accepted file or folder name, in bytes of UTF-8"),
    Setting("upload_max_chunk_size", int, 10_000_000, ("FRONTEND_UPLOAD_MAX_CHUNK_SIZE",),
            "Chunk size advertised to clients for TUS uploads"),
    Setting("disable_versioning", bool, False, ("OCIS_DISABLE_VERSIONING",),
            "Keep no versions when files are overwritten (existing versions stay listed)"),
    Setting("trash_personal_retention", int, 720 * 3600, ("STORAGE_USERS_PURGE_TRASH_BIN_PERSONAL_DELETE_BEFORE",),
            "How long deleted items stay in personal trash bins (e.g. 720h); purged automatically after. "
            "0 keeps them until purged by hand", _parse_duration),
    Setting("trash_project_retention", int, 720 * 3600, ("STORAGE_USERS_PURGE_TRASH_BIN_PROJECT_DELETE_BEFORE",),
            "How long deleted items stay in project trash bins; 0 keeps them", _parse_duration),
    Setting("versions_personal_max_count", int, 0, ("INFINISCALE_VERSIONS_PERSONAL_MAX_COUNT",),
            "Versions kept per file in personal spaces, newest first; 0 keeps all"),
    Setting("versions_project_max_count", int, 0, ("INFINISCALE_VERSIONS_PROJECT_MAX_COUNT",),
            "Versions kept per file in project spaces; 0 keeps all"),
    Setting("versions_personal_max_age", int, 0, ("INFINISCALE_VERSIONS_PERSONAL_MAX_AGE",),
            "Versions older than this (e.g. 2160h) are dropped in personal spaces; 0 keeps them", _parse_duration),
    Setting("versions_project_max_age", int, 0, ("INFINISCALE_VERSIONS_PROJECT_MAX_AGE",),
            "Versions older than this are dropped in project spaces; 0 keeps them", _parse_duration),
    Setting("retention_interval", int, 3600, ("INFINISCALE_RETENTION_INTERVAL",),
            "How often trash and version retention runs (e.g. 1h, 30s)", _parse_duration),
    Setting("archiver_max_num_files", int, 10_000, ("FRONTEND_ARCHIVER_MAX_NUM_FILES",),
            "Most files one archive download may hold"),
    Setting("archiver_max_size", int, 1 << 30, ("FRONTEND_ARCHIVER_MAX_SIZE",),
            "Most bytes one archive download may hold"),
    Setting("upload_expiration", int, 86_400, ("STORAGE_USERS_UPLOAD_EXPIRATION",),
            "Seconds an unfinished upload is kept after its last write; then it is removed"),
    Setting("storage_root", str, "", ("STORAGE_USERS_OCIS_ROOT", "STORAGE_USERS_DECOMPOSED_ROOT"),
            "Root of the users' storage; default <base_data_path>/storage/users"),
    Setting("storage_mount_id", str, "", ("STORAGE_USERS_MOUNT_ID", "GATEWAY_STORAGE_USERS_MOUNT_ID"),
            "Storage id used in resource ids (generated by init)"),
    Setting("storage_driver", str, "ocis", ("STORAGE_USERS_DRIVER",),
            "Storage driver: ocis (decomposed, content on the filesystem) or s3ng (content in S3)",
            parse=_parse_storage_driver),
    Setting("s3ng_root", str, "", ("STORAGE_USERS_S3NG_ROOT", "STORAGE_USERS_DECOMPOSEDS3_ROOT"),
            "Metadata root of the s3ng driver; default: the storage root"),
    Setting("s3_endpoint", str, "", ("STORAGE_USERS_S3NG_ENDPOINT", "STORAGE_USERS_DECOMPOSEDS3_ENDPOINT"),
            "S3 endpoint URL for the s3ng driver (empty: AWS)"),
    Setting("s3_region", str, "default", ("STORAGE_USERS_S3NG_REGION", "STORAGE_USERS_DECOMPOSEDS3_REGION"),
            "S3 region"),
    Setting("s3_access_key", str, "", ("STORAGE_USERS_S3NG_ACCESS_KEY", "STORAGE_USERS_DECOMPOSEDS3_ACCESS_KEY"),
            "S3 access key"),
    Setting("s3_secret_key", str, "", ("STORAGE_USERS_S3NG_SECRET_KEY", "STORAGE_USERS_DECOMPOSEDS3_SECRET_KEY"),
            "S3 secret key", secret=True),
    Setting("s3_bucket", str, "", ("STORAGE_USERS_S3NG_BUCKET", "STORAGE_USERS_DECOMPOSEDS3_BUCKET"),
            "S3 bucket holding the blobs (made if missing)"),
    Setting("s3_part_size", int, 16 << 20,
            ("STORAGE_USERS_S3NG_PUT_OBJECT_PART_SIZE", "STORAGE_USERS_DECOMPOSEDS3_PUT_OBJECT_PART_SIZE"),
            "Part size in bytes of multipart uploads to S3 (at least 5 MiB)"),
    Setting("s3_parallel_parts", int, 4,
            ("STORAGE_USERS_S3NG_PUT_OBJECT_NUM_THREADS", "STORAGE_USERS_DECOMPOSEDS3_PUT_OBJECT_NUM_THREADS"),
            "Parts of one upload sent to S3 at the same time"),
    Setting("project_storage_driver", str, "", ("INFINISCALE_PROJECT_STORAGE_DRIVER",),
            "A second storage provider for project spaces: ocis or s3ng (empty: project spaces live "
            "with the personal ones)", parse=_parse_optional_driver),
    Setting("project_storage_root", str, "", ("INFINISCALE_PROJECT_STORAGE_ROOT",),
            "Metadata root of the project-space provider; default <base_data_path>/storage/projects"),
    Setting("project_storage_mount_id", str, "", ("INFINISCALE_PROJECT_STORAGE_MOUNT_ID",),
            "Storage id of the project-space provider; default derived from storage_mount_id"),
    Setting("admin_user_id", str, "", ("OCIS_ADMIN_USER_ID",), "User id of the admin (generated by init)"),
    Setting("jwt_secret", str, "", ("OCIS_JWT_SECRET",), "Secret for internal tokens (generated by init)",
            secret=True),
    Setting("transfer_secret", str, "", ("OCIS_TRANSFER_SECRET",),
            "Secret for signed transfer URLs (generated by init)", secret=True),
    Setting("machine_auth_api_key", str, "", ("OCIS_MACHINE_AUTH_API_KEY",),
            "Key for service impersonation (generated by init)", secret=True),
    Setting("max_request_xml_bytes", int, 1_048_576, ("INFINISCALE_MAX_XML_BODY",),
            "Largest XML request body accepted (PROPFIND, PROPPATCH, LOCK)"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in DECLARED}


@dataclass(frozen=True)
class Settings:
    """Resolved, validated settings. `sources` tells where each value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_dir(self) -> Path:
        return Path(self.values["base_data_path"])

    @property
    def idp_dir(self) -> str:
        return str(Path(self.values["base_data_path"]) / "idp")

    @property
    def idp_key_file(self) -> str:
        return self.values["idp_signing_key"] or str(Path(self.idp_dir) / "private-key.pem")

    @property
    def issuer(self) -> str:
        return (self.values["oidc_issuer"] or self.values["url"]).rstrip("/")

    @property
    def idm_dir(self) -> str:
        return str(Path(self.values["base_data_path"]) / "idm")

    @property
    def users_file(self) -> str:
        """The built-in user directory."""
        return str(Path(self.values["base_data_path"]) / "idm" / "users.mpk")

    @property
    def config_path(self) -> Path:
        return Path(self.values["config_dir"]) / CONFIG_FILE_NAME

    @property
    def listen_host(self) -> str:
        return self.values["http_addr"].rpartition(":")[0] or "0.0.0.0"

    @property
    def listen_port(self) -> int:
        return int(self.values["http_addr"].rpartition(":")[2])

    def to_json(self) -> str:
        return json.dumps({"values": dict(self.values), "sources": dict(self.sources)})

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        return cls(values=data["values"], sources=data["sources"])


def http_worker_count(settings: Settings) -> int:
    """The setting, else a worker per core this process may run on but one, which is left to the
    event bus, the event consumers and the storage threads. On two cores a second worker made small
    uploads no faster and the server about 70 MiB larger (two processes more: it and a supervisor)."""
    return settings.workers or max(1, len(os.sched_getaffinity(0)) - 1)


def web_enabled(settings: Settings) -> bool:
    """The browser app, unless OCIS_EXCLUDE_RUN_SERVICES names `web` (as in oCIS)."""
    return "web" not in [s.strip() for s in settings.exclude_services.split(",")]


def activitylog_enabled(settings: Settings) -> bool:
    return "activitylog" not in [s.strip() for s in settings.exclude_services.split(",")]


def search_enabled(settings: Settings) -> bool:
    return "search" not in [s.strip() for s in settings.exclude_services.split(",")]


def _coerce(setting: Setting, value: Any, source: str) -> Any:
    """Turns a value from any layer into the declared type, or raises SettingsError naming its source."""
    try:
        if isinstance(value, str):
            return setting.parse_text(value)
        if setting.type is bool and isinstance(value, bool):
            return value
        if setting.type is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if setting.type is str and isinstance(value, (int, float)):
            return setting.parse_text(str(value))
        raise ValueError(f"expected {setting.type.__name__}, got {type(value).__name__}")
    except ValueError as exc:
        raise SettingsError(f"invalid value for setting {setting.name} (from {source}): {exc}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping of setting names to values")
    return data


def resolve(env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None) -> Settings:
    """Resolves every declared setting through the layers; validates; fills derived defaults."""
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def from_env_and_flags(setting: Setting) -> None:
        for var in setting.env:
            if var in env:
                values[setting.name] = _coerce(setting, env[var], f"environment variable {var}")
                sources[setting.name] = f"env {var}"
                break
        if flags.get(setting.name) is not None:
            values[setting.name] = _coerce(setting, flags[setting.name], f"flag --{setting.name}")
            sources[setting.name] = "flag"

    for setting in DECLARED:
        values[setting.name] = setting.default
        sources[setting.name] = "default"
    # The config file's location depends on two settings that cannot come from the file itself.
    for name in ("base_data_path", "config_dir"):
        from_env_and_flags(BY_NAME[name])
    if not values["base_data_path"]:
        values["base_data_path"] = str(_home(env) / ".infiniscale")
    if not values["config_dir"]:
        values["config_dir"] = str(Path(values["base_data_path"]) / "config")
    config_path = Path(values["config_dir"]) / CONFIG_FILE_NAME
    file_values = read_config_file(config_path)
    for key in file_values:
        if key not in BY_NAME:
            raise SettingsError(f"unknown setting {key!r} in config file {config_path}")
    for setting in DECLARED:
        if setting.name in ("base_data_path", "config_dir"):
            continue
        if setting.name in file_values and file_values[setting.name] is not None:
            values[setting.name] = _coerce(setting, file_values[setting.name], f"config file {config_path}")
            sources[setting.name] = f"file {config_path}"
        from_env_and_flags(setting)
    if values["storage_driver"] == "s3ng" and values["s3ng_root"]:
        values["storage_root"] = values["s3ng_root"]
    if not values["storage_root"]:
        values["storage_root"] = str(Path(values["base_data_path"]) / "storage" / "users")
    if not values["project_storage_root"]:
        values["project_storage_root"] = str(Path(values["base_data_path"]) / "storage" / "projects")
    if values["graph_available_roles"]:
        from infiniscale.core.unified_roles import BY_ID

        named = [r.strip() for r in values["graph_available_roles"].split(",") if r.strip()]
        unknown = [r for r in named if r not in BY_ID]
        if unknown:
            raise SettingsError(f"invalid value for setting graph_available_roles (from "
                                f"{sources['graph_available_roles']}): unknown role ids {', '.join(unknown)}")
    if "s3ng" in (values["storage_driver"], values["project_storage_driver"]):
        if not values["s3_bucket"]:
            raise SettingsError("setting s3_bucket (STORAGE_USERS_S3NG_BUCKET) is required by the s3ng driver")
        if values["s3_part_size"] < 5 << 20:
            raise SettingsError(f"invalid value for setting s3_part_size (from {sources['s3_part_size']}): "
                                "S3 parts are at least 5 MiB (5242880)")
        if values["s3_parallel_parts"] < 1:
            raise SettingsError(f"invalid value for setting s3_parallel_parts (from {sources['s3_parallel_parts']}): "
                                "must be at least 1")
    if not values["tls_cert"]:
        values["tls_cert"] = str(Path(values["config_dir"]) / "server.crt")
    if not values["tls_key"]:
        values["tls_key"] = str(Path(values["config_dir"]) / "server.key")
    for key in ("spaces_default_quota", "spaces_max_quota"):
        if values[key] < 0:
            raise SettingsError(f"invalid value for setting {key} (from {sources[key]}): must be >= 0")
    if values["max_name_length"] < 1 or values["max_name_length"] > 255:
        raise SettingsError(
            f"invalid value for setting max_name_length (from {sources['max_name_length']}): "
            "must be between 1 and 255"
        )
    if values["workers"] < 0:
        raise SettingsError(f"invalid value for setting workers (from {sources['workers']}): must be >= 0")
    return Settings(values=values, sources=sources)


def help_text() -> str:
    lines = ["Settings (default < config file < environment < flag):"]
    for s in DECLARED:
        default = "(generated)" if s.secret else repr(s.default)
        lines.append(f"  {s.name:<30} {' | '.join(s.env):<45} {s.type.__name__:<5} default {default}")
        lines.append(f"      {s.help}")
    return "\n".join(lines)
