"""Lineage that tells the truth (issue 11): every store gives these exact answers.

Written vs attempted outputs, a dataset version per write, depth in dataset hops, as-of
(event time) and known-at (ingestion time) reads, and run completeness.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from provgraph.events.facets import EventRunFacet
from provgraph.events.model import Dataset, EventType, Job, Run, RunEvent, RunFacets
from provgraph.events.synthetic import EPOCH, run_events
from provgraph.graph.completeness import CompletenessRules
from provgraph.graph.contract import AsOf, LineageStore
from provgraph.graph.ids import NodeId
from provgraph.graph.projection import minted_version
from provgraph.graph.views import Direction, LineageGraph

WH = "postgres://wh:5432"


def _t(minutes: float) -> datetime:
    return EPOCH + timedelta(minutes=minutes)


def _table(name: str) -> Dataset:
    """A table as SQL integrations send it: no version facet."""
    return Dataset(namespace=WH, name=name)


def ol_run(
    run_id: str,
    job: str,
    *,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    start: float = 0,
    end: float | None = 1,
    final: EventType = EventType.COMPLETE,
) -> list[RunEvent]:
    """A third-party run: START declaring its inputs and outputs, then (unless `end` is None) its
    final event at minute `end`, without any provgraph facet."""
    events = [
        RunEvent(
            event_type=EventType.START,
            event_time=_t(start),
            run=Run(run_id=run_id),
            job=Job(namespace="dbt", name=job),
            inputs=[_table(n) for n in inputs],
            outputs=[_table(n) for n in outputs],
        )
    ]
    if end is not None:
        events.append(
            RunEvent(
                event_type=final,
                event_time=_t(end),
                run=Run(run_id=run_id),
                job=Job(namespace="dbt", name=job),
                inputs=[_table(n) for n in inputs],
                outputs=[_table(n) for n in outputs],
            )
        )
    return events


def _v(name: str, run_id: str) -> str:
    return f"dataset:{WH}:{name}@{minted_version(run_id)}"


def _ids(g: LineageGraph) -> set[str]:
    return {n.id for n in g.nodes}


def _edges(g: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind) for e in g.edges}


# -- 1. declared is not written ----------------------------------------------------------------


def test_outputs_of_a_failed_run_are_attempted_never_produced(store: LineageStore) -> None:
    store.apply(ol_run("ok-1", "orders", inputs=["raw.orders"], outputs=["orders"], start=0, end=1))
    store.apply(
        ol_run("bad-2", "orders", inputs=["raw.orders"], outputs=["orders"], start=10, end=11, final=EventType.FAIL)
    )
    bad = store.run("bad-2")
    assert bad is not None and bad.state == "FAIL"
    assert [(o.name, o.version, o.attempted) for o in bad.outputs] == [("orders", minted_version("bad-2"), True)]
    ok = store.run("ok-1")
    assert ok is not None and [(o.version, o.attempted) for o in ok.outputs] == [(minted_version("ok-1"), False)]
    # the failed run is nobody's producer: the latest written version is still ok-1's
    latest = store.produced_by(WH, "orders")
    assert latest is not None and latest.run_id == "ok-1"
    assert store.produced_by(WH, "orders", minted_version("bad-2")) is None
    # the dataset lists only versions that exist
    ds = store.dataset(WH, "orders")
    assert ds is not None and [v.version for v in ds.versions] == [minted_version("ok-1")]
    # walks skip attempted outputs unless asked
    up = store.lineage(NodeId.dataset(WH, "orders"), Direction.UPSTREAM, depth=1)
    assert "run:bad-2" not in _ids(up) and "run:ok-1" in _ids(up)
    down = store.lineage(NodeId.run("bad-2"), Direction.DOWNSTREAM, depth=1)
    assert _ids(down) == {"run:bad-2"} and down.edges == []
    seen = store.lineage(NodeId.run("bad-2"), Direction.DOWNSTREAM, depth=1, include_failed=True)
    assert _edges(seen) == {("run:bad-2", _v("orders", "bad-2"), "ATTEMPTED")}


def test_a_run_still_going_has_attempted_outputs_until_it_completes(store: LineageStore) -> None:
    start, done = ol_run("r-1", "orders", outputs=["orders"], start=0, end=5)
    store.apply([start])
    run = store.run("r-1")
    assert run is not None and [o.attempted for o in run.outputs] == [True]
    assert store.produced_by(WH, "orders") is None
    store.apply([done])
    run = store.run("r-1")
    assert run is not None and [o.attempted for o in run.outputs] == [False]
    producer = store.produced_by(WH, "orders")
    assert producer is not None and producer.run_id == "r-1"


def test_attempted_or_written_does_not_depend_on_arrival_order(store: LineageStore) -> None:
    events = [
        *ol_run("a", "orders", inputs=["raw"], outputs=["orders"], start=0, end=1, final=EventType.FAIL),
        *ol_run("b", "orders", inputs=["raw"], outputs=["orders"], start=2, end=3),
        *ol_run("c", "report", inputs=["orders"], outputs=["report"], start=4, end=5),
    ]
    store.apply(events)
    forward = store.dump()
    answer = store.lineage(NodeId.dataset(WH, "report"), Direction.UPSTREAM, include_failed=True)
    store.reset()
    for e in reversed(events):
        store.apply([e])
    assert store.dump() == forward
    assert store.lineage(NodeId.dataset(WH, "report"), Direction.UPSTREAM, include_failed=True) == answer


# -- 2. a version per write --------------------------------------------------------------------


def _daily(store: LineageStore) -> None:
    """Two daily runs rebuild `orders`; a report reads it between them and another after both."""
    store.apply(ol_run("day-1", "orders", inputs=["raw"], outputs=["orders"], start=0, end=10))
    store.apply(ol_run("rep-1", "report", inputs=["orders"], outputs=["report"], start=20, end=21))
    store.apply(ol_run("day-2", "orders", inputs=["raw"], outputs=["orders"], start=30, end=40))
    store.apply(ol_run("rep-2", "report", inputs=["orders"], outputs=["report"], start=50, end=51))


def test_each_complete_write_makes_its_own_version(store: LineageStore) -> None:
    _daily(store)
    ds = store.dataset(WH, "orders")
    assert ds is not None
    assert [v.version for v in ds.versions] == [minted_version("day-1"), minted_version("day-2")]
    latest = store.produced_by(WH, "orders")
    assert latest is not None and latest.run_id == "day-2"
    first = store.produced_by(WH, "orders", minted_version("day-1"))
    assert first is not None and first.run_id == "day-1"
    again = store.produced_by(WH, "orders")
    assert again is not None and again.run_id == "day-2"  # deterministic


def test_an_unversioned_input_resolves_to_the_version_written_before_the_read(store: LineageStore) -> None:
    _daily(store)
    rep1, rep2 = store.run("rep-1"), store.run("rep-2")
    assert rep1 is not None and [i.version for i in rep1.inputs] == [minted_version("day-1")]
    assert rep2 is not None and [i.version for i in rep2.inputs] == [minted_version("day-2")]
    # upstream of each report goes through its own version to its own writer
    up = store.lineage(NodeId.run("rep-1"), Direction.UPSTREAM, depth=1)
    assert _edges(up) == {("run:rep-1", _v("orders", "day-1"), "READ")}
    up = store.lineage(NodeId.dataset(WH, "report", minted_version("rep-2")), Direction.UPSTREAM, depth=2)
    assert "run:day-2" in _ids(up) and "run:day-1" not in _ids(up)
    # downstream of each version: only the readers that read it
    down = store.lineage(NodeId.dataset(WH, "orders", minted_version("day-1")), Direction.DOWNSTREAM, depth=1)
    assert {n.id for n in down.nodes if n.kind == "run"} == {"run:rep-1"}
    down = store.lineage(NodeId.dataset(WH, "orders", minted_version("day-2")), Direction.DOWNSTREAM, depth=1)
    assert {n.id for n in down.nodes if n.kind == "run"} == {"run:rep-2"}


def test_a_read_before_any_write_stays_unversioned(store: LineageStore) -> None:
    store.apply(ol_run("early", "report", inputs=["orders"], start=0, end=1))
    store.apply(ol_run("w", "orders", outputs=["orders"], start=5, end=6))
    early = store.run("early")
    assert early is not None and [i.version for i in early.inputs] == ["unversioned"]
    # a walk from the dataset starts at the placeholder too: the early read points there
    down = store.lineage(NodeId.dataset(WH, "orders"), Direction.DOWNSTREAM, depth=1)
    assert {n.id for n in down.nodes if n.hop == 0} == {_v("orders", "w"), f"dataset:{WH}:orders@unversioned"}
    assert ("run:early" in _ids(down)) and not down.partial


def test_a_placeholder_every_read_left_is_no_start(store: LineageStore) -> None:
    """Reads that named no version resolve to the version written before them: the dataset's
    placeholder then holds no edge, and a walk from the dataset does not show it."""
    _daily(store)
    for direction in (Direction.DOWNSTREAM, Direction.UPSTREAM):
        g = store.lineage(NodeId.dataset(WH, "orders"), direction, depth=1)
        assert {n.id for n in g.nodes if n.hop == 0} == {_v("orders", "day-1"), _v("orders", "day-2")}
    down = store.lineage(NodeId.dataset(WH, "orders"), Direction.DOWNSTREAM, depth=1)
    assert {n.id for n in down.nodes if n.kind == "run"} == {"run:rep-1", "run:rep-2"}


# -- 3. depth in dataset hops ------------------------------------------------------------------


def test_default_depth_reaches_raw_tables_of_a_two_level_model(store: LineageStore) -> None:
    store.apply(ol_run("stg", "stg_orders", inputs=["raw.orders"], outputs=["stg_orders"], start=0, end=1))
    store.apply(ol_run("mart", "orders", inputs=["stg_orders"], outputs=["orders"], start=2, end=3))
    g = store.lineage(NodeId.dataset(WH, "orders"), Direction.UPSTREAM)
    assert f"dataset:{WH}:raw.orders@unversioned" in _ids(g) and not g.partial
    g = store.lineage(NodeId.dataset(WH, "orders"), Direction.UPSTREAM, depth=1)
    assert _ids(g) == {_v("orders", "mart"), "run:mart", _v("stg_orders", "stg")}
    assert g.partial and g.partial_reasons == ["depth"]


# -- 4. as of event time, and known at ingestion time -----------------------------------------


def test_as_of_answers_before_and_after_a_rerun(store: LineageStore) -> None:
    _daily(store)
    before = AsOf(as_of=_t(35))  # day-2 started but had not completed
    producer = store.produced_by(WH, "orders", at=before)
    assert producer is not None and producer.run_id == "day-1"
    ds = store.dataset(WH, "orders", at=before)
    assert ds is not None and [v.version for v in ds.versions] == [minted_version("day-1")]
    g = store.lineage(NodeId.dataset(WH, "orders"), Direction.UPSTREAM, depth=1, at=before)
    assert {n.id for n in g.nodes if n.kind == "run"} == {"run:day-1"}
    g = store.lineage(NodeId.run("day-2"), Direction.DOWNSTREAM, depth=1, at=before, include_failed=True)
    assert _edges(g) == {("run:day-2", _v("orders", "day-2"), "ATTEMPTED")}
    after = AsOf(as_of=_t(45))
    producer = store.produced_by(WH, "orders", at=after)
    assert producer is not None and producer.run_id == "day-2"
    assert store.produced_by(WH, "orders", at=AsOf(as_of=_t(5))) is None  # nothing written yet
    early = store.dataset(WH, "orders", at=AsOf(as_of=_t(-1)))
    assert early is not None and early.versions == []  # the dataset is known, none of its versions yet


def test_known_at_hides_a_late_event_until_it_arrived(store: LineageStore) -> None:
    start, done = ol_run("late", "orders", inputs=["raw"], outputs=["orders"], start=0, end=1)
    # START arrived at once; COMPLETE was sent at minute 1 but reached provgraph at minute 60
    store.apply([start], known_at=[_t(0)])
    store.apply([done], known_at=[_t(60)])
    assert store.produced_by(WH, "orders", at=AsOf(as_of=_t(2))) is not None  # the world at minute 2
    assert store.produced_by(WH, "orders", at=AsOf(known_at=_t(30))) is None  # what provgraph knew at 30
    assert store.produced_by(WH, "orders", at=AsOf(known_at=_t(61))) is not None
    g = store.lineage(NodeId.run("late"), Direction.DOWNSTREAM, depth=1, at=AsOf(known_at=_t(30)))
    assert g.edges == []
    g = store.lineage(NodeId.run("late"), Direction.DOWNSTREAM, depth=1, at=AsOf(known_at=_t(61)))
    assert _edges(g) == {("run:late", _v("orders", "late"), "WROTE")}
    # redelivered later (a second ingestion of the same event) changes nothing: the earliest counts
    store.apply([done], known_at=[_t(90)])
    assert store.produced_by(WH, "orders", at=AsOf(known_at=_t(61))) is not None


# -- 5. completeness ---------------------------------------------------------------------------


def _with_total(events: list[RunEvent]) -> list[RunEvent]:
    """The run's last event declares how many it sent, as provgraph's SDK does."""
    last = events[-1]
    facets: RunFacets = last.run.facets.model_copy(
        update={"event": EventRunFacet(event_id=f"{last.run.run_id}-{len(events)}", seq=len(events), total=len(events))}
    )
    return [*events[:-1], last.model_copy(update={"run": Run(run_id=last.run.run_id, facets=facets)})]


def test_completeness_finds_dropped_events(store: LineageStore) -> None:
    store.completeness = CompletenessRules(terminal_timeout_s=3600)  # type: ignore[attr-defined]
    whole = _with_total(run_events("whole", outputs=[], metrics=[("a", 1.0, 1), ("b", 2.0, 1)]))
    gap = _with_total(run_events("gap", metrics=[("a", 1.0, 1), ("b", 2.0, 1)]))
    tail = _with_total(run_events("tail", metrics=[("a", 1.0, 1)]))
    headless = _with_total(run_events("headless"))
    endless = run_events("endless", start=EPOCH)
    store.apply(whole)
    store.apply([gap[0], gap[1], gap[3]])  # seq 3 dropped
    store.apply(tail[:-1])  # the terminal event dropped
    store.apply(headless[1:])  # START dropped
    store.apply(endless[:-1])  # no terminal, long ago
    run = store.run("whole")
    assert run is not None and run.completeness is not None
    assert (run.completeness.complete, run.completeness.missing, run.completeness.reasons) == (True, [], [])
    run = store.run("gap")
    assert run is not None and run.completeness is not None
    assert (run.completeness.missing, run.completeness.reasons) == ([3], ["sequenceGap", "countUnmet"])
    run = store.run("tail")
    assert run is not None and run.completeness is not None
    assert (run.completeness.missing, run.completeness.reasons) == ([], ["noTerminal"])
    run = store.run("headless")
    assert run is not None and run.completeness is not None
    assert (run.completeness.missing, run.completeness.reasons) == ([1], ["sequenceGap", "countUnmet", "noStart"])
    assert [r.run_id for r in store.incomplete_runs("synthetic")] == ["headless", "tail", "gap", "endless"]
    assert store.incomplete_runs("elsewhere") == []
    # the dropped events arrive: complete again
    store.apply([gap[2], tail[-1], headless[0], endless[-1]])
    assert store.incomplete_runs("synthetic") == []


def test_a_forged_sequence_number_lists_a_bounded_number_of_missing_events(store: LineageStore) -> None:
    events = run_events("forged")
    last = events[-1]
    facets = last.run.facets.model_copy(update={"event": EventRunFacet(event_id="x", seq=2**62)})
    store.apply([*events[:-1], last.model_copy(update={"run": Run(run_id="forged", facets=facets)})])
    run = store.run("forged")
    assert run is not None and run.completeness is not None
    assert run.completeness.reasons == ["sequenceGap"] and len(run.completeness.missing) == 100


def test_a_run_whose_events_name_two_jobs_is_the_job_of_its_earliest_event(store: LineageStore) -> None:
    """A producer may rename the job across one run's events: the run is its earliest event's job
    whichever event arrived first (in one batch or several)."""
    start = run_events("renamed", namespace="spark", job="app")[0]
    later = run_events(
        "renamed", namespace="spark", job="app.write_orders", start=start.event_time + timedelta(seconds=5)
    )
    events = [start, *later[1:]]
    for batches in ([events], [events[::-1]], [[e] for e in events[::-1]], [[e] for e in events]):
        store.reset()
        for batch in batches:
            store.apply(batch)
        run = store.run("renamed")
        assert run is not None and run.job_name == "app", batches
