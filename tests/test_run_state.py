"""`RunState`: one enum for a run's state, stored or derived, used by every layer."""

from __future__ import annotations

from pathlib import Path

from provgraph.events.model import EventType, RunState
from provgraph.events.synthetic import run_events
from provgraph.graph import sqlite_db
from provgraph.graph.contract import RunFilter
from provgraph.graph.sqlite_store import SqliteLineageStore


def test_every_event_type_is_a_run_state_with_the_same_terminality() -> None:
    assert {t.value for t in EventType} | {"REQUESTED", "LOST"} == {s.value for s in RunState}
    assert all(RunState(t.value).is_terminal == t.is_terminal for t in EventType)
    assert not RunState.REQUESTED.is_terminal and not RunState.LOST.is_terminal
    assert RunState.COMPLETE == "COMPLETE" and f"{RunState.FAIL}" == "FAIL"


def test_a_stored_state_no_event_can_produce_reads_as_other(tmp_path: Path) -> None:
    """Written by a foreign or older writer: the run still reads, and every other run with it."""
    path = tmp_path / "graph.db"
    store = SqliteLineageStore(path)
    store.apply([*run_events("odd-1"), *run_events("fine-1")])
    with sqlite_db.connect(path) as c:
        c.execute("UPDATE run SET state = 'PAUSED' WHERE run_id = 'odd-1'")
    view = store.run("odd-1")
    assert view is not None and view.state is RunState.OTHER
    assert {(r.run_id, r.state) for r in store.runs()} == {("odd-1", RunState.OTHER), ("fine-1", RunState.COMPLETE)}
    assert [r.run_id for r in store.runs(RunFilter(state=RunState.COMPLETE))] == ["fine-1"]
    store.close()


def test_two_end_events_of_one_time_settle_on_one_state_in_either_order(tmp_path: Path) -> None:
    """A second-precision producer may send FAIL and COMPLETE with the same eventTime (and no sequence
    numbers): the state must not depend on which arrived first."""
    complete = run_events("tie")
    failed = run_events("tie", final=EventType.FAIL)[-1]
    assert (failed.event_time, failed.seq) == (complete[-1].event_time, complete[-1].seq)
    states: list[RunState] = []
    for order in ([*complete, failed], [*complete[:-1], failed, complete[-1]]):
        store = SqliteLineageStore(tmp_path / f"g{len(states)}.db")
        for e in order:
            store.apply([e])
        view = store.run("tie")
        assert view is not None
        states.append(view.state)
        store.close()
    assert states[0] == states[1] and states[0].is_terminal
