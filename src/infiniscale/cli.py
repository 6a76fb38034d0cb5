"""Command line: init, server, health, version, storage check, storage-users uploads."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import secrets
import signal
import string
import sys
import uuid
from pathlib import Path

from infiniscale import __version__
from infiniscale.embedded_nats import ENDPOINT_FILE, start_embedded_nats
from infiniscale.settings import (
    CONFIG_FILE_NAME,
    Settings,
    SettingsError,
    help_text,
    resolve,
)


def _secret(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def write_certificate(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for localhost, valid for a year."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "infiniscale")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def cmd_init(args: argparse.Namespace) -> int:
    import yaml

    from infiniscale.runtime import build_directory

    settings = resolve()
    config_dir = Path(settings.config_dir)
    config_path = config_dir / CONFIG_FILE_NAME
    if config_path.exists() and not args.force_overwrite:
        print(f"config file {config_path} exists already; use --force-overwrite to replace it", file=sys.stderr)
        return 1
    password = args.admin_password or os.environ.get("IDM_ADMIN_PASSWORD") or ""
    generated = not password
    if generated:
        password = _secret(24)
    admin_id = str(uuid.uuid4())
    config = {
        "storage_mount_id": str(uuid.uuid4()),
        "admin_user_id": admin_id,
        "graph_application_id": str(uuid.uuid4()),
        "jwt_secret": _secret(),
        "transfer_secret": _secret(),
        "machine_auth_api_key": _secret(),
    }
    if args.insecure:
        config["insecure"] = True
    config_dir.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_suffix(".tmp")
    tmp.write_text("# infiniscale configuration, written by `infiniscale init`\n" +
                   yaml.safe_dump(config, sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(config_path)
    write_certificate(Path(settings.tls_cert), Path(settings.tls_key))
    settings = resolve()
    from infiniscale.runtime import load_public_jwk, load_signing_key

    load_signing_key(settings.idp_key_file)  # the OpenID Connect provider's signing key
    load_public_jwk(settings.idp_key_file)  # and its public half, for the processes that check tokens
    if settings.identity_backend != "builtin":
        # an LDAP directory has its own accounts: make one of them admin with OCIS_ADMIN_USER_ID
        print(f"config written to {config_path}; users come from {settings.ldap_uri}")
        return 0
    directory = build_directory(settings)
    # with --force-overwrite the new config names a new admin id: the admin is written anew
    directory.put_user(admin_id, "admin", password, "Admin", "admin@example.org", role="admin", replace=True)
    if settings.create_demo_users:
        directory.ensure_demo_users()
    print(f"config written to {config_path}")
    print("=========================================")
    print(" generated admin password" if generated else " admin password")
    print(f" user: admin  password: {password}")
    print("=========================================")
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from infiniscale.drivers.directory_builtin import BuiltinDirectory
    from infiniscale.observability import setup_logging
    from infiniscale.recovery import mark_clean_shutdown, recover
    from infiniscale.serving import serve

    flags = {"workers": args.workers, "roles": args.roles}
    settings = resolve(flags=flags)
    setup_logging(settings.log_level, settings.log_pretty)
    if settings.roles == "workers":
        return _serve_workers(settings)
    if not settings.config_path.exists():
        print(f"no config at {settings.config_path}: run `infiniscale init` first", file=sys.stderr)
        return 1
    if not settings.storage_mount_id:
        raise SettingsError(f"setting storage_mount_id is empty (config file {settings.config_path})")
    if settings.tls and not (Path(settings.tls_cert).exists() and Path(settings.tls_key).exists()):
        raise SettingsError(f"setting tls is on but the certificate {settings.tls_cert} or key "
                            f"{settings.tls_key} is missing (from {settings.sources['tls_cert']})")
    if settings.create_demo_users:
        BuiltinDirectory(settings.users_file).ensure_demo_users()
    # the signing key is made by init (or, for older configs, by the first worker: creation is
    # race-free); loading the application stack here would only add to this process's memory
    instance = recover(settings)
    nats = None
    if not settings.events_endpoint:
        # always: some consumer group always takes the events (at least the notifications of
        # shares received), and only the bus keeps them for it across a crash of the server
        nats, settings = start_embedded_nats(settings)
    scheme = "https" if settings.tls else "http"
    print(f"infiniscale {__version__} serving {scheme}://{settings.http_addr} (public URL {settings.url})",
          file=sys.stderr, flush=True)
    try:
        serve(settings)
    finally:
        mark_clean_shutdown(settings, instance)
        if nats is not None:
            nats.terminate()
            nats.wait(timeout=30)
    return 0


def _serve_workers(settings: Settings) -> int:
    """`--roles workers`: event consumers only, fed by the NATS server of OCIS_EVENTS_ENDPOINT."""
    import asyncio

    from infiniscale.runtime import run_workers

    if not settings.events_endpoint:
        raise SettingsError("setting roles is workers only, which needs events_endpoint "
                            "(OCIS_EVENTS_ENDPOINT): the NATS server the HTTP processes publish to")
    print(f"infiniscale {__version__} consuming events from {settings.events_endpoint}", file=sys.stderr, flush=True)
    asyncio.run(run_workers(settings))
    return 0


def cmd_search_index(args: argparse.Namespace) -> int:
    """Rebuilds the search index of one space or all: here, when no server keeps the index, else
    by asking the running server's indexer."""
    from infiniscale.runtime import build_indexer, build_registry, build_search_index

    settings = resolve()
    index = build_search_index(settings)
    if index is None:
        print("search is not running (OCIS_EXCLUDE_RUN_SERVICES names it)", file=sys.stderr)
        return 1
    registry = build_registry(settings)
    space_ids = [args.space] if args.space else registry.list_space_ids()
    if args.space and not registry.space_exists(args.space):
        print(f"no such space: {args.space}", file=sys.stderr)
        return 1
    if not index.claim_writer():  # the running server keeps the index
        return _request_reindex(settings, space_ids)
    indexer = build_indexer(settings, registry, index)
    show = _progress_bar("indexing")
    items = 0
    for done, space_id in enumerate(space_ids, 1):
        items += asyncio.run(indexer.reindex_space(space_id))
        index.commit()
        show(done, len(space_ids))
    index.close_writer()
    print(f"indexed {items} items in {len(space_ids)} spaces")
    return 0


