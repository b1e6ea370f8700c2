"""The folded write path: a batch folded into one row per node gives the graph that projecting its
events one by one gives, whatever the order, duplicates and batch boundaries (both stores)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from provgraph.events.facets import CodeJobFacet, EventRunFacet, RequestedRunFacet
from provgraph.events.model import EventType, Job, JobFacets, RunEvent, RunFacets, RunState
from provgraph.events.synthetic import content_hash, run_events
from provgraph.graph.facets import facet_rows
from provgraph.graph.neo4j_config import Neo4jConfig
from provgraph.graph.neo4j_rows import KEYED, rows_for
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.projection import RunFacts, canonical_json, facts, max_nn, min_nn, run_row
from provgraph.graph.rows import loads_json
from provgraph.graph.sqlite_store import SqliteLineageStore
from tests.facet_events import DB, SCHEMA, columns, ds, facet
from tests.facet_events import event as facet_event
from tests.mixed_events import mixed_events


def canonical(value: Any) -> Any:
    """`value` with every list sorted: folded rows compared as sets."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return value


def test_mixed_events_hold_every_case_the_fold_has_rules_for() -> None:
    events, _ = mixed_events(60, seed=1)
    sqlite = SqliteLineageStore(":memory:")
    sqlite.apply(events)
    dump = sqlite.dump()
    states = {r["state"] for r in dump["run"]}
    assert {"COMPLETE", "FAIL", "ABORT", "RUNNING"} <= states
    assert any(r["error"] for r in dump["run"]) and any(r["labels"] for r in dump["run"])
    assert any(r["parent_run_id"] for r in dump["run"]) and any(r["cached_from"] for r in dump["run"])
    assert any(r["reproduces"] for r in dump["run"])
    assert len({(m["run_id"], m["key"]) for m in dump["metric"]}) < len(dump["metric"])  # histories
    assert dump["log_chunk"] and dump["facet"] and dump["column_edge"]
    assert any(v["version"].startswith("run-") for v in dump["dataset_version"])  # minted
    assert len(events) > len({e.model_dump_json() for e in events})  # duplicates


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_folding_does_not_depend_on_order_or_duplicates(seed: int) -> None:
    events, known_at = mixed_events(80, seed)
    pairs = list(zip(events, known_at, strict=True))
    want = canonical(rows_for(events, known_at))
    for shuffled in (random.Random(seed).sample(pairs, len(pairs)), pairs + pairs[: len(pairs) // 2]):
        got = rows_for([e for e, _ in shuffled], [k for _, k in shuffled])
        assert canonical(got) == want


def test_folding_keeps_one_row_per_node() -> None:
    events, known_at = mixed_events(50, seed=4)
    rows = rows_for(events, known_at)
    assert len(rows["runs"]) == len({e.run.run_id for e in events})
    assert len(rows["jobs"]) == len({(e.job.namespace, e.job.name) for e in events})
    for run in rows["runs"]:
        assert len(run["metrics"]) == len({(m["key"], m["step"]) for m in run["metrics"]})
        assert len(run["logs"]) == len({c["offset"] for c in run["logs"]})
        assert len(run["reads"]) == len({(e["dsv"], e["binding"]) for e in run["reads"]})


def _row_of(f: RunFacts) -> dict[str, Any]:
    """Round 10's formula: one run row per event (`run_row`, seqs, the reproduction parsed)..."""
    row = run_row(f)
    row["seqs"] = [f.seq] if f.seq > 0 else []
    repro = loads_json(f.reproduces)
    row["reproduces_of"] = repro.get("run_id") if repro else None
    row["reproduces_verdict"] = repro.get("verdict") if repro else None
    return row


def _fold_rows(old: dict[str, Any], new: dict[str, Any]) -> None:
    """...folded row with row by the rules of `neo4j_cypher.MERGE_RUNS` (the oracle of the fold from facts)."""
    if new["state_key"] > old["state_key"]:
        for p in ("state", "ended_at", "state_key", "ended_known_at"):
            old[p] = new[p]
    elif new["state_key"] == old["state_key"]:
        old["ended_known_at"] = min_nn(old["ended_known_at"], new["ended_known_at"])
    for p in ("known_at", "started_at"):
        old[p] = min(old[p], new[p])
    for p in ("has_start", "last_event_at"):
        old[p] = max(old[p], new[p])
    for p in ("declared_events", "code_hash", "parent_run_id", "cached_from"):
        old[p] = max_nn(old[p], new[p])
    old["seqs"] = sorted(set(old["seqs"]) | set(new["seqs"]))
    for prop, carried in KEYED.items():
        key = f"{prop}_key"
        if new[key] is not None and new[key] > (old[key] or ""):
            for p in (key, prop, *carried):
                old[p] = new[p]


def _facts_as_before(e: RunEvent, known_at: datetime) -> dict[str, Any]:
    """Round 10's `projection.facts` for the fields this round reads differently (the oracle)."""
    rf, dump = e.run.facets, {"mode": "json", "exclude": {"producer", "schema_url"}}
    keyed = lambda v: None if v is None else canonical_json(v)  # noqa: E731
    return {
        "state": RunState.REQUESTED
        if e.event_type == EventType.OTHER and rf.requested
        else RunState(e.event_type.value),
        "state_key": f"{int(e.event_type.is_terminal)}|{e.order_key}|{e.event_type.value}",
        "ended_at": e.event_time.isoformat() if e.event_type.is_terminal else None,
        "seq": e.seq,
        "has_start": e.event_type == EventType.START,
        "declared_events": rf.event.total if rf.event else None,
        "code": e.job.facets.code,
        "params": keyed(rf.params.params if rf.params else None),
        "results": keyed(rf.results.results if rf.results else None),
        "runtime": keyed(rf.runtime.model_dump(**dump) if rf.runtime else None),  # type: ignore[arg-type]
        "error": rf.error_message.message if rf.error_message else None,
        "traceback": rf.error_message.stack_trace if rf.error_message else None,
        "reproduces": keyed(rf.reproduces.model_dump(**dump) if rf.reproduces else None),  # type: ignore[arg-type]
        "labels": keyed(rf.labels.labels if rf.labels else None),
        "annotations": keyed(rf.labels.annotations if rf.labels else None),
        "metrics": [(m.key, m.step, m.value) for m in (rf.metrics.metrics if rf.metrics else [])],
        "logs": [(c.offset, c.size, c.digest) for c in (rf.logs.chunks if rf.logs else [])],
    }


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0, 0, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59),  # naive: an event built without validation
        datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(-timedelta(hours=3, seconds=1))),
    ],
)
@pytest.mark.parametrize("seq", [0, 7, 10**12 - 1, 10**12, 2**63 - 1])
def test_order_keys_and_times_are_formatted_as_before(at: datetime, seq: int) -> None:
    """One `isoformat` gives both the order key's time and the event time `facts` keeps."""
    e = run_events("ok-1")[0]
    e = e.model_copy(
        update={
            "event_time": at,
            "run": e.run.model_copy(update={"facets": RunFacets(event=EventRunFacet(event_id="x", seq=seq))}),
        }
    )
    n = "~" + f"{seq:019d}" if seq >= 10**12 else f"{seq:012d}"
    want = f"{n}|{at.replace(tzinfo=None).isoformat(timespec='microseconds')}"
    assert e.order_key == want
    f = facts(e)
    assert (f.order_key, f.event_time, f.known_at) == (want, at.isoformat(), at.isoformat())


