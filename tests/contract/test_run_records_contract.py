"""Run queries, metric history, log chunks and tracebacks: the same answers from every store, in
any event order, and run queries answered from an index on both."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from provgraph.events.facets import (
    ErrorMessageRunFacet,
    EventRunFacet,
    LogChunk,
    LogsRunFacet,
    ParamsRunFacet,
)
from provgraph.events.model import EventType, Job, Run, RunEvent, RunFacets, RunState
from provgraph.events.synthetic import EPOCH, content_hash, run_events
from provgraph.graph.contract import LineageStore, RunFilter
from provgraph.graph.run_query import parse
from provgraph.graph.views import LogChunkView


def _event(run_id: str, seq: int, kind: EventType, ns: str = "demo", job: str = "train", **facets: Any) -> RunEvent:
    return RunEvent(
        event_type=kind,
        event_time=EPOCH + timedelta(hours=1, seconds=seq),
        run=Run(run_id=run_id, facets=RunFacets(event=EventRunFacet(event_id=f"{run_id}:{seq}", seq=seq), **facets)),
        job=Job(namespace=ns, name=job),
    )


def _events() -> list[RunEvent]:
    m = EPOCH + timedelta(minutes=1)
    return [
        *run_events(
            "r1",
            namespace="demo",
            job="train",
            params={"lr": 0.01, "opt": "adam", "flag": True, "nested": {"a": 1}},
            metrics=[("acc", 0.5, 0), ("acc", 0.95, 1)],
            start=EPOCH,
        ),
        *run_events(
            "r2",
            namespace="demo",
            job="train",
            params={"lr": 0.1, "opt": "sgd"},
            metrics=[("acc", 0.99, 0), ("acc", 0.8, 1)],
            final=EventType.FAIL,
            start=m,
        ),
        *run_events(
            "r3",
            namespace="demo",
            job="eval",
            params={"lr": "0.01"},
            metrics=[("acc", float("nan"), 0)],
            start=m + timedelta(minutes=1),
        ),
        *run_events(
            "r4",
            namespace="other",
            job="train",
            params={"lr": 0.01},
            metrics=[("acc", 0.97, 3)],
            start=m + timedelta(minutes=2),
        ),
        # r5/r6: params sent twice; the later event's (seq 1) win whatever the order, old rows go
        _event("r5", 0, EventType.OTHER, params=ParamsRunFacet(params={"lr": 5})),
        _event("r5", 1, EventType.START, params=ParamsRunFacet(params={"lr": 0.5})),
        _event("r6", 1, EventType.START, params=ParamsRunFacet(params={"lr": 0.5})),
        _event("r6", 0, EventType.OTHER, params=ParamsRunFacet(params={"lr": 5})),
    ]


QUERIES = {
    "metrics.acc > 0.9": ["r4", "r1"],
    "metrics.acc > 0.9 and params.lr = 0.01": ["r4", "r1"],
    "metrics.acc != 0.8": ["r4", "r1"],  # NaN compares with nothing
    "metrics.acc >= 0.99": [],  # r2's 0.99 is not its latest step
    "params.lr = '0.01'": ["r3"],  # a string, not the number
    "params.lr != 0.01": ["r6", "r5", "r2"],
    "params.lr = 5": [],
    "params.lr = 0.5": ["r6", "r5"],
    "params.flag = true": ["r1"],
    "params.nested = 1": [],
    "params.opt = sgd and state = FAIL": ["r2"],
    "params.opt >= b": ["r2"],
    "project = other": ["r4"],
    "job = train and params.lr < 1": ["r6", "r5", "r4", "r2", "r1"],
    "started >= 2026-01-01T00:02:00Z and started < 2026-01-01T00:04:00Z": ["r4", "r3"],
    "ended < 2026-01-01T00:01:00Z": ["r1"],
}


def _ids(store: LineageStore, text: str) -> list[str]:
    base, conditions = parse(text)
    return [r.run_id for r in store.runs(RunFilter(**{**base.__dict__, "conditions": conditions}), first=50)]


def test_run_queries_answer_alike_in_any_order(store: LineageStore) -> None:
    events = _events()
    random.Random(7).shuffle(events)
    half = len(events) // 2
    store.apply(events[:half])
    store.apply(events[half:])
    store.apply(events[:3])  # duplicates change nothing
    got = {text: _ids(store, text) for text in QUERIES}
    assert got == QUERIES
    page = store.runs(RunFilter(conditions=parse("params.lr = 0.01")[1]), first=1)
    assert [r.run_id for r in page] == ["r4"]
    after = store.runs(RunFilter(conditions=parse("params.lr = 0.01")[1]), first=5, after="r4")
    assert [r.run_id for r in after] == ["r1"]


def test_metric_history_logs_and_traceback(store: LineageStore) -> None:
    ab, cd = content_hash("ab"), content_hash("cd")
    events = [
        *run_events(
            "h1",
            namespace="demo",
            metrics=[("loss", 0.5, 2), ("loss", 1.0, 1), ("acc", float("inf"), 0)],
            final=EventType.RUNNING,
        ),
        _event("h1", 10, EventType.RUNNING, logs=LogsRunFacet(chunks=[LogChunk(offset=2, size=2, digest=cd)])),
        _event("h1", 9, EventType.RUNNING, logs=LogsRunFacet(chunks=[LogChunk(offset=0, size=2, digest=ab)])),
        _event(
            "h1",
            11,
            EventType.FAIL,
            error_message=ErrorMessageRunFacet(message="E: x", stack_trace="Traceback…\nE: x\n"),
        ),
        # an earlier failure report (a supervisor's, seq 0) never replaces the message or its traceback
        _event("h1", 0, EventType.FAIL, error_message=ErrorMessageRunFacet(message="pod failed")),
    ]
    for batch in (events[::-1], events):
        store.reset()
        for event in batch:
            store.apply([event])
        history = store.metric_history("h1")
        assert [(s.key, s.steps, s.values, s.truncated) for s in history] == [
            ("acc", [0], [float("inf")], False),
            ("loss", [1, 2], [1.0, 0.5], False),
        ]
        assert [(s.steps, s.truncated) for s in store.metric_history("h1", ["loss"], limit=1)] == [([1], True)]
        assert store.metric_history("h1", []) == [] and store.metric_history("nope") == []
        assert store.log_chunks("h1") == [
            LogChunkView(offset=0, size=2, digest=ab),
            LogChunkView(offset=2, size=2, digest=cd),
        ]
        run = store.run("h1")
        assert run is not None and run.state == RunState.FAIL
        assert (run.error, run.traceback) == ("E: x", "Traceback…\nE: x\n")


def _plan_sqlite(store: Any, text: str) -> str:
    conditions = parse(text)[1]
    sql, params = store.runs_query(RunFilter(conditions=conditions), None, 50, None)
    return " | ".join(r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def _plan_neo4j(store: Any, text: str) -> str:
    conditions = parse(text)[1]
    cypher, params = store.runs_query(RunFilter(conditions=conditions), None, 50, None)
    with store._session() as s:
        plan = s.run("EXPLAIN " + cypher, params).consume().plan

    def walk(p: dict[str, Any]) -> list[str]:
        here = f"{p['operatorType']} {p.get('args', {}).get('Details', '')}"
        return [here] + [x for c in p.get("children", []) for x in walk(c)]

    return " | ".join(walk(plan))


def test_run_queries_are_answered_from_indexes(store: LineageStore) -> None:
    store.apply(_events())
    if type(store).__name__ == "SqliteLineageStore":
        assert "INDEX run_param_num (key=? AND num>?)" in _plan_sqlite(store, "params.lr > 0.5")
        assert "INDEX run_param_str (key=? AND str=?)" in _plan_sqlite(store, "params.opt = sgd")
        assert "INDEX metric_key_value (key=? AND value>?)" in _plan_sqlite(store, "metrics.acc > 0.9")
        # a job across projects (the tombstone read of every live-store call): no scan of every run
        sql, params = store.runs_query(RunFilter(job="provgraph.delete"), None, 50, None)  # type: ignore[attr-defined]
        plan = " | ".join(r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params))  # type: ignore[attr-defined]
        assert "INDEX run_job_started (job_name=?)" in plan, plan
        # a rare state in a project (the UI's FAIL filter): read from its index, not by walking every run
        sql, params = store.runs_query(RunFilter(project="p"), (RunState.FAIL,), 50, None)  # type: ignore[attr-defined]
        plan = " | ".join(r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql, params))  # type: ignore[attr-defined]
        assert "INDEX run_project_state (namespace=? AND state=?)" in plan, plan
    else:
        for text, index in (
            ("params.lr > 0.5", "RANGE INDEX p:RunParam(key, num) WHERE key = $k0 AND num > $v0"),
            ("params.opt = sgd", "RANGE INDEX p:RunParam(key, str) WHERE key = $k0 AND str = $v0"),
            ("metrics.acc > 0.9", "RANGE INDEX m:Metric(key, value) WHERE key = $k0 AND value > $v0"),
        ):
            plan = _plan_neo4j(store, text)
            assert f"NodeIndexSeek@neo4j {index}" in plan, plan
