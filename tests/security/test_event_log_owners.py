"""The embedded log caches run owners per log object; the admission rule must not weaken with it.

Two log objects on one file stand for two processes: one never saw what the other claimed, and a
claim in a transaction that rolled back is never remembered.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from provgraph.events.errors import EventConflict, Forbidden
from provgraph.events.synthetic import run_events
from provgraph.events.transport.sqlite import SqliteEventLog


def count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def test_a_run_claimed_by_one_writer_is_refused_to_another_project_in_both(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    first, second = SqliteEventLog(db), SqliteEventLog(db)
    start, *rest = run_events("r1", namespace="alpha")
    assert first.append([start]) == 1  # claimed, and cached by `first`
    hijack = run_events("r1", namespace="beta")[1]
    for log in (first, second):  # cached owner, and owner looked up in the table
        with pytest.raises(Forbidden, match="run 'r1' belongs to project 'alpha'; an event with job namespace 'beta'"):
            log.append([hijack])
    assert second.append(rest) == len(rest) and count(db) == 1 + len(rest)
    assert first.owners(["r1"]) == second.owners(["r1"]) == {"r1": "alpha"}


def test_a_claim_whose_batch_was_refused_is_not_remembered(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    first, second = SqliteEventLog(db), SqliteEventLog(db)
    known = run_events("r0", namespace="alpha")[0]
    first.append([known])
    changed = known.model_copy(update={"event_time": known.event_time.replace(year=2030)})  # same id, other bytes
    with pytest.raises(EventConflict):
        first.append([run_events("r2", namespace="alpha")[0], changed])  # r2's claim rolls back with the batch
    assert second.append([run_events("r2", namespace="beta")[0]]) == 1  # so beta may claim r2
    with pytest.raises(Forbidden, match="run 'r2' belongs to project 'beta'; an event with job namespace 'alpha'"):
        first.append([run_events("r2", namespace="alpha")[1]])
    assert first.owners(["r2"]) == {"r2": "beta"} and count(db) == 2
