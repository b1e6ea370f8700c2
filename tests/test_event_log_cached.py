"""The embedded log's one-statement append (an event of a run whose owner this log object has seen
committed) gives the answers of the full transaction, and never a stale one.

Each case is appended twice, to two identical copies of one log: through a warm log object, which
knows the owners and takes the one-statement path (asserted from the statements SQLite ran), and
through a cold one, which looks them up inside `BEGIN IMMEDIATE`. Outcome, stored rows and owners
must be the same. Another process writing between two appends of a warm object must be seen.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from provgraph.events.errors import ContractError, EventConflict, Forbidden, ProvgraphError
from provgraph.events.facets import ParamsRunFacet
from provgraph.events.facets.tombstone_run import DELETE_JOB, TombstoneRunFacet
from provgraph.events.model import Job, RunEvent
from provgraph.events.synthetic import content_hash, dataset, run_events
from provgraph.events.transport.sqlite import SqliteEventLog

ALPHA = run_events(
    "run-a", namespace="alpha", outputs=[dataset("store://alpha", "m", content_hash("m"), "m", output=True)]
)
BETA = run_events("run-b", namespace="beta")


def rows(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        events = conn.execute("SELECT offset, event_id, run_id, event_type, body FROM events ORDER BY offset")
        owners = conn.execute("SELECT run_id, namespace FROM run_owner ORDER BY run_id")
        return events.fetchall() + owners.fetchall()
    finally:
        conn.close()


def statements(log: SqliteEventLog, append: Callable[[], object]) -> list[str]:
    """The SQL statements `append` ran on the log's connection."""
    seen: list[str] = []
    log._conn.set_trace_callback(seen.append)
    try:
        append()
    finally:
        log._conn.set_trace_callback(None)
    return seen


def outcome(log: SqliteEventLog, event: RunEvent) -> str:
    try:
        return f"added {log.append([event])}"
    except ProvgraphError as exc:
        return f"{type(exc).__name__}: {exc}"


def seeded(tmp_path: Path) -> tuple[Path, Path]:
    """Two identical logs holding alpha's run-a START and beta's whole run-b."""
    warm_db, cold_db = tmp_path / "warm.db", tmp_path / "cold.db"
    log = SqliteEventLog(warm_db)
    log.append(ALPHA[:1])
    log.append(BETA)
    log.close()
    shutil.copy(warm_db, cold_db)
    return warm_db, cold_db


def changed(event: RunEvent, **update: object) -> RunEvent:
    return event.model_copy(update=update)


def tombstone(namespace: str, target: str) -> RunEvent:
    [start, *_] = run_events(f"delete-{target}-{namespace}", namespace=namespace, job=DELETE_JOB)
    tomb = TombstoneRunFacet(kind="run", target=target)
    facets = start.run.facets.model_copy(update={"tombstone": tomb, "params": ParamsRunFacet(params=tomb.as_params())})
    return start.model_copy(update={"run": start.run.model_copy(update={"facets": facets})})


