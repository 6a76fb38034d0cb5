"""Composition root: builds drivers from settings and hands them to the core and the protocols.
The only module that knows every layer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

from infiniscale import memory
from infiniscale.asgi import App
from infiniscale.consumer_claim import ConsumerClaim
from infiniscale.core import unified_roles
from infiniscale.core.accounts import Accounts
from infiniscale.core.activities import Activities, Principals
from infiniscale.core.apptokens import AppTokens
from infiniscale.core.audit import AuditLog
from infiniscale.core.clientlog import ClientLog
from infiniscale.core.files import FileService
from infiniscale.core.history import History
from infiniscale.core.idp import IdentityProvider, Lifetimes, builtin_clients
from infiniscale.core.indexer import Indexer
from infiniscale.core.loginguard import LoginGuard
from infiniscale.core.mail_notifications import MailNotifications
from infiniscale.core.model.errors import StorageError
from infiniscale.core.model.identity import User
from infiniscale.core.ports.events import EventBus
from infiniscale.core.ports.imaging import Thumbnailer
from infiniscale.core.provisioning import Provisioner, ProvisioningPolicy
from infiniscale.core.registry import SpaceRegistry
from infiniscale.core.retention import Policy, Retention
from infiniscale.core.search import SearchService
from infiniscale.core.share_service import ShareService
from infiniscale.core.sharing import LinkPolicy, ShareBook, Sharing
from infiniscale.core.signing import SigningKeys
from infiniscale.core.spaces import Limits, Spaces
from infiniscale.core.tags import Tags
from infiniscale.core.thumbnails import PreviewJanitor, Previews
from infiniscale.core.uploads import UploadService
from infiniscale.core.userlog import Userlog
from infiniscale.drivers.activities_sqlite import SqliteActivityStore
from infiniscale.drivers.audit_file import AppendOnlyFile
from infiniscale.drivers.bus_local import LocalEventBus
from infiniscale.drivers.decomposed.fsutil import lock_fd
from infiniscale.drivers.decomposed.sessions import SessionStore
from infiniscale.drivers.directory_builtin import BuiltinDirectory
from infiniscale.drivers.documents_files import FileDocumentStore
from infiniscale.drivers.http_fetch import json_fetcher
from infiniscale.drivers.identity_files import FileAppTokenStore, FileFailureLog
from infiniscale.drivers.idp_files import FileIdpStore
from infiniscale.observability import setup_logging
from infiniscale.protocols.archiver import Archiver
from infiniscale.protocols.auth import Authenticator
from infiniscale.protocols.drives import DrivesApi
from infiniscale.protocols.graph import GraphApi
from infiniscale.protocols.graph_sharing import GraphSharing
from infiniscale.protocols.oidc import OidcEndpoints
from infiniscale.protocols.shares_ocs import SharesOcs
from infiniscale.protocols.web import WebApp
from infiniscale.protocols.webdav.app import WebDavApp
from infiniscale.protocols.webdav.context import DavConfig, DavContext
from infiniscale.serving import end_live_streams_on_stop
from infiniscale.settings import (
    RESOLVED_ENV,
    Settings,
    activitylog_enabled,
    http_worker_count,
    search_enabled,
    web_enabled,
)
from infiniscale.storage_setup import (  # noqa: F401 - re-exported for the CLI and the tests
    STALE_S3_UPLOAD_AGE_S,
    abort_stale_s3_uploads,
    build_driver,
    build_registry,
    build_storage,
    project_mount_id,
)

if TYPE_CHECKING:
    from joserfc.jwk import RSAKey

    from infiniscale.core.external_issuer import ExternalIssuer
    from infiniscale.drivers.directory_ldap import LdapDirectory
    from infiniscale.drivers.search_tantivy import TantivyIndex

log = logging.getLogger("infiniscale.runtime")


def reap_interval(expiration_s: int) -> float:
    """Expired uploads go within half their lifetime, and at least every ten minutes."""
    return min(600.0, max(1.0, expiration_s / 2))


def build_directory(settings: Settings) -> BuiltinDirectory | LdapDirectory:
    if settings.identity_backend == "ldap":
        # imported here: the LDAP client library stays out of servers that do not use it
        from infiniscale.drivers.directory_ldap import LdapConfig, LdapDirectory

        return LdapDirectory(LdapConfig(
            uri=settings.ldap_uri, bind_dn=settings.ldap_bind_dn, bind_password=settings.ldap_bind_password,
            user_base_dn=settings.ldap_user_base_dn, group_base_dn=settings.ldap_group_base_dn,
            user_filter=settings.ldap_user_filter, group_filter=settings.ldap_group_filter,
            user_objectclass=settings.ldap_user_objectclass, group_objectclass=settings.ldap_group_objectclass,
            user_id=settings.ldap_user_schema_id, user_name=settings.ldap_user_schema_username,
            user_mail=settings.ldap_user_schema_mail, user_display_name=settings.ldap_user_schema_displayname,
            group_id=settings.ldap_group_schema_id, group_name=settings.ldap_group_schema_groupname,
            group_member=settings.ldap_group_schema_member, insecure=settings.ldap_insecure,
            write_enabled=settings.ldap_write_enabled, admin_user_id=settings.admin_user_id), settings.idm_dir)
    return BuiltinDirectory(settings.users_file)


def build_app_tokens(settings: Settings) -> AppTokens:
    return AppTokens(FileAppTokenStore(settings.idm_dir))


def build_uploads(settings: Settings, files: FileService | None = None) -> UploadService:
    if files is None:
        files = FileService(build_registry(settings), LocalEventBus(), max_name_length=settings.max_name_length)
    return UploadService(files, SessionStore(settings.storage_root), settings.upload_expiration)


def load_signing_key(path: str) -> RSAKey:
    """The provider's RSA key; made on first use. Two processes starting at once agree on one key:
    each writes its own file, and only the first link to the final name wins."""
    from joserfc.jwk import RSAKey
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        pem = RSAKey.generate_key(2048, private=True).as_pem(private=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path, "rb") as fh:
        return RSAKey.import_key(fh.read(), {"use": "sig", "alg": "RS256"})


def build_idp(settings: Settings, directory: BuiltinDirectory | LdapDirectory) -> IdentityProvider:
    lifetimes = Lifetimes(access=settings.idp_access_token_expiration, id=settings.idp_id_token_expiration,
                          refresh=settings.idp_refresh_token_expiration)
    def load_key() -> RSAKey:
        key = load_signing_key(settings.idp_key_file)
        key.ensure_kid()
        return key

    clients = builtin_clients(settings.url.rstrip("/"), settings.web_oidc_client_id)
    return IdentityProvider(settings.issuer, load_key, clients, FileIdpStore(settings.idp_dir), directory, lifetimes,
                            load_public=lambda: load_public_jwk(settings.idp_key_file))


def load_public_jwk(key_path: str) -> dict:
    """The signing key's public half as a JWK, kept beside the key: processes that only check tokens
    read it without loading the JOSE library. Made from the private key the first time."""
    public_path = key_path + ".public.json"

    def source() -> str:  # which private key file the public half was made from
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(key_path)
            return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
        return ""

    try:
        with open(public_path, "rb") as fh:
            stored = orjson.loads(fh.read())
        if stored.get("source") == source():
            return stored["jwk"]
    except (FileNotFoundError, ValueError, KeyError, AttributeError):
        pass
    key = load_signing_key(key_path)
    key.ensure_kid()
    public = dict(key.as_dict(private=False))
    tmp = f"{public_path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps({"source": source(), "jwk": public}))
    os.replace(tmp, public_path)
    return public


def available_role_ids(settings: Settings) -> tuple[str, ...]:
    return tuple(part.strip() for part in settings.graph_available_roles.split(",") if part.strip())


def application_id(settings: Settings) -> str:
    """Generated by init; installations from before it existed derive a stable one."""
    return settings.graph_application_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"app:{settings.storage_mount_id}"))


def build_app(settings: Settings) -> App:
    registry = build_registry(settings)
    bus = build_bus(settings)
    spaces = Spaces(registry, Limits(default_project_quota=settings.spaces_default_quota,  # type: ignore[arg-type]
                                     max_quota=settings.spaces_max_quota))
    sharing = Sharing(ShareBook(FileDocumentStore(os.path.join(settings.storage_root, "shares"))),
                      unified_roles.available(available_role_ids(settings)),
                      auto_accept=settings.auto_accept_shares,
                      links=LinkPolicy(password_required=settings.public_link_password_required,
                                       writeable_password_required=settings.public_writeable_link_password_required,
                                       min_characters=settings.password_min_characters))
    directory = build_directory(settings)
    files = FileService(registry, bus, max_name_length=settings.max_name_length, spaces=spaces, sharing=sharing)
    uploads = build_uploads(settings, files)
    share_service = ShareService(files, sharing)
    index = build_search_index(settings)
    previews = build_previews(settings)
    clientlog = ClientLog(spaces, registry, group_members=partial(group_member_ids, directory),
                          user_by_id=directory.get_by_id, directory_version=getattr(directory, "version", lambda: None))
    userlog = build_userlog(settings, registry, directory, spaces, sharing)
    mail = build_mail_notifications(settings, registry, directory)
    activities = build_activities(settings, registry, directory, files)
    consumers = consumer_jobs(settings, bus, registry, index, previews, userlog, mail, activities)
    if settings.events_endpoint and http_worker_count(settings) > 1:
        # the workers share the events through NATS: one of them consumes, the others serve (an
        # in-process bus has only this process's events, which only this process can consume)
        consumers = ConsumerClaim.for_server().guard(consumers)
    dav = DavContext(files, DavConfig(base_url=settings.url.rstrip("/"),
                                      allow_depth_infinity=settings.allow_propfind_depth_infinity,
                                      max_xml_bytes=settings.max_request_xml_bytes), uploads,
                     search=SearchService(files, index) if index is not None else None, previews=previews,
                     username_of=partial(username_of, directory))
    app_tokens = build_app_tokens(settings)
    guard = LoginGuard(FileFailureLog(settings.idm_dir), settings.login_max_failures,
                       settings.login_lockout_seconds)
    clients = builtin_clients(settings.url.rstrip("/"), settings.web_oidc_client_id)
    external = settings.issuer != settings.url.rstrip("/")
    oidc = None
    if external:  # another provider issues the tokens; the built-in one stays off
        from infiniscale.core.external_issuer import ExternalIssuer
        bearer: ExternalIssuer | IdentityProvider = ExternalIssuer(
            settings.issuer, set(clients), json_fetcher(insecure=settings.insecure))
    else:
        bearer = build_idp(settings, directory)
        oidc = OidcEndpoints(bearer, directory, guard, secure_cookies=settings.url.startswith("https://"))
    provisioner = None
    if settings.autoprovision_accounts or settings.role_assignment_driver == "oidc":
        provisioner = Provisioner(directory, ProvisioningPolicy(
            autoprovision=settings.autoprovision_accounts,
            claim_username=settings.autoprovision_claim_username, claim_email=settings.autoprovision_claim_email,
            claim_display_name=settings.autoprovision_claim_displayname,
            roles_from_claim=settings.role_assignment_driver == "oidc",
            roles_claim=settings.role_assignment_oidc_claim))
    auth = Authenticator(directory, basic=settings.enable_basic_auth,
                         app_tokens=app_tokens if settings.enable_app_auth else None, guard=guard,
                         bearer=bearer, user_claim=settings.user_oidc_claim,
                         match_by="userid" if settings.user_cs3_claim == "userid" else "username",
                         provisioner=provisioner)
    return App(WebDavApp(dav, History(files)), auth, base_url=settings.url.rstrip("/"), app_tokens=app_tokens,
               users=directory,
               shares=SharesOcs(share_service, directory, settings.url.rstrip("/")),
               signing_keys=SigningKeys(FileDocumentStore(os.path.join(settings.idm_dir, "keys"))),
               archiver=Archiver(files, settings.archiver_max_num_files, settings.archiver_max_size),
               allow_impersonation=settings.app_auth_impersonation, oidc=oidc,
               graph_api=GraphApi(Accounts(directory, application_id(settings)),
                                  DrivesApi(files, directory, settings.url.rstrip("/"),
                                            unified_roles.available(available_role_ids(settings)),
                                            GraphSharing(share_service, directory, settings.url.rstrip("/"))),
                                  Tags(files, FileDocumentStore(os.path.join(settings.storage_root, "tags"))),
                                  activities),
               issuer=settings.issuer,
               max_chunk_size=settings.upload_max_chunk_size, spaces_max_quota=settings.spaces_max_quota,
               depth_infinity=settings.allow_propfind_depth_infinity,
               search=index is not None, full_text_search=settings.full_text_search, clientlog=clientlog,
               userlog=userlog, global_notifications_secret=settings.userlog_global_secret,
               web=WebApp(settings.url.rstrip("/"), settings.issuer, settings.web_oidc_client_id)
               if web_enabled(settings) else None,
               background=(lambda: uploads.reap_periodically(reap_interval(settings.upload_expiration)),
                           lambda: keep_consuming("clientlog", partial(clientlog.run, bus)),
                           lambda: end_live_streams_on_stop(clientlog.end_all),
                           lambda: every(GRANT_PURGE_INTERVAL_S, FileIdpStore(settings.idp_dir).purge_expired),
                           lambda: every(STALE_S3_UPLOAD_CHECK_S, partial(abort_stale_s3_uploads, registry)),
                           lambda: every_async(EXPIRED_SHARES_CHECK_S, share_service.expire),
                           *retention_jobs(settings, registry),
                           *event_senders(bus),
                           *consumers))


GRANT_PURGE_INTERVAL_S = 600
INDEX_WRITER_RETRY_S = 5.0
EXPIRED_SHARES_CHECK_S = 600
STALE_S3_UPLOAD_CHECK_S = 3600


def username_of(directory: BuiltinDirectory | LdapDirectory, user_id: str) -> str:
    user = directory.get_by_id(user_id)
    return user.username if user is not None else ""


def group_member_ids(directory: BuiltinDirectory | LdapDirectory, group_id: str) -> list[str]:
    group = next((g for g in directory.groups() if g.id == group_id), None)
    if group is None:
        return []
    return [u.id for name in group.members if (u := directory.get_by_name(name)) is not None]


def build_bus(settings: Settings) -> EventBus:
    if settings.events_endpoint:
        # only processes that use NATS load its client
        from infiniscale.drivers.bus_nats import NatsEventBus
        from infiniscale.drivers.outbox import OutboxBus

        return OutboxBus(NatsEventBus(f"nats://{settings.events_endpoint}", groups=event_groups(settings)),
                         outbox_path(settings))
    return LocalEventBus()


def outbox_path(settings: Settings) -> str:
    return str(settings.data_dir / "outbox")


def event_senders(bus: EventBus) -> list[Callable[[], Awaitable[None]]]:
    """The job that sends a process's published events on, for a bus that has one: every process
    that publishes runs it (never only one of them, as with the consumers)."""
    run = getattr(bus, "run", None)
    return [lambda: keep_consuming("outbox sender", run)] if run is not None else []


def event_groups(settings: Settings) -> dict[str, frozenset[str] | None]:
    """The consumer groups `consumer_jobs` runs with these settings, in whichever process: every
    process creates them on the bus, so events published before a group's first subscriber are
    kept for it (the stream keeps only what a group has yet to get)."""
    from infiniscale.core import activities, audit, indexer, mail_notifications, userlog
    from infiniscale.core.thumbnails import PreviewJanitor

    groups: dict[str, frozenset[str] | None] = {userlog.GROUP: userlog.TYPES}
    if settings.smtp_host:
        groups[mail_notifications.GROUP] = mail_notifications.MailNotifications.TYPES
    if activitylog_enabled(settings):
        groups[activities.GROUP] = activities.TYPES
    if not settings.disable_previews:
        groups[PreviewJanitor.GROUP] = PreviewJanitor.TYPES
    if search_enabled(settings):
        groups[indexer.GROUP] = indexer.TYPES
    if settings.audit_log_to_file or settings.audit_log_to_console:
        groups[audit.GROUP] = None
    return groups


class LazyVips:
    """libvips loads on the first preview: processes that never render one stay smaller."""

    def __init__(self) -> None:
        self._real: Thumbnailer | None = None

    def render(self, *args: Any) -> bytes:
        if self._real is None:
            from infiniscale.drivers.imaging_vips import VipsThumbnailer

            self._real = VipsThumbnailer()
        return self._real.render(*args)


def build_previews(settings: Settings) -> Previews | None:
    if settings.disable_previews:
        return None
    resolutions = tuple((int(w), int(h)) for w, _, h in (r.partition("x") for r in
                                                        settings.thumbnails_resolutions.split(",")))
    return Previews(LazyVips(), settings.thumbnails_root or str(settings.data_dir / "thumbnails"),
                    max_concurrent=settings.thumbnails_max_concurrent, resolutions=resolutions)


def build_search_index(settings: Settings) -> TantivyIndex | None:
    if not search_enabled(settings):
        return None
    # stands in for the index it opens: callers use it as one
    return cast("TantivyIndex", LazySearchIndex(search_index_path(settings)))


class LazySearchIndex:
    """The tantivy index opens on first use, and its library (about 9 MiB resident) loads then: an
    HTTP worker that neither searches nor holds the index writer stays that much smaller."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._real: TantivyIndex | None = None

    def __getattr__(self, name: str) -> Any:
        if self._real is None:
            from infiniscale.drivers.search_tantivy import TantivyIndex

            self._real = TantivyIndex(self._path)
        return getattr(self._real, name)


