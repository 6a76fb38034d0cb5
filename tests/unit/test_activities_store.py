"""The activities index is opened by every worker process at once when the server starts: the first
creates it and turns on WAL, which SQLite refuses at once (no busy wait) while another connection
writes to the file, so the others must wait for it."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from pathlib import Path

from infiniscale.core.ports.activities import MAX_PER_RESOURCE, ActivityQuery
from infiniscale.drivers.activities_sqlite import TRIM_EVERY, SqliteActivityStore


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


def test_a_resource_keeps_its_newest_activities_up_to_the_cap(tmp_path: Path):
    """Older activities of a busy folder are cut (an event linked nowhere any more goes with them);
    one still linked to another resource stays for that one."""
    store = SqliteActivityStore(str(tmp_path / "activities.sqlite"))
    total = MAX_PER_RESOURCE + 2 * TRIM_EVERY + 10
    for start in range(0, total, 500):
        store.add_many([(f"e{i}", i, {"space": "s"}, [("folder", 1), *([("file", 0)] if i < 5 else [])])
                        for i in range(start, min(start + 500, total))])
    db = store._db()
    kept = db.execute("SELECT COUNT(*) FROM links WHERE node = 'folder'").fetchone()[0]
    assert MAX_PER_RESOURCE <= kept < MAX_PER_RESOURCE + TRIM_EVERY
    newest = store.query(ActivityQuery(node_id="folder", max_depth=-1, limit=0, descending=True))
    assert [at for _, at, _ in newest] == list(range(total - 1, total - 1 - MAX_PER_RESOURCE, -1))
    events = {row[0] for row in db.execute("SELECT id FROM events")}
    assert "e10" not in events  # cut from the folder, linked nowhere else
    assert {f"e{i}" for i in range(5)} <= events  # still the file's
    assert len(store.query(ActivityQuery(node_id="file", max_depth=-1, limit=0, descending=True))) == 5
