"""knownAt in the embedded store: the ingestion time is the log's append time, kept with the
event, so a replay of the log gives the same as-of answers; old logs get the column."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph import sqlite_db
from provgraph.graph.contract import AsOf
from provgraph.graph.embedded import EmbeddedProjector
from provgraph.graph.sqlite_store import SqliteLineageStore
from tests.contract.test_truth_contract import WH, ol_run


def test_known_at_is_the_append_time_and_survives_replay(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    projector = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"))
    start, done = ol_run("r", "orders", outputs=["orders"], start=0, end=1)  # event times in 2026-01-01
    log.append([start])
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    log.append([done])
    projector.sync()
    store = projector.store
    assert store.produced_by(WH, "orders", at=AsOf(known_at=between)) is None  # COMPLETE not received yet
    assert store.produced_by(WH, "orders", at=AsOf(known_at=datetime.now(UTC))) is not None
    before = store.dump()
    projector.replay()
    assert store.dump() == before
    assert store.produced_by(WH, "orders", at=AsOf(known_at=between)) is None


def test_a_log_from_before_ingestion_times_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE events (offset INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,"
        " run_id TEXT NOT NULL, root_run_id TEXT NOT NULL, event_type TEXT NOT NULL, event_time TEXT NOT NULL,"
        " body BLOB NOT NULL)"
    )
    old.commit()
    old.close()
    log = SqliteEventLog(path)
    start, done = ol_run("r", "orders", outputs=["orders"])
    log.append([start, done])
    assert [r.ingested_at is not None for r in log.read()] == [True, True]
    store = SqliteLineageStore(tmp_path / "graph.db")
    EmbeddedProjector(log, store).sync()
    assert store.produced_by(WH, "orders") is not None


def test_a_graph_from_before_as_of_columns_is_projected_again(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    log.append(ol_run("r", "orders", outputs=["orders"]))
    old = sqlite_db.connect(tmp_path / "graph.db")
    old.execute(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('projected_offset', '2');"
        "CREATE TABLE run (run_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, job_name TEXT NOT NULL,"
        " state TEXT NOT NULL, state_key TEXT NOT NULL, started_at TEXT NOT NULL, last_event_at TEXT);"
        "INSERT INTO run VALUES ('r', 'dbt', 'orders', 'COMPLETE', 'k', '2026', '2026');"
    )
    old.close()
    store = SqliteLineageStore(tmp_path / "graph.db")
    assert store.projected_offset() == 0 and store.run("r") is None  # emptied: the log is projected again
    EmbeddedProjector(log, store).sync()
    producer = store.produced_by(WH, "orders")
    assert producer is not None and producer.run_id == "r"
