"""Password logins: concurrent requests with one credential share one argon2 verification, and
verifications run a bounded number at a time (each holds memory and a core)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path

from infiniscale.drivers.directory_builtin import BuiltinDirectory
from infiniscale.protocols import auth
from infiniscale.protocols.auth import Authenticator


class CountingDirectory(BuiltinDirectory):
    """The real file directory, recording how many password checks run and how many overlap."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def authenticate(self, username: str, password: str):
        with self._count:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.05)  # long enough for every concurrent request to arrive meanwhile
            return super().authenticate(username, password)
        finally:
            with self._count:
                self.running -= 1


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def make(tmp_path: Path) -> tuple[Authenticator, CountingDirectory]:
    directory = CountingDirectory(str(tmp_path / "users.mpk"))
    for name in ("einstein", "marie", "richard", "moss"):
        directory.put_user(f"id-{name}", name, f"{name}-pw", name.title(), f"{name}@example.org")
    return Authenticator(directory, basic=True, app_tokens=None, guard=None), directory


def test_one_verification_for_many_requests_with_the_same_password(tmp_path: Path):
    authenticator, directory = make(tmp_path)

    async def run():
        return await asyncio.gather(*(authenticator.authenticate(basic("einstein", "einstein-pw"))
                                      for _ in range(16)))

    users = asyncio.run(run())
    assert [u.username for u in users] == ["einstein"] * 16
    assert directory.calls == 1


def test_a_wrong_password_is_not_shared_with_the_right_one(tmp_path: Path):
    authenticator, directory = make(tmp_path)

    async def run():
        return await asyncio.gather(authenticator.authenticate(basic("einstein", "wrong")),
                                    authenticator.authenticate(basic("einstein", "einstein-pw")))

    wrong, right = asyncio.run(run())
    assert wrong is None and right is not None and right.username == "einstein"
    assert directory.calls == 2


def test_verifications_of_different_users_are_bounded(tmp_path: Path):
    authenticator, directory = make(tmp_path)

    async def run():
        return await asyncio.gather(*(authenticator.authenticate(basic(name, f"{name}-pw"))
                                      for name in ("einstein", "marie", "richard", "moss")))

    users = asyncio.run(run())
    assert [u.username for u in users] == ["einstein", "marie", "richard", "moss"]
    assert directory.calls == 4
    assert directory.most_at_once == auth.PASSWORD_CHECKS_AT_ONCE


def test_a_request_after_a_password_change_does_not_take_an_older_check(tmp_path: Path):
    """A starts checking the old password; the password changes; B arrives with the old password
    while A's check still runs: B must be refused, and nothing may cache the old password."""
    class ReadsThenWaits(BuiltinDirectory):
        def authenticate(self, username: str, password: str):
            found = super().authenticate(username, password)  # decided on what the file says now
            time.sleep(0.3)
            return found

    directory = ReadsThenWaits(str(tmp_path / "users.mpk"))
    directory.put_user("id-einstein", "einstein", "einstein-pw", "Einstein", "")
    authenticator = Authenticator(directory, basic=True, app_tokens=None, guard=None)
    old = basic("einstein", "einstein-pw")

    async def run():
        first = asyncio.ensure_future(authenticator.authenticate(old))
        await asyncio.sleep(0.1)  # A has read the old password and is still busy
        await asyncio.to_thread(directory.set_password, "einstein", "new-pw")
        second = await authenticator.authenticate(old)
        await first
        third = await authenticator.authenticate(old)
        return second, third

    second, third = asyncio.run(run())
    assert second is None and third is None
