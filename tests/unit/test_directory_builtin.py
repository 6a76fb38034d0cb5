"""The built-in directory is one file that every server process writes: writers in different
processes must not overwrite each other's changes, and a write that fails leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infiniscale.core.accounts import AccountError
from infiniscale.drivers.directory_builtin import BuiltinDirectory

WRITER = """
import sys
from infiniscale.drivers import directory_builtin as d
d._hasher = d.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # fast hashes: this is about the file
directory = d.BuiltinDirectory(sys.argv[1])
for i in range(int(sys.argv[3])):
    directory.put_user(f"{sys.argv[2]}-{i}", f"{sys.argv[2]}-{i}", "pw", "someone", "")
"""


def test_writers_in_two_processes_lose_nothing(tmp_path: Path):
    path = str(tmp_path / "users.mpk")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, name, "40"]) for name in ("left", "right")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    names = {u.username for u in BuiltinDirectory(path).users()}
    assert names == {f"{side}-{i}" for side in ("left", "right") for i in range(40)}


def test_a_failed_write_is_not_served_from_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    directory = BuiltinDirectory(str(tmp_path / "users.mpk"))
    directory.put_group("g1", "first", [])

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("infiniscale.drivers.directory_builtin.write_atomic", disk_full)
    with pytest.raises(OSError):
        directory.put_group("g2", "second", [])
    monkeypatch.undo()
    assert [g.name for g in directory.groups()] == ["first"]


def test_a_taken_name_is_refused_and_keeps_its_id(tmp_path: Path):
    directory = BuiltinDirectory(str(tmp_path / "users.mpk"))
    directory.put_user("first-id", "newcomer", "pw-one", "Newcomer", "")
    with pytest.raises(AccountError) as refused:
        BuiltinDirectory(directory.path).put_user("second-id", "newcomer", "pw-two", "Other", "")
    assert refused.value.status == 409
    assert directory.get_by_name("newcomer").id == "first-id"
    assert directory.authenticate("newcomer", "pw-one") is not None
