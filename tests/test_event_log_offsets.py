"""Offsets of the embedded log: a plain rowid in new logs (no AUTOINCREMENT page written per commit),
still strictly growing, and a log made with AUTOINCREMENT keeps working as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog


def _schema(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0])
    finally:
        conn.close()


def test_a_new_log_numbers_events_without_autoincrement(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    events = list(workload(3, namespace="p"))
    for event in events[:5]:
        log.append([event])
    log.close()
    assert "AUTOINCREMENT" not in _schema(db)
    reopened = SqliteEventLog(db)  # a new object numbers on from the greatest offset
    reopened.append(events[5:])
    assert [r.offset for r in reopened.read()] == list(range(1, len(events) + 1))
    reopened.close()


def test_a_log_made_with_autoincrement_keeps_its_numbering(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    log.close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE events")
    conn.execute(_schema_with_autoincrement(_schema_of_fresh(tmp_path)))
    conn.commit()
    conn.close()
    log = SqliteEventLog(db)
    events = list(workload(2, namespace="p"))
    log.append(events)
    assert [r.offset for r in log.read()] == list(range(1, len(events) + 1))
    log.close()
    assert "AUTOINCREMENT" in _schema(db)


def _schema_of_fresh(tmp_path: Path) -> str:
    other = tmp_path / "fresh.db"
    SqliteEventLog(other).close()
    return _schema(other)


def _schema_with_autoincrement(sql: str) -> str:
    return sql.replace("offset      INTEGER PRIMARY KEY,", "offset      INTEGER PRIMARY KEY AUTOINCREMENT,", 1)
