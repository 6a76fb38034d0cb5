"""Credentials -> User. HTTP Basic against the directory, with a short-lived cache so a password
hash is verified once per client, not once per request."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Protocol

from infiniscale.core.model.identity import User

CACHE_SECONDS = 60.0
CACHE_MAX = 10_000


class PasswordDirectory(Protocol):
    def authenticate(self, username: str, password: str) -> User | None: ...


class BasicAuthenticator:
    def __init__(self, directory: PasswordDirectory, enabled: bool = True) -> None:
        self.directory = directory
        self.enabled = enabled
        self._cache: dict[bytes, tuple[float, User]] = {}

    async def authenticate(self, authorization: str | None) -> User | None:
        if not self.enabled or not authorization:
            return None
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
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
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            return None
        loop = asyncio.get_running_loop()
        user = await loop.run_in_executor(None, self.directory.authenticate, username, password)
        if user is None:
            return None
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, user)
        return user
