"""Runs whose process is gone: the derived LOST state, identical on every store (see graph/liveness.py)."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provgraph.events.facets import ErrorMessageRunFacet, EventRunFacet, RuntimeRunFacet
from provgraph.events.model import EventType, Job, Run, RunEvent, RunFacets, RunState
from provgraph.graph.contract import LineageStore, RunFilter
from provgraph.graph.liveness import process_start, this_process


def event(
    run_id: str,
    kind: EventType,
    seq: int,
    when: datetime,
    runtime: dict[str, Any] | None = None,
    error: str | None = None,
    event_id: str | None = None,
) -> RunEvent:
    facets = RunFacets(
        event=EventRunFacet(event_id=event_id or f"{run_id}:{seq}", seq=seq),
        runtime=RuntimeRunFacet(**runtime) if runtime is not None else None,
        error_message=ErrorMessageRunFacet(message=error) if error else None,
    )
    return RunEvent(
        event_type=kind, event_time=when, run=Run(run_id=run_id, facets=facets), job=Job(namespace="p", name="j")
    )


@pytest.fixture(scope="module")
def dead_process() -> dict[str, Any]:
    """The identity a run recorded for a process of this machine that has since exited."""
    proc = subprocess.Popen(["sleep", "60"])
    identity = {**this_process(), "pid": proc.pid, "pid_start": process_start(proc.pid)}
    proc.kill()
    proc.wait()
    return identity


def test_a_run_whose_local_process_is_gone_is_lost(store: LineageStore, dead_process: dict[str, Any]) -> None:
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    store.apply(
        [
            event("gone", EventType.START, 1, now, runtime=dead_process),
            event("alive", EventType.START, 1, now, runtime=this_process()),
        ]
    )
    lost = store.run("gone")
    assert lost is not None
    assert (lost.state, lost.error) == ("LOST", f"process {dead_process['pid']} on host {socket.gethostname()} is gone")
    alive = store.run("alive")
    assert alive is not None
    assert (alive.state, alive.error) == ("START", None)


def test_a_reused_pid_does_not_keep_a_run_alive(store: LineageStore) -> None:
    """Our own pid, but a different start time: another process now has the run's pid."""
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    me = this_process()
    store.apply([event("reused", EventType.RUNNING, 2, now, runtime={**me, "pid_start": me["pid_start"] - 1})])
    run = store.run("reused")
    assert run is not None
    assert (run.state, run.error) == ("LOST", f"process {os.getpid()} on host {me['host']} is gone")


def test_a_silent_run_elsewhere_is_lost_after_the_heartbeat_timeout(store: LineageStore) -> None:
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    elsewhere = {"kind": "kubernetes", "host": "pod-7", "pid": 1, "pid_start": 5, "boot_id": "other", "heartbeat_s": 30}
    old = now - timedelta(minutes=10)
    store.apply(
        [
            event("silent", EventType.START, 1, old - timedelta(minutes=1), runtime=elsewhere),
            event("silent", EventType.RUNNING, 2, old),
            event("beating", EventType.START, 1, old, runtime=elsewhere),
            event("beating", EventType.RUNNING, 2, now - timedelta(seconds=5)),
        ]
    )
    silent = store.run("silent")
    assert silent is not None
    assert (silent.state, silent.error) == ("LOST", f"no heartbeat since {old.isoformat(timespec='seconds')}")
    beating = store.run("beating")
    assert beating is not None
    assert (beating.state, beating.error) == ("RUNNING", None)


@pytest.mark.parametrize("pid", [0, -1, 2**40])
def test_an_impossible_pid_of_this_machine_reads_as_lost(store: LineageStore, pid: int) -> None:
    """The runtime facet is data any producer may write: a pid no process can have is gone, not a crash."""
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    forged = {**this_process(), "pid": pid, "pid_start": None}
    store.apply([event("forged", EventType.START, 1, now, runtime=forged)])
    run = store.run("forged")
    assert run is not None
    assert (run.state, run.error) == ("LOST", f"process {pid} on host {forged['host']} is gone")
    assert [r.run_id for r in store.runs(RunFilter(state=RunState.LOST))] == ["forged"]