def search_index_path(settings: Settings) -> str:
    return str(settings.data_dir / "search")


def build_indexer(settings: Settings, registry: SpaceRegistry, index: TantivyIndex) -> Indexer:
    from infiniscale.drivers import extract

    can_extract = extract.extractable if settings.full_text_search else (lambda media_type: False)
    return Indexer(registry, index, extract.extract_text, can_extract)


async def index_while_writer(index: TantivyIndex, indexer: Indexer, bus: EventBus) -> None:
    """One process at a time keeps the index (tantivy's writer lock decides which); the others
    wait, and one of them takes over when that process ends."""
    while not index.claim_writer():
        await asyncio.sleep(INDEX_WRITER_RETRY_S)
    await indexer.run(bus)


def build_userlog(settings: Settings, registry: SpaceRegistry, directory: BuiltinDirectory | LdapDirectory,
                  spaces: Spaces | None = None, sharing: Sharing | None = None) -> Userlog:
    def share_exists(share_id: str) -> bool:
        try:
            return sharing is None or bool(sharing.book.get(share_id))
        except StorageError:
            return False

    def member_of(user: User, space_id: str) -> bool:
        try:
            return spaces is None or spaces.role_of(user, spaces.get(space_id)) is not None
        except StorageError:
            return False

    return Userlog(FileDocumentStore(os.path.join(settings.storage_root, "userlog")), registry,
                   directory.get_by_id, partial(group_member_ids, directory), share_exists, member_of)