def _request_reindex(settings: Settings, space_ids: list[str]) -> int:
    from infiniscale.core.model.events import SearchIndexRequested
    from infiniscale.drivers.bus_nats import NatsEventBus

    endpoint = settings.events_endpoint
    if not endpoint:
        try:
            endpoint = (settings.data_dir / "nats" / ENDPOINT_FILE).read_text().strip()
        except OSError:
            print("the index is in use, but no NATS server is known to reach its keeper", file=sys.stderr)
            return 1

    async def send() -> None:
        bus = NatsEventBus(f"nats://{endpoint}")
        try:
            for space_id in space_ids:
                await bus.publish(SearchIndexRequested(executant="cli", space_id=space_id))
        finally:
            await bus.close()

    asyncio.run(asyncio.wait_for(send(), timeout=30))
    print(f"the running server re-indexes {len(space_ids)} spaces")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    import ssl
    import urllib.request

    settings = resolve()
    host = settings.listen_host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    scheme = "https" if settings.tls else "http"
    url = args.url or f"{scheme}://{host}:{settings.listen_port}/healthz"
    context = ssl._create_unverified_context() if scheme == "https" else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            ok = response.status == 200
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    print("healthy" if ok else "unhealthy")
    return 0 if ok else 1


def cmd_storage_check(args: argparse.Namespace) -> int:
    from infiniscale.drivers.decomposed.check import check
    from infiniscale.storage_setup import STALE_S3_UPLOAD_AGE_S, abort_stale_s3_uploads, build_registry

    registry = build_registry(resolve())
    clean = True
    for provider in registry.providers:
        storage = provider.driver
        if args.repair:
            purged = storage.finish_purges()  # type: ignore[attr-defined]
            if purged:
                print(f"finished {purged} interrupted space purges")
        if len(registry.providers) > 1:
            print(f"storage provider {provider.storage_id}:")
        report = check(storage, repair=args.repair)  # type: ignore[arg-type]
        print(report.summary())
        clean = clean and report.clean
    if args.repair:
        # after a crash nothing is in flight any more: every unfinished multipart upload is dead
        aborted = abort_stale_s3_uploads(registry, 0 if args.after_crash else STALE_S3_UPLOAD_AGE_S)
        if aborted:
            print(f"aborted {aborted} unfinished S3 multipart uploads")
    return 0 if clean else 1


