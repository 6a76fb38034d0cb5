"""Credentials -> User, for every request. HTTP Basic carries either an app token (always accepted
unless app auth is off) or the user's password (only with basic auth on, as in oCIS). Passwords are
verified once per client and then cached for a minute: argon2 must not run on every request. App
tokens need no cache, their check is a hash and a stat. Too many failures lock the account for a
while (LoginGuard), whichever kind of credential was tried."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Protocol

from infiniscale.core.apptokens import AppTokens
from infiniscale.core.loginguard import LoginGuard
from infiniscale.core.model.identity import User

CACHE_SECONDS = 60.0
CACHE_MAX = 10_000
BASIC_CHALLENGE = 'Basic realm="infiniscale", charset="UTF-8"'


class PasswordDirectory(Protocol):
    def authenticate(self, username: str, password: str) -> User | None: ...
    def get_by_name(self, username: str) -> User | None: ...


class Authenticator:
    def __init__(self, directory: PasswordDirectory, *, basic: bool, app_tokens: AppTokens | None,
                 guard: LoginGuard | None) -> None:
        self.directory = directory
        self.basic = basic
        self.app_tokens = app_tokens
        self.guard = guard
        self._cache: dict[bytes, tuple[float, User]] = {}

    @property
    def enabled(self) -> bool:
        return self.basic or self.app_tokens is not None

    def challenge(self) -> str:
        return BASIC_CHALLENGE

    async def authenticate(self, authorization: str | None) -> User | None:
        if not authorization:
            return None
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not self.enabled:
            return None
        key = hashlib.sha256(encoded.strip().encode()).digest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        username, sep, secret = decoded.partition(":")
        if not sep or not username or len(username) > 256 or len(secret) > 1024:
            return None
        loop = asyncio.get_running_loop()
        user, cacheable = await loop.run_in_executor(None, self._check, username, secret)
        if user is not None and cacheable:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (now + CACHE_SECONDS, user)
        return user

    def _check(self, username: str, secret: str) -> tuple[User | None, bool]:
        """(user, whether the result may be cached). Blocking: runs in a thread."""
        guard = self.guard
        if guard is not None and guard.locked(username):
            return None, False
        if self.app_tokens is not None:
            user = self.directory.get_by_name(username)
            if user is not None and self.app_tokens.verify(user.id, secret):
                return user, False  # checked afresh every time: a deleted token stops at once
        if self.basic:
            user = self.directory.authenticate(username, secret)
            if user is not None:
                if guard is not None:
                    guard.succeeded(username)
                return user, True
        if guard is not None:
            guard.failed(username)
        return None, False

    def forget(self, user_id: str) -> None:
        """Drops cached credentials of a user (password changed, user removed)."""
        for key, (_expires, user) in list(self._cache.items()):
            if user.id == user_id:
                self._cache.pop(key, None)