def build_activities(settings: Settings, registry: SpaceRegistry, directory: BuiltinDirectory | LdapDirectory,
                     files: FileService | None = None) -> Activities | None:
    if not activitylog_enabled(settings):
        return None

    def user_name(user_id: str) -> str:
        user = directory.get_by_id(user_id)
        return user.display_name if user else ""

    def group_name(group_id: str) -> str:
        return next((g.name for g in directory.groups() if g.id == group_id), "")

    store = SqliteActivityStore(str(settings.data_dir / "activitylog" / "activities.sqlite"))
    return Activities(store, registry, Principals(user_name, group_name), files,
                      write_buffer_s=settings.activitylog_write_buffer)


def build_mail_notifications(settings: Settings, registry: SpaceRegistry,
                             directory: BuiltinDirectory | LdapDirectory) -> MailNotifications | None:
    if not settings.smtp_host:
        return None
    from infiniscale.drivers.mail_smtp import SmtpMailer

    mailer = SmtpMailer(settings.smtp_host, settings.smtp_port, settings.smtp_sender or "noreply@localhost",
                        username=settings.smtp_username, password=settings.smtp_password,
                        authentication=settings.smtp_authentication, encryption=settings.smtp_encryption,
                        insecure=settings.smtp_insecure)
    return MailNotifications(mailer, registry, directory.get_by_id, partial(group_member_ids, directory),
                             settings.url)