def test_facts_read_every_event_as_before() -> None:
    events, known_at = mixed_events(40, seed=10)
    requested = RequestedRunFacet(request_hash="sha256:" + "0" * 64, runtime="kubernetes")
    for e in events[:30]:  # and as launcher requests (OTHER), with and without the requested facet
        other = e.model_copy(update={"event_type": EventType.OTHER})
        facets = e.run.facets.model_copy(update={"requested": requested})
        events.append(other.model_copy(update={"run": e.run.model_copy(update={"facets": facets})}))
        events.append(other)
        known_at += [known_at[0], known_at[1]]
    states = set()
    for e, k in zip(events, known_at, strict=True):
        f = facts(e, k)
        want = _facts_as_before(e, k)
        assert {p: getattr(f, p) for p in want} == want
        states.add(f.state)
    assert {RunState.REQUESTED, RunState.OTHER, RunState.START, RunState.COMPLETE, RunState.FAIL} <= states


PARTS = ("param_rows", "label_rows", "code_hashes", "metrics", "logs", "reads", "wrote")


@pytest.mark.parametrize("seed", [1, 8, 9])
def test_run_rows_folded_from_facts_equal_rows_folded_one_per_event(seed: int) -> None:
    """`rows_for` folds an event into its run's row from the event's facts; the rows are the ones a row
    per event folded row with row gives, in any order and with duplicates."""
    events, known_at = mixed_events(80, seed)
    pairs = list(zip(events, known_at, strict=True))
    for order in (pairs, random.Random(seed).sample(pairs, len(pairs)), pairs[::-1] + pairs[:20]):
        want: dict[str, dict[str, Any]] = {}
        for e, k in order:
            row = _row_of(facts(e, k))
            if row["run_id"] in want:
                _fold_rows(want[row["run_id"]], row)
            else:
                want[row["run_id"]] = row
        got = {r["run_id"]: r for r in rows_for([e for e, _ in order], [k for _, k in order])["runs"]}
        assert got.keys() == want.keys()
        for run_id, row in want.items():
            assert {p: got[run_id][p] for p in row} == row
            assert set(got[run_id]) - set(row) == {*PARTS}


