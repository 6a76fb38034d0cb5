"""Credentials -> User, for every request. HTTP Basic carries either an app token (always accepted
unless app auth is off) or the user's password (only with basic auth on, as in oCIS). Passwords are
verified once per client and then cached for a minute: argon2 must not run on every request. App
tokens need no cache, their check is a hash and a stat. Too many failures lock the account for a
while (LoginGuard), whichever kind of credential was tried.

A cached user stays valid only while the directory has not changed (where it can tell its version
cheaply, as the built-in one does): a new password, a deleted user, a new role or group takes hold
at the next request on every worker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from infiniscale.core.apptokens import TOKEN_LENGTH, AppTokens
from infiniscale.core.loginguard import LoginGuard
from infiniscale.core.model.identity import User
from infiniscale.core.provisioning import Provisioner

CACHE_SECONDS = 60.0
BEARER_CACHE = 10.0
CACHE_MAX = 10_000
PASSWORD_CHECKS_AT_ONCE = 2
BASIC_CHALLENGE = 'Basic realm="infiniscale", charset="UTF-8"'


class PasswordDirectory(Protocol):
    def authenticate(self, username: str, password: str) -> User | None: ...
    def get_by_name(self, username: str) -> User | None: ...
    def get_by_id(self, user_id: str) -> User | None: ...


class TokenVerifier(Protocol):
    def decode_access_token(self, token: str) -> dict: ...
    def session_alive(self, sid: str) -> bool: ...


class Authenticator:
    def __init__(self, directory: PasswordDirectory, *, basic: bool, app_tokens: AppTokens | None,
                 guard: LoginGuard | None, bearer: TokenVerifier | None = None,
                 user_claim: str = "preferred_username", match_by: str = "username",
                 provisioner: Provisioner | None = None) -> None:
        self.directory = directory
        self.basic = basic
        self.app_tokens = app_tokens
        self.guard = guard
        self.bearer = bearer
        self.user_claim = user_claim
        self.match_by = match_by
        self.provisioner = provisioner
        self.local = bool(getattr(directory, "local", False))  # lookups cost no network round trip
        self._directory_version: Callable[[], Any] = getattr(directory, "version", lambda: None)
        self._cache: dict[bytes, tuple[float, User, Any]] = {}  # -> (expiry, user, directory version)
        self._bearer_cache: dict[bytes, tuple[float, User, str, Any]] = {}
        self._checking: dict[tuple[bytes, Any], asyncio.Future[tuple[User | None, bool]]] = {}
        self._hashing = asyncio.Semaphore(PASSWORD_CHECKS_AT_ONCE)

    @property
    def enabled(self) -> bool:
        return self.basic or self.app_tokens is not None

    def challenge(self) -> str:
        return BASIC_CHALLENGE

    async def authenticate(self, authorization: str | None) -> User | None:
        if not authorization:
            return None
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return await self._bearer(encoded.strip())
        if scheme.lower() != "basic" or not self.enabled:
            return None
        key = hashlib.sha256(encoded.strip().encode()).digest()
        hit = self._cache.get(key)
        now = time.monotonic()
        version = self._directory_version()  # before the check: a change during it is not cached as current
        if hit is not None and hit[0] > now and hit[2] == version:
            return hit[1]
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        username, sep, secret = decoded.partition(":")
        if not sep or not username or len(username) > 256 or len(secret) > 1024:
            return None
        loop = asyncio.get_running_loop()
        if self.local:  # a file directory: a hash and two stats, cheaper than a hop to a thread
            user = self._app_token(username, secret)
        else:  # LDAP: the lookup goes over the network
            user = await loop.run_in_executor(None, self._app_token, username, secret)
        cacheable = False
        if user is None:
            user, cacheable = await self._password_check(key, version, username, secret)
        if user is not None and cacheable:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (now + CACHE_SECONDS, user, version)
        return user

    async def _password_check(self, key: bytes, version: Any, username: str,
                              secret: str) -> tuple[User | None, bool]:
        """One argon2 verification per credential however many requests carry it at once (a client
        opening 16 connections sends 16 before the first is cached), and at most
        PASSWORD_CHECKS_AT_ONCE at a time: each holds ~19 MiB and a core for tens of milliseconds.
        Requests share a verification only if they saw the same directory version: one that arrives
        after a password change does not take the answer of a check that began before it."""
        shared = (key, version)
        pending = self._checking.get(shared)
        if pending is None:
            pending = asyncio.ensure_future(self._verify_password(username, secret))
            self._checking[shared] = pending
            pending.add_done_callback(lambda _done: self._checking.pop(shared, None))
        return await asyncio.shield(pending)

    async def _verify_password(self, username: str, secret: str) -> tuple[User | None, bool]:
        async with self._hashing:
            return await asyncio.get_running_loop().run_in_executor(None, self._check, username, secret)

    async def _bearer(self, token: str) -> User | None:
        """An OpenID Connect access token: signature, issuer, audience, expiry and session checked,
        then the user found by the configured claim. The decoded token is kept for BEARER_CACHE
        seconds at most (never past its expiry)."""
        if self.bearer is None or not token or len(token) > 8192:
            return None
        key = hashlib.sha256(b"bearer:" + token.encode()).digest()
        now = time.monotonic()
        hit = self._bearer_cache.get(key)
        version = self._directory_version()
        if hit is None or hit[0] <= now or hit[3] != version:
            loop = asyncio.get_running_loop()
            try:  # in a thread: an external provider's keys may have to be fetched first
                claims = await loop.run_in_executor(None, self.bearer.decode_access_token, token)
            except Exception:  # any failure of a token is a 401, never a 500
                return None
            if self.provisioner is not None:
                user = await loop.run_in_executor(None, self.provisioner.user_for, claims)
            else:
                value = claims.get(self.user_claim)
                if not isinstance(value, str) or not value:
                    return None
                find = self.directory.get_by_id if self.match_by == "userid" else self.directory.get_by_name
                user = await loop.run_in_executor(None, find, value)
            if user is None:
                return None
            remaining = float(claims["exp"]) - time.time()
            if len(self._bearer_cache) >= CACHE_MAX:
                self._bearer_cache.clear()
            hit = (now + min(BEARER_CACHE, max(0.0, remaining)), user, str(claims.get("sid") or ""), version)
            self._bearer_cache[key] = hit
        # the signature check is cached, the session is not: a logout ends its tokens at once
        if hit[2] and not self.bearer.session_alive(hit[2]):
            self._bearer_cache.pop(key, None)
            return None
        return hit[1]

    def _app_token(self, username: str, secret: str) -> User | None:
        """The user whose app token `secret` is; checked afresh every time, so a deleted token stops
        working at once. A locked account gets nothing."""
        if self.app_tokens is None or len(secret) != TOKEN_LENGTH:
            return None
        user = self.directory.get_by_name(username)
        if user is None or not self.app_tokens.verify(user.id, secret):
            return None
        if self.guard is not None and self.guard.locked(username):
            return None
        return user

    def _check(self, username: str, secret: str) -> tuple[User | None, bool]:
        """Password logins: (user, whether the result may be cached). Blocking: runs in a thread."""
        guard = self.guard
        if guard is not None and guard.locked(username):
            return None, False
        if self.basic:
            user = self.directory.authenticate(username, secret)
            if user is not None:
                if guard is not None:
                    guard.succeeded(username)
                return user, True
        if guard is not None:
            guard.failed(username)
        return None, False
