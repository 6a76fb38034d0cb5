"""The built-in OpenID Connect provider on the wire, at the paths oCIS's provider (lico) uses:
discovery, the login page (authorization endpoint), token, userinfo, JWKS and end-session.

The login page is a plain HTML form: labelled fields, errors announced to screen readers, no
script. It is protected by a double-submit CSRF token, a strict Content-Security-Policy, and the
per-account lockout; password checks are argon2 (constant time by construction)."""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
from html import escape
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import orjson

from infiniscale.core.idp import IdentityProvider, OAuthError
from infiniscale.core.loginguard import LoginGuard
from infiniscale.core.model.identity import User
from infiniscale.protocols.auth import PasswordDirectory
from infiniscale.protocols.http import BodyTooLarge, Request, respond

PATHS = {
    "authorize": "/signin/v1/identifier/_/authorize",
    "token": "/konnect/v1/token",
    "userinfo": "/konnect/v1/userinfo",
    "jwks": "/konnect/v1/jwks.json",
    "endsession": "/signin/v1/identifier/_/endsession",
}
DISCOVERY = "/.well-known/openid-configuration"
SESSION_COOKIE = "infiniscale_session"
CSRF_COOKIE = "infiniscale_csrf"
NO_STORE = [("cache-control", "no-store"), ("pragma", "no-cache")]
PAGE_HEADERS = [
    ("content-type", "text/html; charset=utf-8"),
    ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer"), ("x-content-type-options", "nosniff"),
    *NO_STORE,
]
FORM_LIMIT = 64 * 1024


def page_policy(redirect_uri: str = "") -> str:
    """Content-Security-Policy of a page. Browsers apply form-action to the redirect that answers the
    login form too, so the client's (already validated) redirect target is named: an origin for a
    web or loopback app, a scheme for the mobile apps (`oc:`), which `*` would not cover."""
    target = ""
    if redirect_uri:
        parts = urlsplit(redirect_uri)
        target = f" {parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else f" {parts.scheme}:"
    return (f"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{target}; "
            "frame-ancestors 'none'; base-uri 'none'")


_ALL_PATHS = frozenset([DISCOVERY, *PATHS.values()])


def handles(path: str) -> bool:
    return path in _ALL_PATHS


