"""Appends from several threads share commits, each answered as if the calls ran one after the other.

The test holds the connection (as a commit under way would) while calls queue, so the batch they
form is known: the first thread commits alone, the queued ones in one transaction of their own.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from provgraph.events.errors import ProvgraphError
from provgraph.events.model import Job, RunEvent
from provgraph.events.synthetic import content_hash, dataset, run_events
from provgraph.events.transport.sqlite import SqliteEventLog
from tests.helpers import wait_for


def shared_batch(log: SqliteEventLog, calls: dict[str, list[RunEvent]]) -> tuple[dict[str, str], list[str]]:
    """Append each call from its own thread while the connection is held until all queued; the
    answers by call name, and the statements SQLite ran."""
    answers: dict[str, str] = {}
    ran: list[str] = []

    def append(name: str, events: list[RunEvent]) -> None:
        try:
            answers[name] = f"added {log.append(events)}"
        except ProvgraphError as exc:
            answers[name] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=append, args=item) for item in calls.items()]
    with log._lock:
        log._conn.set_trace_callback(ran.append)
        threads[0].start()  # takes its batch, then waits for the connection: the others queue behind it
        wait_for("the first call to take its batch", lambda: log._committing and not log._queue)
        for queued, thread in enumerate(threads[1:], start=1):
            thread.start()
            wait_for(f"call {queued} to queue", lambda: len(log._queue) == queued)  # noqa: B023 (awaited here)
    for thread in threads:
        thread.join(timeout=60)
    log._conn.set_trace_callback(None)
    return answers, ran


def stored(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return [(str(e), str(r)) for e, r in conn.execute("SELECT event_id, run_id FROM events ORDER BY offset")]
    finally:
        conn.close()


def test_queued_calls_share_one_commit_and_keep_the_order_answers(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    a, b = run_events("run-a", namespace="alpha"), run_events("run-b", namespace="beta")
    log.append(b[:1])
    foreign_output = b[1].model_copy(
        update={"outputs": [dataset("store://alpha", "m", content_hash("m"), "m", output=True)]}
    )
    calls = {
        "first": [a[0]],  # commits alone, claiming run-a for alpha
        "claim": run_events("run-c", namespace="alpha")[:1],  # claims run-c inside the shared transaction
        "hijack": [run_events("run-c", namespace="beta")[1]],  # so beta is refused run-c, in the same batch
        "refused": [foreign_output],  # beta may not write store://alpha: nothing of this call is kept
        "next": [a[1]],  # run-a's owner is cached: one statement within the transaction
        "again": [a[1]],  # the same event twice in one batch: stored once
    }
    answers, ran = shared_batch(log, calls)
    assert answers == {
        "first": "added 1",
        "claim": "added 1",
        "hijack": "Forbidden: run 'run-c' belongs to project 'alpha'; an event with job namespace 'beta'"
        " may not write to it",
        "refused": "Forbidden: run 'run-b' of project 'beta' may not write store://alpha/m: a run writes logged"
        " artifacts only in its own project (store://beta)",
        "next": "added 1",
        "again": "added 0",
    }
    assert [s for s in ran if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"] * 2
    assert stored(db) == [("run-b-1", "run-b"), ("run-a-1", "run-a"), ("run-c-1", "run-c"), ("run-a-2", "run-a")]
    assert SqliteEventLog(db).owners(["run-a", "run-b", "run-c"]) == {
        "run-a": "alpha",
        "run-b": "beta",
        "run-c": "alpha",
    }


def test_a_claim_refused_inside_a_shared_commit_is_not_remembered(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log, other = SqliteEventLog(db), SqliteEventLog(db)
    known = run_events("run-k", namespace="alpha")[0]
    log.append([known])
    conflicting = known.model_copy(update={"event_time": known.event_time.replace(year=2030)})
    answers, _ = shared_batch(
        log,
        {
            "first": [run_events("run-z", namespace="alpha")[0]],
            "claim then conflict": [run_events("run-x", namespace="alpha")[0], conflicting],
            "other job": [
                run_events("run-y", namespace="alpha")[0].model_copy(update={"job": Job(namespace="alpha", name="j2")})
            ],
        },
    )
    assert answers["claim then conflict"].startswith("EventConflict: event id 'run-k-1' is already recorded")
    assert answers["first"] == answers["other job"] == "added 1"
    assert other.append([run_events("run-x", namespace="beta")[0]]) == 1  # run-x was never claimed by alpha
    assert log.owners(["run-x"]) == {"run-x": "beta"}


def test_many_threads_lose_nothing_and_each_call_returns_its_own_count(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    runs = [run_events(f"run-{i}", namespace="alpha", metrics=[("loss", 1.0, s) for s in range(3)]) for i in range(8)]
    counts: list[int] = []

    def emit(events: list[RunEvent]) -> None:
        counts.extend(log.append([e]) for e in events + events)  # each event twice: 1 then 0

    threads = [threading.Thread(target=emit, args=(events,)) for events in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    total = sum(len(events) for events in runs)
    assert sorted(counts) == [0] * total + [1] * total
    assert sorted(stored(db)) == sorted(
        (e.run.facets.event.event_id, e.run.run_id) for ev in runs for e in ev if e.run.facets.event
    )
