"""Brute-force protection per account: after too many failed attempts within a window, the account's
logins and app-token checks are refused without even looking at the credentials, until the window
has passed. Other accounts are not affected. Failures are kept on disk, so every worker process and
a restart see them."""

from __future__ import annotations

import hashlib
import time

from infiniscale.core.ports.identity import FailureLog


class LoginGuard:
    def __init__(self, log: FailureLog, max_failures: int = 10, window_s: float = 300.0) -> None:
        self.log = log
        self.max_failures = max_failures
        self.window_s = window_s

    @staticmethod
    def account(username: str) -> str:
        """A file-name-safe key for any user name (the name itself may not be)."""
        return hashlib.sha256(username.casefold().encode()).hexdigest()[:40]

    def locked(self, username: str) -> bool:
        if self.max_failures <= 0:
            return False
        return self.log.recent(self.account(username), time.time() - self.window_s) >= self.max_failures

    def failed(self, username: str) -> None:
        now = time.time()
        self.log.record(self.account(username), now, now - self.window_s)

    def succeeded(self, username: str) -> None:
        self.log.clear(self.account(username))
