"""The lockout window of LoginGuard, with a clock the test controls."""

from __future__ import annotations

from pathlib import Path

import pytest

from infiniscale.core import loginguard
from infiniscale.core.loginguard import LoginGuard
from infiniscale.drivers.identity_files import FileFailureLog


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(loginguard.time, "time", lambda: now[0])
    return now


def test_locks_after_too_many_failures_and_unlocks_after_the_window(tmp_path: Path, clock):
    guard = LoginGuard(FileFailureLog(str(tmp_path)), max_failures=3, window_s=60)
    for _ in range(2):
        guard.failed("einstein")
    assert not guard.locked("einstein")
    guard.failed("einstein")
    assert guard.locked("einstein") and not guard.locked("marie")
    assert LoginGuard(FileFailureLog(str(tmp_path)), 3, 60).locked("einstein")  # another process sees it
    clock[0] += 61
    assert not guard.locked("einstein")


def test_failures_spread_over_time_never_lock(tmp_path: Path, clock):
    guard = LoginGuard(FileFailureLog(str(tmp_path)), max_failures=3, window_s=60)
    for _ in range(10):
        guard.failed("einstein")
        clock[0] += 31
        assert not guard.locked("einstein")


def test_a_success_clears_the_count_and_odd_names_are_safe(tmp_path: Path, clock):
    guard = LoginGuard(FileFailureLog(str(tmp_path)), max_failures=2, window_s=60)
    name = "../../etc/passwd\x00ü"
    guard.failed(name)
    guard.succeeded(name)
    guard.failed(name)
    assert not guard.locked(name)
    assert all(p.parent == tmp_path / "login-failures" for p in tmp_path.rglob("*") if p.is_file())