def consumer_jobs(settings: Settings, bus: EventBus, registry: SpaceRegistry,
                  index: TantivyIndex | None, previews: Previews | None = None,
                  userlog: Userlog | None = None, mail: MailNotifications | None = None,
                  activities: Activities | None = None) -> tuple:
    """The event consumers this process runs (with the `workers` role)."""
    if "workers" not in settings.roles.split(","):
        return ()
    jobs = []
    if userlog is not None:
        jobs.append(lambda: keep_consuming("userlog", partial(userlog.run, bus)))
    if mail is not None:
        jobs.append(lambda: keep_consuming("notifications", partial(mail.run, bus)))
    if activities is not None:
        jobs.append(lambda: keep_consuming("activitylog", partial(activities.run, bus)))
    if previews is not None:
        janitor = PreviewJanitor(previews)
        jobs.append(lambda: keep_consuming("thumbnails", partial(janitor.run, bus)))
    if index is not None:
        indexer = build_indexer(settings, registry, index)
        jobs.append(lambda: keep_consuming("search", partial(index_while_writer, index, indexer, bus)))
    sinks: list = []
    if settings.audit_log_to_file:
        sinks.append(AppendOnlyFile(settings.audit_filepath or str(settings.data_dir / "audit.log")))
    if settings.audit_log_to_console:
        sinks.append(lambda line: print(line, flush=True))
    if sinks:
        audit = AuditLog(bus, sinks)
        jobs.append(lambda: keep_consuming("audit", audit.run))
    return tuple(jobs)


