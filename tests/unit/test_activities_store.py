"""The activities index is opened by every worker process at once when the server starts: the first
creates it and turns on WAL, which SQLite refuses at once (no busy wait) while another connection
writes to the file, so the others must wait for it."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from pathlib import Path

from infiniscale.drivers.activities_sqlite import SqliteActivityStore


def test_a_store_opened_while_another_process_creates_it_waits_instead_of_failing(tmp_path: Path):
    path = tmp_path / "activities.sqlite"
    # the "other process", caught in the middle of creating the store: lock taken, a write open
    lock = open(str(path) + ".lock", "a")  # noqa: SIM115 - held across the thread below
    fcntl.flock(lock, fcntl.LOCK_EX)
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE half_made (x)")
    opened: list[object] = []

    def open_store() -> None:
        try:
            opened.append(SqliteActivityStore(str(path)))
        except Exception as exc:
            opened.append(exc)

    second = threading.Thread(target=open_store)
    second.start()
    second.join(0.5)
    assert opened == []  # still waiting for the creator
    creator.execute("COMMIT")
    creator.close()
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    second.join(30)
    assert len(opened) == 1 and isinstance(opened[0], SqliteActivityStore), opened
    store = opened[0]
    store.add_many([("event-1", 1, {"space": "s"}, [("node", 0)])])
    assert store._db().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