def test_a_job_version_folds_to_the_greatest_value_of_each_property_in_any_order() -> None:
    """Events of one job and code hash that disagree on its other properties (None, or not)."""
    code = CodeJobFacet(code_hash=content_hash("job"), entrypoint="a.py:main")
    variants = [
        code,
        code.model_copy(update={"entrypoint": "b.py:main", "git_dirty": False}),
        code.model_copy(update={"source_uri": "git+https://x/y", "git_commit": "c1", "git_dirty": True}),
        code.model_copy(update={"git_commit": "c0"}),
    ]
    events = [
        e.model_copy(update={"job": Job(namespace="p", name="job", facets=JobFacets(code=variants[i % 4]))})
        for i, e in enumerate(run_events("jv-1", namespace="p", job="job", metrics=[("m", 1.0, 1)] * 3))
    ]
    want = {
        "namespace": "p",
        "name": "job",
        "code_hash": code.code_hash,
        "entrypoint": "b.py:main",
        "source_uri": "git+https://x/y",
        "git_commit": "c1",
        "git_dirty": 1,
    }
    for seed in range(4):
        assert rows_for(random.Random(seed).sample(events, len(events)))["job_versions"] == [want]


_QUALITY = facet(assertions=[{"assertion": "not_null", "success": True, "column": "id"}])
_LINEAGE = columns({"id": [(DB, "raw", "id")]})


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("sql", {"job_facets": {"sql": facet(query="select 1")}}),
        ("jobType", {"job_facets": {"jobType": facet(processingType="BATCH", integration="DBT", jobType="MODEL")}}),
        ("sourceCodeLocation", {"job_facets": {"sourceCodeLocation": facet(type="git", url="https://g/x")}}),
        ("errorMessage", {"run_facets": {"errorMessage": facet(message="boom", programmingLanguage="py")}}),
        ("schema", {"inputs": [ds("raw", facets={"schema": SCHEMA})]}),
        ("dataQualityAssertions", {"inputs": [ds("raw", input_facets={"dataQualityAssertions": _QUALITY})]}),
        ("dataQualityAssertions", {"outputs": [ds("raw", facets={"dataQualityAssertions": _QUALITY})]}),
        ("dataQualityAssertions", {"outputs": [{**ds("o"), "outputFacets": {"dataQualityAssertions": _QUALITY}}]}),
        ("columnLineage", {"outputs": [ds("stg", facets={"columnLineage": _LINEAGE})]}),
    ],
)
def test_each_projected_facet_alone_makes_its_row(name: str, where: dict[str, Any]) -> None:
    """The cheap test of whether an event carries facets finds each of them where it may be sent."""
    rows, lineage = facet_rows(facet_event("f-1", "shop.stg", **where))
    assert [r.name for r in rows] + [c.facet.name for c in lineage] == [name]


@pytest.mark.parametrize("seed", [5, 6])
def test_sqlite_one_event_at_a_time_equals_batches(seed: int) -> None:
    """SQLite folds a batch into one row per run (and per job version) before its upserts: the graph
    is the one an event at a time gives, for batches in any order, with duplicates, of any size."""
    events, known_at = mixed_events(80, seed)
    pairs = list(zip(events, known_at, strict=True))
    one = SqliteLineageStore(":memory:")
    for e, k in pairs:
        one.apply([e], known_at=[k])
    want = one.dump()
    shuffled = random.Random(seed).sample(pairs, len(pairs))
    for order in (pairs, shuffled, shuffled[::-1] + pairs[: len(pairs) // 3]):
        for size in (97, len(order)):
            batched = SqliteLineageStore(":memory:")
            for i in range(0, len(order), size):
                chunk = order[i : i + size]
                batched.apply([e for e, _ in chunk], known_at=[k for _, k in chunk])
            assert batched.dump() == want


@pytest.fixture
def graph(neo4j: str) -> Iterator[Neo4jLineageStore]:
    store = Neo4jLineageStore(Neo4jConfig(uri=neo4j))
    store.reset()
    yield store
    store.close()


@pytest.mark.neo4j
@pytest.mark.parametrize("seed", [6, 7])
def test_neo4j_folded_batches_equal_one_event_at_a_time_and_sqlite(graph: Neo4jLineageStore, seed: int) -> None:
    events, known_at = mixed_events(60, seed)
    sqlite = SqliteLineageStore(":memory:")
    sqlite.apply(events, known_at=known_at)
    want = sqlite.dump()
    for e, k in zip(events, known_at, strict=True):
        graph.apply([e], known_at=[k])
    assert graph.dump() == want
    graph.reset()
    size = random.Random(seed).choice([37, 150])
    for i in range(0, len(events), size):
        graph.apply(events[i : i + size], known_at=known_at[i : i + size])
    assert graph.dump() == want
    graph.reset()
    graph.apply(events, known_at=known_at)  # the whole of it folded into one batch
    assert graph.dump() == want


def test_canonical_json_is_json_dumps_with_sorted_keys_and_compact_separators() -> None:
    """The shared encoder gives the text both stores always stored (keys, order keys, digests depend on it)."""
    values: list[Any] = [
        {"b": 1, "a": [1.5, -0.0, 1e300, 'é\u2028"\\', None, True, 2**62]},
        {"nested": {"z": {}, "y": [], "x": {"k": datetime(2026, 1, 1, tzinfo=UTC)}}},
        "plain",
        [],
    ]
    for value in values:
        assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