def cmd_storage_scrub(args: argparse.Namespace) -> int:
    from infiniscale.drivers.decomposed.scrub import Scrubber, idle_io_priority
    from infiniscale.storage_setup import build_registry

    settings = resolve()
    registry = build_registry(settings)
    idle_io_priority()
    clean = True
    for provider in registry.providers:
        state = os.path.join(settings.storage_root, f"scrub-{provider.storage_id}.json")
        if args.restart:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(state)
        if len(registry.providers) > 1:
            print(f"storage provider {provider.storage_id}:")
        report = Scrubber(provider.driver, remove_orphans=args.remove_orphans, state_path=state,  # type: ignore[arg-type]
                          progress=_progress_bar("scrubbing")).run()
        print(report.summary())
        clean = clean and report.clean
    return 0 if clean else 1


def _upload_service():
    from infiniscale.runtime import build_uploads

    return build_uploads(resolve())


def cmd_uploads_list(args: argparse.Namespace) -> int:
    sessions = sorted(_upload_service().sessions(), key=lambda s: s.created_ns)
    if args.expired:
        sessions = [s for s in sessions if s.expired]
    if args.json:
        print(json.dumps([{"id": s.id, "kind": s.kind, "user_id": s.user_id, "space_id": s.space_id,
                           "name": s.name, "offset": s.offset, "length": s.length,
                           "created": s.created_ns // 1_000_000_000, "expires": s.expires_ns // 1_000_000_000,
                           "expired": s.expired} for s in sessions], indent=2))
        return 0

    def when(ns: int) -> str:
        return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")

    print(f"{'id':36}  {'kind':4}  {'received':>21}  {'expires (UTC)':19}  name")
    for s in sessions:
        received = f"{s.offset}/{s.length if s.length is not None else '?'}"
        mark = " (expired)" if s.expired else ""
        print(f"{s.id:36}  {s.kind:4}  {received:>21}  {when(s.expires_ns):19}  {s.name}{mark}")
    print(f"{len(sessions)} upload(s)")
    return 0


def cmd_uploads_clean(args: argparse.Namespace) -> int:
    removed = _upload_service().clean(everything=args.all)
    print(f"removed {removed} upload(s)")
    return 0