def _cookies(req: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (req.header("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


def _query(req: Request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(req.query_string, keep_blank_values=True).items()}


async def _form(req: Request) -> dict[str, str]:
    try:
        body = await req.body(FORM_LIMIT)
    except BodyTooLarge:
        raise OAuthError("invalid_request", "the request body is too large") from None
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _json(status: int, doc: dict, extra: list[tuple[str, str]] | None = None) -> tuple[int, list, bytes]:
    return status, [("content-type", "application/json"), *NO_STORE, *(extra or [])], orjson.dumps(doc)


class OidcEndpoints:
    def __init__(self, idp: IdentityProvider, directory: PasswordDirectory, guard: LoginGuard | None,
                 secure_cookies: bool) -> None:
        self.idp = idp
        self.directory = directory
        self.guard = guard
        self.secure = "; Secure" if secure_cookies else ""

    async def __call__(self, req: Request) -> None:
        path = req.scope["path"]
        try:
            if path == DISCOVERY:
                await respond(req.send, 200, [("content-type", "application/json")],
                              orjson.dumps(self.idp.discovery(PATHS)))
            elif path == PATHS["jwks"]:
                await respond(req.send, 200, [("content-type", "application/json")], orjson.dumps(self.idp.jwks()))
            elif path == PATHS["token"]:
                await respond(req.send, *await self.token(req))
            elif path == PATHS["userinfo"]:
                await respond(req.send, *await self.userinfo(req))
            elif path == PATHS["authorize"]:
                await self.authorize(req)
            elif path == PATHS["endsession"]:
                await self.endsession(req)
        except OAuthError as exc:
            await req.drain()
            await respond(req.send, *_json(exc.status, {"error": exc.error, "error_description": str(exc)}))

    # ------------------------------------------------------------------ token and userinfo

    async def token(self, req: Request) -> tuple[int, list, bytes]:
        if req.method != "POST":
            return _json(405, {"error": "invalid_request", "error_description": "use POST"})
        form = await _form(req)
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        basic = req.header("authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                pair = base64.b64decode(basic[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                pair = ""
            user_part, _, secret_part = pair.partition(":")
            client_id, secret = unquote(user_part), unquote(secret_part)
        grant = form.get("grant_type", "")
        loop = asyncio.get_running_loop()
        try:
            if grant == "authorization_code":
                tokens = await loop.run_in_executor(None, self.idp.exchange_code, client_id, secret,
                                                    form.get("code", ""), form.get("redirect_uri", ""),
                                                    form.get("code_verifier", ""))
            elif grant == "refresh_token":
                tokens = await loop.run_in_executor(None, self.idp.refresh, client_id, secret,
                                                    form.get("refresh_token", ""))
            else:
                raise OAuthError("unsupported_grant_type", f"grant type {grant!r} is not supported")
        except OAuthError as exc:
            extra = [("www-authenticate", 'Basic realm="token"')] if exc.status == 401 else None
            return _json(exc.status, {"error": exc.error, "error_description": str(exc)}, extra)
        return _json(200, tokens.to_json())

    async def userinfo(self, req: Request) -> tuple[int, list, bytes]:
        await req.drain()
        scheme, _, token = (req.header("authorization") or "").partition(" ")
        challenge = [("www-authenticate", 'Bearer error="invalid_token"')]
        if scheme.lower() != "bearer" or not token:
            return _json(401, {"error": "invalid_token", "error_description": "a bearer token is required"},
                         [("www-authenticate", "Bearer")])
        loop = asyncio.get_running_loop()
        try:
            claims = await loop.run_in_executor(None, self.idp.verify_access_token, token.strip())
        except OAuthError as exc:
            return _json(401, {"error": exc.error, "error_description": str(exc)}, challenge)
        keys = ("sub", "preferred_username", "name", "email", "lg.uuid")
        return _json(200, {k: claims[k] for k in keys if k in claims})

    # ------------------------------------------------------------------ login page

    async def authorize(self, req: Request) -> None:
        if req.method == "POST":
            form = await _form(req)
            params = {k: v[-1] for k, v in parse_qs(form.get("request", ""), keep_blank_values=True).items()}
        else:
            await req.drain()
            form, params = {}, _query(req)
        try:
            self.idp.check_client(params)
        except OAuthError as exc:
            await self._page(req, 400, "Sign-in is not possible", f"<p role=\"alert\">{escape(str(exc))}</p>")
            return
        try:
            request = self.idp.authorization_request(params)
        except OAuthError as exc:
            await self._redirect(req, params["redirect_uri"], {"error": exc.error,
                                                                "error_description": str(exc),
                                                                "state": params.get("state", "")})
            return
        cookies = _cookies(req)
        if req.method == "POST":
            await self._login(req, form, params, cookies, request)
            return
        prompt = params.get("prompt", "").split()
        session = None if "login" in prompt else await self._in_thread(self.idp.session,
                                                                       cookies.get(SESSION_COOKIE, ""))
        if session is not None:
            user, auth_time, sid = session
            await self._finish(req, request, user, sid, auth_time, [])
            return
        if "none" in prompt:
            await self._redirect(req, request.redirect_uri, {"error": "login_required", "state": request.state})
            return
        await self._login_page(req, params, "", 200)

    async def _login(self, req: Request, form: dict[str, str], params: dict[str, str], cookies: dict[str, str],
                     request) -> None:
        csrf = cookies.get(CSRF_COOKIE, "")
        if not csrf or not hmac.compare_digest(csrf.encode(), form.get("csrf", "").encode()):
            await self._login_page(req, params, "Your sign-in form expired. Please try again.", 400)
            return
        username, password = form.get("username", "").strip(), form.get("password", "")
        user = await self._in_thread(self._check_password, username, password)
        if user is None:
            await self._login_page(req, params, "The user name or password is wrong, or the account is "
                                                "locked for a while after too many attempts.", 401, username)
            return
        secret, sid, auth_time = await self._in_thread(self.idp.start_session, user)
        cookie = (f"{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax{self.secure}; "
                  f"Max-Age={self.idp.lifetimes.session}")
        clear_csrf = f"{CSRF_COOKIE}=; Path=/signin; HttpOnly; SameSite=Strict{self.secure}; Max-Age=0"
        await self._finish(req, request, user, sid, auth_time, [("set-cookie", cookie), ("set-cookie", clear_csrf)])

    def _check_password(self, username: str, password: str) -> User | None:
        guard = self.guard
        if not username or len(username) > 256 or len(password) > 1024:
            return None
        if guard is not None and guard.locked(username):
            return None
        user = self.directory.authenticate(username, password)
        if guard is not None:
            if user is None:
                guard.failed(username)
            else:
                guard.succeeded(username)
        return user

    async def _finish(self, req: Request, request, user: User, sid: str, auth_time: float,
                      headers: list[tuple[str, str]]) -> None:
        code = await self._in_thread(self.idp.issue_code, request, user, sid, auth_time)
        await self._redirect(req, request.redirect_uri, {"code": code, "state": request.state,
                                                         "iss": self.idp.issuer}, headers)

    async def _login_page(self, req: Request, params: dict[str, str], error: str, status: int,
                          username: str = "") -> None:
        csrf = secrets.token_urlsafe(24)
        alert = f'<p class="error" role="alert" id="error">{escape(error)}</p>' if error else ""
        described = ' aria-describedby="error" aria-invalid="true"' if error else ""
        body = (
            f'{alert}<form method="post" action="{PATHS["authorize"]}">'
            f'<input type="hidden" name="csrf" value="{csrf}">'
            f'<input type="hidden" name="request" value="{escape(urlencode(params))}">'
            f'<label for="username">User name</label>'
            f'<input id="username" name="username" autocomplete="username" autocapitalize="none" '
            f'spellcheck="false" required autofocus value="{escape(username)}"{described}>'
            f'<label for="password">Password</label>'
            f'<input id="password" name="password" type="password" autocomplete="current-password" '
            f'required{described}>'
            f'<button type="submit">Sign in</button></form>')
        cookie = f"{CSRF_COOKIE}={csrf}; Path=/signin; HttpOnly; SameSite=Strict{self.secure}; Max-Age=3600"
        await self._page(req, status, "Sign in", body, [("set-cookie", cookie)], params.get("redirect_uri", ""))

    async def _page(self, req: Request, status: int, title: str, body: str,
                    headers: list[tuple[str, str]] | None = None, form_target: str = "") -> None:
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} · infiniscale</title><style>"
            "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1b1f23}"
            "main{max-width:22rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:8px;"
            "box-shadow:0 1px 4px #0002}h1{font-size:1.5rem;margin-top:0}"
            "label{display:block;margin-top:1rem;font-weight:600}"
            "input{box-sizing:border-box;width:100%;padding:.6rem;font:inherit;border:1px solid #6a737d;"
            "border-radius:4px}input:focus,button:focus{outline:3px solid #0366d6;outline-offset:1px}"
            "button{margin-top:1.5rem;width:100%;padding:.7rem;font:inherit;font-weight:600;color:#fff;"
            "background:#0366d6;border:0;border-radius:4px;cursor:pointer}"
            ".error{color:#b00020;font-weight:600}</style></head>"
            f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>")
        await respond(req.send, status, [*PAGE_HEADERS, ("content-security-policy", page_policy(form_target)),
                                         *(headers or [])], html.encode())

    async def _redirect(self, req: Request, uri: str, params: dict[str, str],
                        headers: list[tuple[str, str]] | None = None) -> None:
        query = urlencode({k: v for k, v in params.items() if v})
        separator = "&" if urlsplit(uri).query else "?"
        await respond(req.send, 303, [("location", f"{uri}{separator}{query}"), *NO_STORE, *(headers or [])])

    # ------------------------------------------------------------------ logout

    async def endsession(self, req: Request) -> None:
        await req.drain()
        params = _query(req)
        secret = _cookies(req).get(SESSION_COOKIE, "")
        hint = await self._in_thread(self.idp.id_token_session, params.get("id_token_hint", "")) \
            if params.get("id_token_hint") else None
        await self._in_thread(self.idp.end_session, secret, hint[1] if hint else "")
        clear = [("set-cookie", f"{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax{self.secure}; Max-Age=0")]
        target = params.get("post_logout_redirect_uri", "")
        client = self.idp.clients.get(hint[0]) if hint else None
        if target and client is not None and target in client.post_logout_redirect_uris:
            await self._redirect(req, target, {"state": params.get("state", "")}, clear)
            return
        await self._page(req, 200, "Signed out", "<p>You are signed out. You may close this window.</p>", clear)

    @staticmethod
    async def _in_thread(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

