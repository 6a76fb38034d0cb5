"""ActivityStore in SQLite: a derived index in the data directory (like the search index), written
by the one `activitylog` consumer and read by every process. WAL lets readers in other processes
go on while the consumer writes."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

import orjson

from infiniscale.core.ports.activities import MAX_PER_RESOURCE, ActivityQuery, Entry

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, space TEXT NOT NULL, at INTEGER NOT NULL, record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_space ON events (space);
CREATE TABLE IF NOT EXISTS links (
    node TEXT NOT NULL, event TEXT NOT NULL, depth INTEGER NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (node, event)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_by_time ON links (node, at);
CREATE INDEX IF NOT EXISTS links_by_event ON links (event);
"""
TRIM_EVERY = 1024  # a resource's list is cut back to the cap every this many additions to it: a cut
# walks the resource's newest MAX_PER_RESOURCE links, so cutting every 64 made a busy folder cost about
# 100 index steps per addition; the query never returns more than the cap anyway


class SqliteActivityStore:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self.local = threading.local()
        self.additions: dict[str, int] = {}
        # every worker process opens the store at start: the first one creates it and turns on WAL
        # while the others wait (switching the journal mode is refused while another connection
        # holds the file, whatever the busy timeout)
        with open(path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                db = self._db()
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")  # kept in the file from now on
                db.executescript(SCHEMA)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _db(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections must stay in their thread)."""
        db = getattr(self.local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA synchronous=NORMAL")  # a crash may lose the last events, never corrupt
            self.local.db = db
        return db

    def add_many(self, entries: list[Entry]) -> None:
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
                           [(event_id, record.get("space", ""), at_ns, orjson.dumps(record))
                            for event_id, at_ns, record, _links in entries])
            db.executemany("INSERT OR IGNORE INTO links VALUES (?, ?, ?, ?)",
                           [(node, event_id, depth, at_ns)
                            for event_id, at_ns, _record, links in entries for node, depth in links])
            for _event_id, _at_ns, _record, links in entries:
                for node, _depth in links:
                    count = self.additions.get(node, 0) + 1
                    self.additions[node] = count % TRIM_EVERY
                    if count == TRIM_EVERY:
                        self._trim(db, node)
        if len(self.additions) > 100_000:  # the counters only pace the trimming
            self.additions.clear()

    @staticmethod
    def _trim(db: sqlite3.Connection, node: str) -> None:
        """Unlinks the node's activities beyond the cap; an event linked nowhere any more goes."""
        dropped = [row[0] for row in db.execute(
            "SELECT event FROM links WHERE node = ? ORDER BY at DESC, event DESC LIMIT -1 OFFSET ?",
            (node, MAX_PER_RESOURCE))]
        for event_id in dropped:
            db.execute("DELETE FROM links WHERE node = ? AND event = ?", (node, event_id))
            db.execute("DELETE FROM events WHERE id = ? AND NOT EXISTS (SELECT 1 FROM links WHERE event = ?)",
                       (event_id, event_id))

    def forget_space(self, space_id: str) -> None:
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM links WHERE event IN (SELECT id FROM events WHERE space = ?)", (space_id,))
            db.execute("DELETE FROM events WHERE space = ?", (space_id,))

    def query(self, query: ActivityQuery) -> list[tuple[str, int, dict]]:
        where, args = ["l.node = ?"], [query.node_id]
        if query.max_depth >= 0:
            where.append("l.depth <= ?")
            args.append(query.max_depth)
        if query.after_ns is not None:
            where.append("l.at > ?")
            args.append(query.after_ns)
        if query.before_ns is not None:
            where.append("l.at < ?")
            args.append(query.before_ns)
        newest = (f"SELECT l.event, l.at FROM links l WHERE l.node = ? ORDER BY l.at DESC, l.event DESC "
                  f"LIMIT {MAX_PER_RESOURCE}")
        order = "DESC" if query.descending else "ASC"
        sql = (f"SELECT e.id, e.at, e.record FROM links l JOIN events e ON e.id = l.event "
               f"WHERE {' AND '.join(where)} AND l.event IN (SELECT event FROM ({newest})) "
               f"ORDER BY l.at {order}, l.event {order}")
        if query.limit > 0:
            sql += f" LIMIT {int(query.limit)}"
        rows = self._db().execute(sql, [*args, query.node_id]).fetchall()
        return [(event_id, at, orjson.loads(record)) for event_id, at, record in rows]