CASES: dict[str, Callable[[], RunEvent]] = {
    "the run's next event": lambda: ALPHA[1],
    "a redelivery of the same bytes": lambda: ALPHA[0],
    "a known id with other bytes": lambda: changed(ALPHA[0], event_time=ALPHA[0].event_time.replace(year=2030)),
    "another project's run": lambda: changed(BETA[1], job=Job(namespace="alpha", name="job")),
    "an output in another project's store": lambda: changed(
        ALPHA[1], outputs=[dataset("store://beta", "m", content_hash("m"), "m", output=True)]
    ),
    "a store:// version that is no content hash": lambda: changed(
        ALPHA[1], outputs=[dataset("store://alpha", "m", "v1", "m", output=True)]
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_one_statement_append_answers_as_the_transaction_does(tmp_path: Path, case: str) -> None:
    warm_db, cold_db = seeded(tmp_path)
    warm = SqliteEventLog(warm_db)
    assert warm.owners(["run-a", "run-b"]) == {"run-a": "alpha", "run-b": "beta"}  # now cached
    cold = SqliteEventLog(cold_db)
    event = CASES[case]()
    answers: list[str] = []
    warm_ran = statements(warm, lambda: answers.append(outcome(warm, event)))
    assert not any(s.startswith(("BEGIN", "SELECT namespace", "COMMIT")) for s in warm_ran), warm_ran
    assert answers == [outcome(cold, event)] and rows(warm_db) == rows(cold_db)


def test_the_answers_name_the_rule(tmp_path: Path) -> None:
    warm_db, _ = seeded(tmp_path)
    log = SqliteEventLog(warm_db)
    log.owners(["run-a", "run-b"])
    assert outcome(log, CASES["the run's next event"]()) == "added 1"
    assert outcome(log, CASES["a redelivery of the same bytes"]()) == "added 0"
    assert outcome(log, CASES["a known id with other bytes"]()).startswith(
        "EventConflict: event id 'run-a-1' is already recorded with different content"
    )
    assert outcome(log, CASES["another project's run"]()) == (
        "Forbidden: run 'run-b' belongs to project 'beta'; an event with job namespace 'alpha' may not write to it"
    )
    with pytest.raises(Forbidden, match="may not write store://beta/m"):
        log.append([CASES["an output in another project's store"]()])
    with pytest.raises(ContractError, match="version 'v1' is not a content hash"):
        log.append([CASES["a store:// version that is no content hash"]()])


def test_a_tombstone_of_a_cached_run_is_checked_against_its_owner(tmp_path: Path) -> None:
    warm_db, cold_db = seeded(tmp_path)
    warm, cold = SqliteEventLog(warm_db), SqliteEventLog(cold_db)
    for log in (warm, cold):
        log.append(run_events("delete-run-b-alpha", namespace="alpha")[:1])  # the deleting run is known too
        log.owners(["run-b"])
    foreign, own = tombstone("alpha", "run-b"), tombstone("beta", "run-b")
    for log in (warm, cold):
        with pytest.raises(Forbidden, match="may not delete run 'run-b' of project 'beta'"):
            log.append([foreign])
        assert log.append([own]) == 1
    assert rows(warm_db) == rows(cold_db)


WRITER = """
import sys
from provgraph.events.synthetic import run_events
from provgraph.events.transport.sqlite import SqliteEventLog
event = run_events(sys.argv[2], namespace=sys.argv[3], metrics=[("loss", 1.0, 1)])[int(sys.argv[4])]
if len(sys.argv) > 5:
    event = event.model_copy(update={"event_time": event.event_time.replace(year=2031)})
SqliteEventLog(sys.argv[1]).append([event])
"""


def other_process(db: Path, run_id: str, namespace: str, index: int, *, other_bytes: bool = False) -> None:
    args = [sys.executable, "-c", WRITER, str(db), run_id, namespace, str(index)] + (["x"] if other_bytes else [])
    subprocess.run(args, check=True, timeout=120)


def test_another_process_writing_between_two_appends_is_seen(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    mine = run_events("run-a", namespace="alpha", metrics=[("loss", 1.0, 1)])  # START, RUNNING, COMPLETE
    assert log.append(mine[:1]) == 1  # run-a's owner is now cached here
    other_process(db, "run-a", "alpha", 1, other_bytes=True)  # takes event id run-a-2 with other bytes
    other_process(db, "run-x", "beta", 0)  # claims run-x, which this object never saw
    with pytest.raises(EventConflict, match="event id 'run-a-2' is already recorded with different content"):
        log.append([mine[1]])
    with pytest.raises(Forbidden, match="run 'run-x' belongs to project 'beta'"):
        log.append([run_events("run-x", namespace="alpha")[1]])
    assert log.append([mine[2]]) == 1 and log.count() == 4
    conn = sqlite3.connect(db)
    [(body,)] = conn.execute("SELECT body FROM events WHERE event_id = 'run-a-2'").fetchall()
    conn.close()
    assert b'"2031-' in body  # the other process's bytes are kept
