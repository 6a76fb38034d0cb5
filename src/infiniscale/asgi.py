"""The root ASGI app: request id and logging outermost, then authentication, then the protocol
mounted at the path oCIS serves it on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from infiniscale.core.accounts import AccountError
from infiniscale.core.apptokens import AppTokens
from infiniscale.core.clientlog import ClientLog
from infiniscale.core.model.events import initiator
from infiniscale.core.model.identity import User
from infiniscale.core.model.ids import unique_suffix
from infiniscale.core.signing import SigningKeys
from infiniscale.core.userlog import Userlog
from infiniscale.observability import request_id
from infiniscale.protocols import (
    authapp,
    graph,
    notifications,
    ocs,
    public_links,
    shares_ocs,
    signed_urls,
    sse,
    webfinger,
)
from infiniscale.protocols.archiver import PATH as ARCHIVER_PATH
from infiniscale.protocols.archiver import Archiver
from infiniscale.protocols.auth import Authenticator
from infiniscale.protocols.http import Request, respond
from infiniscale.protocols.oidc import OidcEndpoints
from infiniscale.protocols.oidc import handles as oidc_paths
from infiniscale.protocols.status import capabilities, search_capability, status_document
from infiniscale.protocols.web import WebApp
from infiniscale.protocols.webdav import xml
from infiniscale.protocols.webdav.app import WebDavApp

log = logging.getLogger("infiniscale.http")
access_log = logging.getLogger("infiniscale.access")

SHUTDOWN_WAIT_S = 4.0  # for the background jobs at a stop; the outbox sender takes up to 3 s
JSON = [("content-type", "application/json; charset=utf-8")]
# OCS paths that answer without credentials (oCIS: the proxy lets them through)
ANONYMOUS_OCS = ("/ocs/v1.php/cloud/capabilities", "/ocs/v2.php/cloud/capabilities", "/ocs/v1.php/config",
                 "/ocs/v2.php/config")


class App:
    def __init__(self, webdav: WebDavApp, authenticator: Authenticator, *, base_url: str,
                 app_tokens: AppTokens | None = None, users: authapp.UserLookup | None = None,
                 allow_impersonation: bool = False, oidc: OidcEndpoints | None = None,
                 graph_api: graph.GraphApi | None = None, issuer: str = "",
                 shares: shares_ocs.SharesOcs | None = None, signing_keys: SigningKeys | None = None,
                 max_chunk_size: int, depth_infinity: bool, ready: Any = None, spaces_max_quota: int = 0,
                 background: tuple[Callable[[], Awaitable[None]], ...] = (),
                 archiver: Archiver | None = None, search: bool = False, full_text_search: bool = False,
                 clientlog: ClientLog | None = None, userlog: Userlog | None = None,
                 global_notifications_secret: str = "", web: WebApp | None = None) -> None:
        self.webdav = webdav
        self.web = web
        self.archiver = archiver
        self.app_tokens = app_tokens
        self.users = users
        self.allow_impersonation = allow_impersonation
        self.oidc = oidc
        self.graph = graph_api
        self.shares = shares
        self.signing_keys = signing_keys
        self.issuer = issuer  # the OpenID Connect provider clients are sent to (built-in or external)
        self.background = background
        self._tasks: list[asyncio.Task] = []
        self.auth = authenticator
        self.base_url = base_url
        policy = shares.sharing.link_policy if shares is not None else None
        self.capabilities = capabilities(
            max_chunk_size, max_quota=spaces_max_quota, sharing=shares is not None,
            auto_accept_shares=shares is None or shares.sharing.auto_accept,
            link_passwords=(policy.password_required, policy.writeable_password_required) if policy else (True, False),
            password_min=policy.min_characters if policy else 8)
        self.capabilities["capabilities"]["dav"]["propfind"]["depth_infinity"] = depth_infinity
        self.capabilities["capabilities"]["core"]["support-url-signing"] = signing_keys is not None
        if archiver is not None:
            self.capabilities["capabilities"]["files"]["archivers"] = [archiver.capability()]
        self.clientlog = clientlog
        self.userlog = userlog
        self.global_notifications_secret = global_notifications_secret
        if userlog is not None:
            self.capabilities["capabilities"]["notifications"] = {"ocs-endpoints": ["list", "get", "delete"],
                                                                  "configurable": False}
        self.capabilities["capabilities"]["core"]["support-sse"] = clientlog is not None
        if search:
            self.capabilities["capabilities"]["dav"]["reports"] = ["search-files"]
            self.capabilities["capabilities"]["files"]["full_text_search"] = full_text_search
            self.capabilities["capabilities"]["search"] = search_capability(full_text_search)
        self.status_body = orjson.dumps(status_document())
        self.ready = ready

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        rid = ""
        client_session = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                rid = value.decode("latin-1")[:128]
            elif key == b"initiator-id":
                client_session = value.decode("latin-1")[:128]
        rid = rid or unique_suffix()  # uuid4 cost a system call and 3 % of a small upload
        token = request_id.set(rid)
        initiator.set(client_session)  # events of this request carry it (this task's context only)
        status_holder = [0]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        started = time.perf_counter()
        req = Request(scope, receive, send_with_id)
        try:
            await self.route(req)
        except Exception:
            log.exception("unhandled error")
            if not status_holder[0]:
                await respond(send_with_id, 500, [("content-type", "application/xml; charset=utf-8")],
                              xml.sabre_error("Sabre\\DAV\\Exception", "internal server error"))
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("request", extra={
                    "method": req.method, "path": scope.get("path", ""), "status": status_holder[0],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user": req.user.username if req.user else ""})
            request_id.reset(token)

    @staticmethod
    async def _in_thread(fn: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._tasks = [asyncio.ensure_future(job()) for job in self.background]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                if self._tasks:  # room for a job to finish on its way out (the events still to send)
                    await asyncio.wait(self._tasks, timeout=SHUTDOWN_WAIT_S)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def route(self, req: Request) -> None:
        path: str = req.scope["path"]
        if path in ("/healthz", "/readyz"):
            await respond(req.send, 200, [("content-type", "text/plain")], b"OK")
            return
        if path in ("/status.php", "/status"):
            await respond(req.send, 200, JSON, self.status_body, head_only=req.method == "HEAD")
            return
        if path.startswith(("/ocs/v1.php/", "/ocs/v2.php/")):
            await self.ocs(req, path)
            return
        if path.startswith("/data/"):
            await self.webdav.data(req)
            return
        if path == webfinger.PATH and self.issuer:
            authorization = req.header("authorization") or ""
            user = await self.auth.authenticate(authorization) if authorization.lower().startswith("bearer ") \
                else None  # as in oCIS: only a bearer token reveals the instance
            await webfinger.webfinger(req, self.issuer, self.base_url, user)
            return
        if self.oidc is not None and oidc_paths(path):
            await self.oidc(req)
            return
        if path.startswith(graph.PREFIX) and self.graph is not None:
            req.user = await self.auth.authenticate(req.header("authorization"))
            if req.user is None:
                await req.drain()
                await respond(req.send, 401, [("content-type", "application/json"),
                                              ("www-authenticate", self.auth.challenge())],
                              graph.error("unauthenticated", "Unauthorized"))
                return
            await self.graph(req, req.user)
            return
        if path.rstrip("/") == "/auth-app/tokens" and self.app_tokens is not None and self.users is not None:
            req.user = await self.auth.authenticate(req.header("authorization"))
            if req.user is None:
                await req.drain()
                await respond(req.send, 401, [("content-type", "text/plain"),
                                              ("www-authenticate", self.auth.challenge())], b"unauthorized")
                return
            await authapp.tokens(req, req.user, self.app_tokens, self.users, self.allow_impersonation)
            return
        if path.rstrip("/") == ARCHIVER_PATH and self.archiver is not None:
            await self._archive(req)
            return
        if public_links.handles(path) and self.shares is not None:
            req.user = await public_links.authenticate(req, self.webdav.dav.files, self.auth.guard,
                                                       self.signing_keys, self.base_url)
            if req.user is not None:
                await self.webdav(req)
            return
        if WebDavApp.handles(req.raw_path):
            req.user = await self.auth.authenticate(req.header("authorization"))
            if req.user is None and self.signing_keys is not None and signed_urls.is_signed(req):
                req.user = await signed_urls.authenticate(req, self.signing_keys, self.users, self.base_url,
                                                          self._in_thread)
            if req.user is None:
                await req.drain()
                await respond(req.send, 401, [("content-type", "application/xml; charset=utf-8"),
                                              ("www-authenticate", self.auth.challenge())],
                              xml.sabre_error("Sabre\\DAV\\Exception\\NotAuthenticated",
                                              "No 'Authorization: Basic' header found."),
                              head_only=req.method == "HEAD")
                return
            await self.webdav(req)
            return
        if self.web is not None and self.web.handles(path):
            await self.web(req)
            return
        await respond(req.send, 404, [("content-type", "text/plain")], b"not found")

    async def _archive(self, req: Request) -> None:
        """Archives for users, and for visitors of a link (`public-token`, its password if any)."""
        public_token = parse_qs(req.query_string).get("public-token", [""])[0]
        if public_token and self.shares is not None:
            user = await public_links.link_for_signing(req, self.webdav.dav.files, public_token)
        else:
            user = await self.auth.authenticate(req.header("authorization"))
            if user is None and self.signing_keys is not None and signed_urls.is_signed(req):
                user = await signed_urls.authenticate(req, self.signing_keys, self.users, self.base_url,
                                                      self._in_thread)
        if user is None:
            await respond(req.send, 401, [("content-type", "text/plain"), ("www-authenticate", self.auth.challenge())],
                          b"unauthorized")
            return
        assert self.archiver is not None
        await self.archiver(req, user)

    async def ocs(self, req: Request, path: str) -> None:
        endpoint = path.split(".php/", 1)[1].rstrip("/")
        if path.rstrip("/") in ANONYMOUS_OCS:
            if endpoint == "cloud/capabilities":
                await ocs.reply(req, self.capabilities)
            else:
                await ocs.reply(req, ocs.config_document(self.base_url))
            return
        if endpoint.startswith(public_links.TOKENINFO) and self.shares is not None:  # before any login
            await public_links.tokeninfo(req, endpoint, self.webdav.dav.files, self.base_url)
            return
        public_token = parse_qs(req.query_string).get("public-token", [""])[0]
        if endpoint == "cloud/user/signing-key" and public_token and self.signing_keys is not None:
            link_user = await public_links.link_for_signing(req, self.webdav.dav.files, public_token)
            if link_user is None:
                await ocs.reply(req, None, 401, "no valid password for this link")
                return
            key = await self._in_thread(self.signing_keys.key_of, link_user.id)
            await ocs.reply(req, {"user": link_user.username, "signing-key": key})
            return
        req.user = await self.auth.authenticate(req.header("authorization"))
        if req.user is None:
            await respond(req.send, 401, [("content-type", "application/json; charset=utf-8"),
                                          ("www-authenticate", self.auth.challenge())],
                          orjson.dumps({"ocs": {"meta": {"status": "failure", "statuscode": 997,
                                                         "message": "Unauthorised"}, "data": None}}))
            return
        if endpoint == "cloud/user":
            await ocs.reply(req, ocs.user_document(req.user))
            return
        if endpoint == sse.PATH and self.clientlog is not None:
            await sse.stream(req, req.user, self.clientlog)
            return
        if endpoint == notifications.PATH and self.userlog is not None:
            await notifications.handle(req, req.user, self.userlog)
            return
        if endpoint == notifications.GLOBAL_PATH and self.userlog is not None:
            await notifications.handle_global(req, req.user, self.userlog, self.global_notifications_secret)
            return
        if endpoint == "cloud/user/signing-key" and self.signing_keys is not None:
            key = await asyncio.get_running_loop().run_in_executor(None, self.signing_keys.key_of, req.user.id)
            await ocs.reply(req, {"user": req.user.username, "signing-key": key})
            return
        if endpoint.startswith("cloud/users/") and self.users is not None:
            await self.ocs_users(req, endpoint.split("/")[2:], req.user)
            return
        if endpoint.startswith(shares_ocs.PREFIX) and self.shares is not None:
            await self.shares.handle(req, endpoint, req.user)
            return
        if endpoint == "apps/files_sharing/api/v1/sharees" and self.graph is not None:
            await self.ocs_sharees(req, req.user)
            return
        await ocs.reply(req, None, 404, "Not found")

    async def ocs_sharees(self, req: Request, user: User) -> None:
        assert self.graph is not None
        accounts = self.graph.accounts
        search = parse_qs(req.query_string).get("search", [""])[0]
        loop = asyncio.get_running_loop()
        try:
            users, groups = await loop.run_in_executor(None, accounts.sharees, user, search)
        except AccountError as exc:
            await ocs.reply(req, None, 400 if exc.status == 400 else 403, str(exc))
            return
        await ocs.reply(req, ocs.sharees_document(search, users, groups))

    async def ocs_users(self, req: Request, parts: list[str], user: User) -> None:
        """cloud/users/{id} and cloud/users/{id}/groups, for older clients: oneself, or anyone for admins."""
        assert self.users is not None
        wanted = unquote(parts[0]) if parts else ""
        users = self.users
        loop = asyncio.get_running_loop()
        other = await loop.run_in_executor(None, lambda: users.get_by_name(wanted) or users.get_by_id(wanted))
        if other is None or (other.id != user.id and user.role != "admin"):
            await ocs.reply(req, None, 404, "The requested user could not be found")
            return
        if parts[1:] == ["groups"]:
            names = [g.name for g in await loop.run_in_executor(None, users.groups) if g.id in other.groups]
            await ocs.reply(req, {"groups": names})
        elif len(parts) == 1:
            await ocs.reply(req, ocs.user_details(other))
        else:
            await ocs.reply(req, None, 404, "Not found")