async def keep_consuming(name: str, consume) -> None:
    """Runs a consumer for as long as the process runs; a failure (the bus away) is retried."""
    while True:
        try:
            await consume()
        except Exception:
            log.exception("event consumer %s failed; retrying", name)
        await asyncio.sleep(1)


async def run_workers(settings: Settings) -> None:
    """A process with only the `workers` role: the event consumers, until SIGTERM."""
    import signal

    memory.tune_allocator()
    bus = build_bus(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    registry = build_registry(settings)
    directory = build_directory(settings)
    tasks = [asyncio.create_task(job()) for job in [*event_senders(bus), *consumer_jobs(
        settings, bus, registry, build_search_index(settings), build_previews(settings),
        build_userlog(settings, registry, directory), build_mail_notifications(settings, registry, directory),
        build_activities(settings, registry, directory))]]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def retention_policy(settings: Settings) -> Policy:
    return Policy(
        trash_max_age_s={"personal": settings.trash_personal_retention, "project": settings.trash_project_retention},
        versions_max_count={"personal": settings.versions_personal_max_count,
                            "project": settings.versions_project_max_count},
        versions_max_age_s={"personal": settings.versions_personal_max_age,
                            "project": settings.versions_project_max_age})


def retention_jobs(settings: Settings, registry: SpaceRegistry) -> tuple:
    policy = retention_policy(settings)
    if not policy.active:
        return ()
    job = partial(retention_round, Retention(registry, policy), os.path.join(settings.storage_root, "retention.lock"))
    return (lambda: every(settings.retention_interval, job),)


def retention_round(retention: Retention, lock_path: str) -> None:
    """One round of retention, unless another process is running one (then it is skipped)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if not lock_fd(fd, wait=False):
            return
        outcome = retention.run()
        if outcome.trash_items or outcome.versions:
            log.info("retention: %s", outcome.summary(False))
    finally:
        os.close(fd)  # releases the lock


async def every_async(interval_s: float, job) -> None:
    """Runs a coroutine job now and then, for as long as the server runs."""
    while True:
        try:
            await job()
        except Exception:  # housekeeping must never take the server down
            log.exception("housekeeping job failed")
        await asyncio.sleep(interval_s)


async def every(interval_s: float, job) -> None:
    """Runs a blocking housekeeping job in a thread now and then, for as long as the server runs."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            await loop.run_in_executor(None, job)
        except Exception:  # housekeeping must never take the server down
            log.exception("housekeeping job failed")
        await asyncio.sleep(interval_s)


def create_app() -> App:
    """granian's factory in each worker process: settings come resolved from the parent."""
    memory.tune_allocator()
    settings = Settings.from_json(os.environ[RESOLVED_ENV])
    setup_logging(settings.log_level, settings.log_pretty)
    return build_app(settings)