def cmd_auth_app_create(args: argparse.Namespace) -> int:
    from infiniscale.core.apptokens import parse_duration
    from infiniscale.core.model.errors import InvalidArgument
    from infiniscale.runtime import build_app_tokens, build_directory

    settings = resolve()
    directory = build_directory(settings)
    user = directory.get_by_name(args.user) or directory.get_by_id(args.user)
    if user is None:
        print(f"no such user: {args.user}", file=sys.stderr)
        return 1
    try:
        lifetime = parse_duration(args.expiration)
    except InvalidArgument as exc:
        print(str(exc), file=sys.stderr)
        return 2
    token, record = build_app_tokens(settings).create(user.id, lifetime, args.label or "Generated via CLI")
    print(f"App token created for {user.username}")
    print(f" token: {token}")
    print(f" expires: {datetime.datetime.fromtimestamp(record.expires, datetime.UTC).isoformat(timespec='seconds')}")
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    """Space administration from the command line, acting as the admin user."""
    import json

    from infiniscale.core.model.errors import StorageError
    from infiniscale.core.model.identity import User
    from infiniscale.core.spaces import Limits, Spaces
    from infiniscale.runtime import build_directory, build_registry

    settings = resolve()
    registry = build_registry(settings)
    spaces = Spaces(registry, Limits(settings.spaces_default_quota, settings.spaces_max_quota))  # type: ignore[arg-type]
    admin = User(id=settings.admin_user_id, username="admin", display_name="Admin", role="admin")
    try:
        if args.spaces_command == "list":
            rows = []
            for space in spaces.all():
                if args.type and space.type != args.type:
                    continue
                root = registry.stat(space.id, space.id)
                rows.append({"id": f"{registry.storage_id_of(space.id)}${space.id}", "type": space.type,
                             "name": space.name, "quota": spaces.quota_of(space), "used": root.size,
                             "disabled": space.disabled, "members": len(space.members)})
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                for row in rows:
                    state = "disabled" if row["disabled"] else "enabled"
                    quota = row["quota"] or "unlimited"
                    print(f"{row['id']}  {row['type']:<8} {state:<8} used {row['used']} of {quota}  "
                          f"{row['members']} members  {row['name']}")
            return 0
        if args.spaces_command == "create":
            actor = admin
            if args.manager:
                found = build_directory(settings).get_by_name(args.manager)
                if found is None:
                    print(f"no such user: {args.manager}", file=sys.stderr)
                    return 1
                actor = User(id=found.id, username=found.username, display_name=found.display_name, role="admin")
            space = spaces.create_project(actor, args.name, args.description, args.quota)
            print(f"{registry.storage_id_of(space.id)}${space.id}")
            return 0
        space_id = args.id.partition("$")[2] or args.id
        action = {"disable": spaces.disable, "restore": spaces.restore, "purge": spaces.purge}[args.spaces_command]
        space = action(admin, space_id)
        done = {"disable": "disabled", "restore": "restored", "purge": "purged"}[args.spaces_command]
        print(f"{done} space {space.name!r} ({space_id})")
        return 0
    except StorageError as exc:
        print(f"infiniscale spaces {args.spaces_command}: {exc}", file=sys.stderr)
        return 1


def cmd_idm_resetpassword(args: argparse.Namespace) -> int:
    """Sets a user's password in the built-in directory (default: the admin's)."""
    import getpass

    from infiniscale.runtime import build_directory

    password = args.password
    if password is None:
        if sys.stdin.isatty():
            password = getpass.getpass("New password: ")
            if getpass.getpass("Repeat: ") != password:
                print("the passwords differ", file=sys.stderr)
                return 1
        else:
            password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("the password must have at least 8 characters", file=sys.stderr)
        return 1
    if not build_directory(resolve()).set_password(args.user, password):
        print(f"no such user: {args.user}", file=sys.stderr)
        return 1
    print(f"password of {args.user} changed (a running server accepts the old one for up to a minute)")
    return 0


def _progress_bar(label: str):
    """A one-line progress bar on stderr, redrawn in place (plain lines when not a terminal)."""
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        line = f"{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} spaces"
        print(("\r" + line) if tty else line, end="" if tty and done < total else "\n", file=sys.stderr,
              flush=True)

    return show


def cmd_retention(args: argparse.Namespace) -> int:
    """`trash purge-expired` and `revisions purge`: the background retention, on demand."""
    from dataclasses import replace

    from infiniscale.core.retention import Retention
    from infiniscale.runtime import build_registry, retention_policy

    settings = resolve()
    policy = retention_policy(settings)
    trash = args.what == "trash"
    if args.older_than == 0:
        args.older_than = -1  # "older than 0 s" is everything (a policy's 0 would mean no limit)
    if trash and args.older_than is not None:
        policy = replace(policy, trash_max_age_s={k: args.older_than for k in ("personal", "project")})
    if not trash:
        if args.keep is not None:
            policy = replace(policy, versions_max_count={k: args.keep for k in ("personal", "project")})
        if args.older_than is not None:
            policy = replace(policy, versions_max_age_s={k: args.older_than for k in ("personal", "project")})
    retention = Retention(build_registry(settings), policy)
    outcome = retention.run(trash=trash, versions=not trash, dry_run=args.dry_run,
                            progress=_progress_bar("dry run" if args.dry_run else "purging"))
    print(outcome.summary(args.dry_run))
    return 0


