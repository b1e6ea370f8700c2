"""The embedded event log: an append-only SQLite table, the source of truth with no servers.

Offsets are dense and increase with every new event; a redelivered event (same event id, same
bytes) is ignored, so appending is idempotent, while the same event id with different content is
refused (`EventConflict`, naming both digests): an id stands for one event. Projections read forward
from an offset they remember.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from provgraph.events.errors import EventConflict
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps, event_id
from provgraph.events.transport.base import Transport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    offset      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    run_id      TEXT NOT NULL,
    root_run_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    event_time  TEXT NOT NULL,
    body        BLOB NOT NULL
);
"""


_INSERT = (
    "INSERT OR IGNORE INTO events(event_id, run_id, root_run_id, event_type, event_time, body)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class LogRecord(NamedTuple):
    offset: int
    body: bytes


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection tuned for an append-heavy log shared by several processes (WAL, busy wait)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SqliteEventLog:
    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn = connect(path)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def append(self, events: Iterable[RunEvent]) -> int:
        """Append events in one transaction; returns how many were new."""
        rows = [
            (
                event_id(e, body),
                e.run.run_id,
                e.root_run_id,
                e.event_type.value,
                e.event_time.isoformat(),
                body,
            )
            for e in events
            for body in (dumps(e),)
        ]
        with self._lock:
            before = self._conn.total_changes
            if len(rows) == 1:  # one statement is its own transaction: no BEGIN/COMMIT round trips
                self._conn.execute(_INSERT, rows[0])
                if self._conn.total_changes == before:  # a known id: fine only if it is the same event
                    self._refuse_conflicts(rows)
            else:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._refuse_conflicts(rows)
                    self._conn.executemany(_INSERT, rows)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            return self._conn.total_changes - before

    def _refuse_conflicts(self, rows: list[tuple[str, str, str, str, str, bytes]]) -> None:
        """`EventConflict` when a row's event id is already stored (or repeated) with other bytes."""
        seen = {
            eid: bytes(b)
            for eid, b in self._conn.execute(
                "SELECT event_id, body FROM events WHERE event_id IN (SELECT value FROM json_each(?))",
                (json.dumps([r[0] for r in rows]),),
            )
        }
        for eid, *_, body in rows:
            stored = seen.setdefault(eid, body)
            if stored != body:
                raise EventConflict(
                    f"event id {eid!r} is already recorded with different content (stored {_digest(stored)},"
                    f" new {_digest(body)}); a different event needs its own event id"
                )

    def read(self, after: int = 0, limit: int = 10_000) -> list[LogRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT offset, body FROM events WHERE offset > ? ORDER BY offset LIMIT ?", (after, limit)
            ).fetchall()
        return [LogRecord(int(o), bytes(b)) for o, b in rows]

    def scan(self, after: int = 0, batch: int = 10_000) -> Iterator[LogRecord]:
        while records := self.read(after, batch):
            yield from records
            after = records[-1].offset

    def last_offset(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(MAX(offset), 0) FROM events").fetchone()
        return int(row[0])

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


class SqliteTransport(Transport):
    """Writes each event straight into the embedded log (synchronous, durable on commit)."""

    kind = "sqlite"

    def __init__(self, log: SqliteEventLog) -> None:
        self.log = log

    def emit(self, event: RunEvent) -> None:
        self.log.append([event])