def test_a_run_that_promised_no_heartbeats_is_never_lost_by_silence(store: LineageStore) -> None:
    """Another OpenLineage producer (no runtime facet), or heartbeats turned off: a dbt model or an
    Airflow task may run for hours between START and COMPLETE."""
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    hours_ago = now - timedelta(hours=3)
    quiet = {"kind": "kubernetes", "host": "pod-8", "pid": 1, "boot_id": "other", "heartbeat_s": 0}
    store.apply(
        [
            event("airflow", EventType.START, 0, hours_ago),
            event("quiet", EventType.START, 1, hours_ago, runtime=quiet),
        ]
    )
    for run_id in ("airflow", "quiet"):
        run = store.run(run_id)
        assert run is not None
        assert (run.state, run.error) == ("START", None)


def test_runs_filter_on_the_derived_state(store: LineageStore, dead_process: dict[str, Any]) -> None:
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    store.apply(
        [
            event("lost-1", EventType.START, 1, now - timedelta(seconds=3), runtime=dead_process),
            event("live-1", EventType.START, 1, now - timedelta(seconds=2), runtime=this_process()),
            event("live-1", EventType.RUNNING, 2, now - timedelta(seconds=2)),
            event("lost-2", EventType.RUNNING, 2, now - timedelta(seconds=1), runtime=dead_process),
            event("done", EventType.START, 1, now, runtime=dead_process),
            event("done", EventType.COMPLETE, 2, now),
        ]
    )

    def ids(state: RunState | None, first: int = 50) -> list[str]:
        return [r.run_id for r in store.runs(RunFilter(state=state), first=first)]

    assert ids(RunState.LOST) == ["lost-2", "lost-1"]
    assert ids(RunState.LOST, first=1) == ["lost-2"]
    assert ids(RunState.RUNNING) == ["live-1"]
    assert ids(RunState.START) == []
    assert ids(RunState.COMPLETE) == ["done"]
    assert [(r.run_id, r.state) for r in store.runs()] == [
        ("done", "COMPLETE"),
        ("lost-2", "LOST"),
        ("live-1", "RUNNING"),
        ("lost-1", "LOST"),
    ]


def test_an_explicit_abort_beats_running_but_not_the_runs_own_end(
    store: LineageStore, dead_process: dict[str, Any]
) -> None:
    """`provgraph abort` sends seq 0 (as the launcher): it ends a LOST run, yet a terminal event the
    run itself sends later (seq >= 1) wins, whatever the arrival order."""
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    abort = event("r", EventType.ABORT, 0, now, error="aborted by u@h: stuck", event_id="r:abort")
    store.apply([event("r", EventType.START, 1, now, runtime=dead_process), event("r", EventType.RUNNING, 7, now)])
    store.apply([abort])
    run = store.run("r")
    assert run is not None
    assert (run.state, run.error) == ("ABORT", "aborted by u@h: stuck")
    store.apply([event("r", EventType.COMPLETE, 8, now + timedelta(seconds=1)), abort])
    run = store.run("r")
    assert run is not None
    assert run.state == "COMPLETE"


def test_last_event_time_is_the_latest_whatever_the_arrival_order(store: LineageStore) -> None:
    now = datetime.now(UTC)  # per test: a slow suite must not age the events
    t0 = now - timedelta(hours=1)
    events = [event("o", EventType.START, 1, t0), event("o", EventType.RUNNING, 3, t0 + timedelta(minutes=5))]
    events.append(event("o", EventType.RUNNING, 2, t0 + timedelta(minutes=2)))
    store.apply(list(reversed(events)))
    store.apply(events[:1])
    row = next(r for r in store.dump()["run"] if r["run_id"] == "o")
    assert (row["started_at"], row["last_event_at"]) == (t0.isoformat(), (t0 + timedelta(minutes=5)).isoformat())