def _duration_arg(text: str) -> int:
    from infiniscale.settings import _parse_duration

    try:
        return _parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infiniscale", description="ownCloud Infinite Scale compatible server",
                                     epilog=help_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_init = sub.add_parser("init", help="write the config file with generated secrets and a TLS certificate")
    p_init.add_argument("--admin-password", help="password of the admin user (else IDM_ADMIN_PASSWORD or generated)")
    p_init.add_argument("--force-overwrite", action="store_true", help="replace an existing config")
    p_init.add_argument("--insecure", action="store_true", help="accept self-signed certificates of peers")
    p_init.set_defaults(func=cmd_init)
    p_server = sub.add_parser("server", help="serve everything on one port", epilog=help_text(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p_server.add_argument("--workers", type=int,
                          help="HTTP worker processes (default: one per core but one, at least one)")
    p_server.add_argument("--roles", help="http, workers (event consumers) or both (default)")
    p_server.set_defaults(func=cmd_server)
    p_health = sub.add_parser("health", help="ask a running server whether it is healthy")
    p_health.add_argument("--url", help="health URL (default from the settings)")
    p_health.set_defaults(func=cmd_health)
    p_version = sub.add_parser("version", help="print the version")
    p_version.set_defaults(func=lambda _args: print(f"infiniscale {__version__}") or 0)
    p_storage = sub.add_parser("storage", help="storage maintenance")
    storage_sub = p_storage.add_subparsers(dest="storage_command", required=True)
    p_check = storage_sub.add_parser("check", help="verify the whole storage tree (server stopped for --repair)")
    p_check.add_argument("--repair", action="store_true", help="fix what can be fixed, reclaim garbage")
    p_check.add_argument("--after-crash", action="store_true",
                         help="with --repair: no server runs, so every unfinished S3 upload is abandoned")
    p_check.set_defaults(func=cmd_storage_check)
    p_scrub = storage_sub.add_parser("scrub", help="re-read every blob and compare it with its stored checksum "
                                                   "(resumes an interrupted run)")
    p_scrub.add_argument("--remove-orphans", action="store_true", help="delete blobs nothing refers to")
    p_scrub.add_argument("--restart", action="store_true", help="start from the beginning, not where a run stopped")
    p_scrub.set_defaults(func=cmd_storage_scrub)
    p_search = sub.add_parser("search", help="the search index")
    search_sub = p_search.add_subparsers(dest="search_command", required=True)
    p_index = search_sub.add_parser("index", help="read spaces again into the search index")
    which = p_index.add_mutually_exclusive_group(required=True)
    which.add_argument("--space", help="the id of the space to index")
    which.add_argument("--all-spaces", action="store_true", help="index every space")
    p_index.set_defaults(func=cmd_search_index)
    p_auth_app = sub.add_parser("auth-app", help="app tokens: passwords for WebDAV mounts, scripts and sync apps")
    auth_app_sub = p_auth_app.add_subparsers(dest="auth_app_command", required=True)
    p_create = auth_app_sub.add_parser("create", help="create an app token for a user")
    p_create.add_argument("--user", "--user-name", dest="user", required=True, help="user name or id")
    p_create.add_argument("--expiration", default="72h", help="lifetime, e.g. 30m or 72h (default 72h)")
    p_create.add_argument("--label", default="", help="what the token is for")
    p_create.set_defaults(func=cmd_auth_app_create)
    p_idm = sub.add_parser("idm", help="the built-in user directory")
    idm_sub = p_idm.add_subparsers(dest="idm_command", required=True)
    p_reset = idm_sub.add_parser("resetpassword", help="set a user's password (default: admin)")
    p_reset.add_argument("--user-name", "--user", dest="user", default="admin", help="user name (default admin)")
    p_reset.add_argument("--password", help="new password (else asked for, or read from stdin)")
    p_reset.set_defaults(func=cmd_idm_resetpassword)
    p_spaces = sub.add_parser("spaces", help="administer spaces (acts as the admin user)")
    spaces_sub = p_spaces.add_subparsers(dest="spaces_command", required=True)
    p_slist = spaces_sub.add_parser("list", help="every space with its quota, use and state")
    p_slist.add_argument("--type", choices=("personal", "project"), help="only spaces of this type")
    p_slist.add_argument("--json", action="store_true", help="machine-readable output")
    p_slist.set_defaults(func=cmd_spaces)
    p_screate = spaces_sub.add_parser("create", help="create a project space; prints its id")
    p_screate.add_argument("name")
    p_screate.add_argument("--description", default="")
    p_screate.add_argument("--quota", type=int, default=None, help="bytes (default: the default project quota)")
    p_screate.add_argument("--manager", help="user name of its first manager (default: the admin)")
    p_screate.set_defaults(func=cmd_spaces)
    for verb, what in (("disable", "disable a project space (its members lose access; it can be restored)"),
                       ("restore", "enable a disabled space again"),
                       ("purge", "delete a disabled space and all its content for good")):
        p_verb = spaces_sub.add_parser(verb, help=what)
        p_verb.add_argument("id", help="space id (or drive id <storage>$<space>)")
        p_verb.set_defaults(func=cmd_spaces)
    p_users = sub.add_parser("storage-users", help="the users' storage: unfinished uploads")
    users_sub = p_users.add_subparsers(dest="storage_users_command", required=True)
    p_uploads = users_sub.add_parser("uploads", help="resumable and chunked uploads not finished yet")
    uploads_sub = p_uploads.add_subparsers(dest="uploads_command", required=True)
    p_list = uploads_sub.add_parser("list", help="show unfinished uploads")
    p_list.add_argument("--expired", action="store_true", help="only the expired ones")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(func=cmd_uploads_list)
    p_clean = uploads_sub.add_parser("clean", help="remove expired uploads (the server also does this by itself)")
    p_clean.add_argument("--all", action="store_true", help="remove every unfinished upload, expired or not")
    p_clean.set_defaults(func=cmd_uploads_clean)
    p_trash = sub.add_parser("trash", help="trash bins of every space")
    trash_sub = p_trash.add_subparsers(dest="trash_command", required=True)
    p_expired = trash_sub.add_parser(
        "purge-expired", help="purge deleted items older than STORAGE_USERS_PURGE_TRASH_BIN_{PERSONAL,PROJECT}_"
                              "DELETE_BEFORE (the server also does this by itself)")
    p_expired.add_argument("--older-than", type=_duration_arg, help="override the age for every space type (720h)")
    p_expired.add_argument("--dry-run", action="store_true", help="report what would go, change nothing")
    p_expired.set_defaults(func=cmd_retention, what="trash", keep=None)
    p_revisions = sub.add_parser("revisions", help="file versions of every space")
    revisions_sub = p_revisions.add_subparsers(dest="revisions_command", required=True)
    p_rpurge = revisions_sub.add_parser(
        "purge", help="drop versions beyond INFINISCALE_VERSIONS_*_MAX_COUNT or older than *_MAX_AGE")
    p_rpurge.add_argument("--keep", type=int, help="keep this many versions per file (0: none)")
    p_rpurge.add_argument("--older-than", type=_duration_arg, help="drop versions replaced longer ago (e.g. 2160h)")
    p_rpurge.add_argument("--dry-run", action="store_true", help="report what would go, change nothing")
    p_rpurge.set_defaults(func=cmd_retention, what="revisions")
    return parser


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"infiniscale: {exc}", file=sys.stderr)
        return 2
