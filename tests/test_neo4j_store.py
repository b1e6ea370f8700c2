"""Neo4j store beyond the shared contract: SQLite parity of the canonical dump, the graph model's
links between runs, schema, and driver errors translated at the module edge."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import neo4j
import pytest

from provgraph.events.errors import Inadmissible, NotFound, ProjectionError
from provgraph.events.facets import CachedFromRunFacet, ReproducesRunFacet
from provgraph.events.facets.standard import JobRef, ParentRunFacet, RunRef
from provgraph.events.model import EventType, Run, RunEvent
from provgraph.events.synthetic import EPOCH, chain, content_hash, dataset, run_events, workload
from provgraph.graph import neo4j_cypher, neo4j_facets, neo4j_store
from provgraph.graph.contract import NOW, AsOf, LineageBounds
from provgraph.graph.ids import NodeId
from provgraph.graph.neo4j_config import Neo4jConfig, Neo4jUnavailable
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction
from tests.facet_events import mart_run, model_run
from tests.lineage_oracle import oracle_lineage
from tests.test_lineage_walk import _events as lineage_walk_events
from tests.test_lineage_walk import _starts as lineage_walk_starts

pytestmark = pytest.mark.neo4j


@pytest.fixture
def graph(neo4j: str) -> Iterator[Neo4jLineageStore]:
    store = Neo4jLineageStore(Neo4jConfig(uri=neo4j))
    store.reset()
    yield store
    store.close()


def _with_facets(event: RunEvent, **facets: object) -> RunEvent:
    return event.model_copy(
        update={"run": Run(run_id=event.run.run_id, facets=event.run.facets.model_copy(update=facets))}
    )


def test_sqlite_and_neo4j_dumps_are_equal_for_the_same_workload(graph: Neo4jLineageStore) -> None:
    events = list(workload(300))
    random.Random(7).shuffle(events)
    graph.bounds = LineageBounds(time_budget_s=120)  # the walk below may be a new server's first: planning
    sqlite = SqliteLineageStore(":memory:")
    for i in range(0, len(events), 250):  # different batch boundaries on each side
        graph.apply(events[i : i + 250])
    for i in range(0, len(events), 700):
        sqlite.apply(events[i : i + 700])
    expected = sqlite.dump()
    assert len(expected["run"]) == 300 and len(expected["read"]) == 600
    assert graph.dump() == expected
    # and the views built on top agree too
    some = expected["run"][17]["run_id"]
    assert graph.run(some) == sqlite.run(some)
    start = NodeId.dataset("file", "/data/out299.parquet", content_hash("synthetic-out299"))
    assert graph.lineage(start, Direction.UPSTREAM, depth=10) == sqlite.lineage(start, Direction.UPSTREAM, depth=10)


def test_a_batch_too_large_for_one_transaction_is_written_in_chunks(
    graph: Neo4jLineageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(neo4j_store, "MAX_ROWS_PER_TX", 7)
    events = list(workload(40))
    random.Random(5).shuffle(events)
    graph.apply(events)
    sqlite = SqliteLineageStore(":memory:")
    sqlite.apply(events)
    assert graph.dump() == sqlite.dump()


def test_a_chunked_batch_refuses_a_run_of_another_project_and_leaves_it_untouched(
    graph: Neo4jLineageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner check rides on MERGE_RUNS: in a batch written chunk by chunk, the chunk holding the
    hijacking event is refused whole and rolls back, so the stored run keeps its project and state."""
    graph.apply(run_events("own-1", namespace="demo", job="train"))
    before = graph.dump()["run"]
    monkeypatch.setattr(neo4j_store, "MAX_ROWS_PER_TX", 7)
    hijack = run_events("own-1", namespace="mallory", job="train", params={"lr": 9.9}, final=EventType.FAIL)
    with pytest.raises(
        Inadmissible,
        match="event refused by the graph: run 'own-1' belongs to project 'demo';"
        " an event with job namespace 'mallory' may not write to it",
    ):
        graph.apply([*workload(20), hijack[-1]])
    assert [r for r in graph.dump()["run"] if r["run_id"] == "own-1"] == before
    assert graph.run_owners(["own-1"]) == {"own-1": "demo"}


def test_a_batch_is_one_statement_in_one_transaction(
    graph: Neo4jLineageStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Round 13: a batch's parts (jobs, job versions, dataset versions, runs, facets, column lineage,
    links between runs, the progress) are subqueries of one statement, where each was a statement of
    its own (8 here, 6 for a plain batch: BEGIN, 8 RUN + PULL, COMMIT); Neo4j's cost per statement
    was most of a small batch's (round 12). Same graph as SQLite's, the progress in that transaction."""
    events = [*model_run(), *mart_run(), *workload(5)]
    batch = graph.prepare(events)
    assert all(batch[part] for part, _ in (*neo4j_cypher.WRITES, *neo4j_facets.WRITES)), batch
    caplog.set_level(logging.DEBUG, logger="neo4j.io")
    caplog.clear()
    graph.apply_prepared(batch, offsets={("t", 0): 12})
    kinds = {"BEGIN", "RUN", "PULL", "COMMIT", "ROLLBACK"}
    sent = [m.split(" C: ", 1)[1].split()[0] for m in caplog.messages if " C: " in m]
    assert [k for k in sent if k in kinds] == ["BEGIN", "RUN", "PULL", "COMMIT"], sent
    sqlite = SqliteLineageStore(":memory:")
    sqlite.apply(events)
    assert graph.dump() == sqlite.dump()
    assert graph.kafka_progress() == {("t", 0): 12}


def test_batches_of_any_size_share_one_plan(graph: Neo4jLineageStore) -> None:
    """Neo4j caches a plan per size class of each list parameter (0, 1, up to 10, 100, ...): the batch's
    lists travel in one map, so batches of 1, 4 and 30 runs, with and without facets, reuse one plan
    (planning the batch's statement costs seconds; 8 lists would make dozens of size combinations)."""
    with graph._driver.session() as s:
        s.run("CALL db.clearQueryCaches()").consume()
        graph.apply(list(workload(1, namespace="one")))
        graph.apply([*model_run(), *workload(4, namespace="four")])
        graph.apply_prepared(graph.prepare(list(workload(30, namespace="thirty"))), offsets={("t", 0): 5})
        cleared = s.run("CALL db.clearQueryCaches()").single(strict=True)[0]
    assert re.fullmatch(r"Query caches successfully cleared of 1 queries\.", cleared), cleared


def test_warming_plans_the_batch_statement_a_batch_then_uses_and_writes_nothing(graph: Neo4jLineageStore) -> None:
    """The projector plans `BATCH` at start (seconds on a fresh server), not inside its first batch."""
    with graph._driver.session() as s:
        s.run("CALL db.clearQueryCaches()").consume()
        graph.warm_writes()
        warmed = s.run("CALL db.clearQueryCaches()").single(strict=True)[0]
        graph.warm_writes()
        graph.apply(list(workload(3, namespace="warm")))
        used = s.run("CALL db.clearQueryCaches()").single(strict=True)[0]
    assert warmed == used == "Query caches successfully cleared of 1 queries."
    graph.reset()
    graph.warm_writes()
    assert graph.dump() == SqliteLineageStore(":memory:").dump()


def test_dump_types_match_sqlite_for_every_column(graph: Neo4jLineageStore) -> None:
    """NULLs as None, git_dirty as 0/1, integer sizes and steps, float metric values."""
    events = run_events(
        "typed-1",
        inputs=[dataset("file", "/t/in.csv", content_hash("in"), "data", size=12)],
        metrics=[("loss", 1, 3)],  # an int value is stored as a float, as SQLite's REAL does
    )
    code = events[0].job.facets.code
    assert code is not None
    job_facets = events[0].job.facets.model_copy(update={"code": code.model_copy(update={"git_dirty": True})})
    events = [e.model_copy(update={"job": e.job.model_copy(update={"facets": job_facets})}) for e in events]
    sqlite = SqliteLineageStore(":memory:")
    sqlite.apply(events)
    graph.apply(events)
    got, want = graph.dump(), sqlite.dump()
    assert got == want
    assert got["job_version"][0]["git_dirty"] == 1 and got["job_version"][0]["git_commit"] is None
    assert type(got["metric"][0]["value"]) is float and type(got["metric"][0]["step"]) is int
    assert graph.run("typed-1").job_version.git_dirty is True  # type: ignore[union-attr]


@pytest.mark.parametrize("child_first", [True, False])
def test_child_and_reproduction_links_whichever_run_arrives_first(graph: Neo4jLineageStore, child_first: bool) -> None:
    parent = run_events("pipe-1", job="pipeline", start=EPOCH)
    child = [
        _with_facets(
            e, parent=ParentRunFacet(run=RunRef(run_id="pipe-1"), job=JobRef(namespace="synthetic", name="pipeline"))
        )
        for e in run_events("step-1", job="step", start=EPOCH + timedelta(seconds=1))
    ]
    repro = run_events("pipe-1-r", job="pipeline", start=EPOCH + timedelta(hours=1))
    repro[-1] = _with_facets(repro[-1], reproduces=ReproducesRunFacet(run_id="pipe-1", verdict="REPRODUCED"))
    batches = [child, repro, parent] if child_first else [parent, child, repro]
    for batch in batches:
        graph.apply(batch)
    rows = graph._query(
        "MATCH (c:Run)-[:CHILD_OF]->(p:Run) RETURN c.run_id AS c, p.run_id AS p"
        " UNION ALL MATCH (c:Run)-[e:REPRODUCES]->(p:Run) RETURN c.run_id + ':' + e.verdict AS c, p.run_id AS p"
    )
    assert sorted((r["c"], r["p"]) for r in rows) == [("pipe-1-r:REPRODUCED", "pipe-1"), ("step-1", "pipe-1")]
    assert graph.run("step-1").parent_run_id == "pipe-1"  # type: ignore[union-attr]
    model = graph._query(
        "MATCH (:Project {name: 'synthetic'})-[:HAS_JOB]->(j:Job {name: 'step'})-[:HAS_VERSION]->(v:JobVersion)"
        "<-[:EXECUTED]-(r:Run) RETURN r.run_id AS run"
    )
    assert [r["run"] for r in model] == ["step-1"]


def test_schema_has_uniqueness_constraints_on_natural_keys(graph: Neo4jLineageStore) -> None:
    rows = graph._query("SHOW CONSTRAINTS YIELD labelsOrTypes, properties, type RETURN *")
    unique = {(r["labelsOrTypes"][0], tuple(r["properties"])) for r in rows if r["type"] == "UNIQUENESS"}
    assert {
        ("Project", ("name",)),
        ("Job", ("namespace", "name")),
        ("JobVersion", ("namespace", "name", "code_hash")),
        ("Run", ("run_id",)),
        ("Dataset", ("namespace", "name")),
        ("DatasetVersion", ("node_id",)),
    } <= unique
    Neo4jLineageStore(graph.config).close()  # creating the schema again is a no-op


def test_node_limit_and_time_budget_mark_the_walk_partial(graph: Neo4jLineageStore) -> None:
    graph.apply(chain(6))
    end = NodeId.run("r-000005")
    graph.bounds = LineageBounds(max_nodes=4)
    g = graph.lineage(end, Direction.UPSTREAM, depth=10)
    assert g.partial and len(g.nodes) == 4 and any("node limit" in r for r in g.cut_reasons)
    assert g.partial_reasons == ["nodes"]
    graph.bounds = LineageBounds(time_budget_s=0.0)
    g = graph.lineage(end, Direction.UPSTREAM, depth=10)
    assert g.partial and [n.id for n in g.nodes] == ["run:r-000005"] and "time budget" in g.cut_reasons[0]
    assert g.partial_reasons == ["time"]


def test_a_refused_write_is_a_projection_error_and_writes_nothing(graph: Neo4jLineageStore) -> None:
    ok = run_events("ok-1")
    huge = run_events("huge-1", inputs=[dataset("file", "/x" * 20_000, content_hash("x"), "data")])
    with pytest.raises(ProjectionError, match="too large") as info:
        graph.apply(ok + huge)
    assert not isinstance(info.value, Neo4jUnavailable)
    assert graph.run("ok-1") is None  # one transaction: all or nothing


def test_an_unreachable_server_is_neo4j_unavailable() -> None:
    with pytest.raises(Neo4jUnavailable, match=r"Neo4j connect to bolt://127\.0\.0\.1:1 failed"):
        Neo4jLineageStore(Neo4jConfig(uri="bolt://127.0.0.1:1", connection_timeout_s=2))


@pytest.mark.parametrize("cached_first", [True, False])
def test_cached_from_edge_whichever_run_arrives_first(graph: Neo4jLineageStore, cached_first: bool) -> None:
    original = run_events("step-1", job="step", start=EPOCH)
    cached = [
        _with_facets(e, cached_from=CachedFromRunFacet(run_id="step-1", cache_key="sha256:" + "a" * 64))
        for e in run_events("step-2", job="step", start=EPOCH + timedelta(hours=1))
    ]
    for batch in [cached, original] if cached_first else [original, cached]:
        graph.apply(batch)
    rows = graph._query("MATCH (c:Run)-[:CACHED_FROM]->(o:Run) RETURN c.run_id AS c, o.run_id AS o")
    assert [(r["c"], r["o"]) for r in rows] == [("step-2", "step-1")]


@pytest.mark.parametrize("hop_hits", [1, 300])
def test_a_hop_asked_in_slices_answers_as_one_statement(
    graph: Neo4jLineageStore, monkeypatch: pytest.MonkeyPatch, hop_hits: int
) -> None:
    """A frontier wider than `HOP_HITS` allows is asked in slices, and a statement looks ahead over
    fewer nodes and hits (round 9; the walk asks again for the nodes it lacks): same answers, fan-out
    cuts included."""
    graph.apply(list(workload(120)))
    graph.bounds = LineageBounds(time_budget_s=120)  # many small statements on a loaded test machine
    walks = [
        (NodeId.dataset("file", "/data/out119.parquet", content_hash("synthetic-out119")), Direction.UPSTREAM, 100),
        (NodeId.dataset("file", "/data/out0.parquet", content_hash("synthetic-out0")), Direction.DOWNSTREAM, 100),
        (NodeId.dataset("file", "/data/out119.parquet", content_hash("synthetic-out119")), Direction.UPSTREAM, 1),
    ]
    whole = [graph.lineage(start, way, depth=6, fan_out=fan) for start, way, fan in walks]
    assert len(whole[0].nodes) > 10 and len(whole[1].nodes) > 10 and "fanOut" in whole[2].cut_codes
    monkeypatch.setattr(neo4j_store, "HOP_HITS", hop_hits)  # 1: one frontier node per statement
    assert [graph.lineage(start, way, depth=6, fan_out=fan) for start, way, fan in walks] == whole


def test_a_walk_asks_its_hops_in_one_statement(graph: Neo4jLineageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Round 9: a statement answers up to `MAX_CHAIN` hops of a walk, not one: with the start
    node's and the depth probe's, a walk of depth 6 (12 hops) runs at most 2 + 12 / MAX_CHAIN
    statements, and answers as one statement a hop does (10 here)."""
    graph.apply(list(workload(120)))
    graph.bounds = LineageBounds(time_budget_s=120)
    start = NodeId.dataset("file", "/data/out119.parquet", content_hash("synthetic-out119"))
    statements: list[str] = []
    run = neo4j.Transaction.run

    def counted(self: neo4j.Transaction, query: Any, parameters: Any = None, **kw: Any) -> Any:
        statements.append(query)
        return run(self, query, parameters, **kw)

    monkeypatch.setattr(neo4j.Transaction, "run", counted)
    got = graph.lineage(start, Direction.UPSTREAM, depth=6)
    most = 2 + -(-12 // neo4j_store.LOOKAHEAD)
    assert len(statements) <= most and len(got.nodes) > 10
    monkeypatch.setattr(neo4j_store, "LOOKAHEAD", 1)
    statements.clear()
    assert graph.lineage(start, Direction.UPSTREAM, depth=6) == got
    assert len(statements) > most


@pytest.mark.parametrize("seed", [5, 6])
def test_walks_as_of_now_answer_as_the_oracle_and_as_the_as_of_statements(
    graph: Neo4jLineageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """A walk as of now runs hop statements that read no edge or run-end times (round 8); on graphs
    with failed runs, unversioned reads (resolved or not) and reads under two bindings, its answers
    are the oracle's (the round-4 SQLite walk) and those of the as-of statements at the open bound."""
    events = lineage_walk_events(seed)
    rng = random.Random(seed)
    known = [e.event_time + timedelta(seconds=rng.randrange(60)) for e in events]
    graph.apply(events, known_at=known)
    graph.bounds = LineageBounds(time_budget_s=120)  # a new server's first walks plan their statements
    sqlite = SqliteLineageStore(tmp_path / "g.db")
    sqlite.apply(events, known_at=known)
    walks = []
    for _ in range(12):
        for start in lineage_walk_starts(rng, seed):
            walks.append(
                (start, rng.choice(list(Direction)), rng.randrange(8), rng.choice((1, 2, 100)), rng.random() < 0.5)
            )
    answers = []
    for start, way, depth, fan, failed in walks:
        try:
            want = oracle_lineage(sqlite, start, way, depth, fan, include_failed=failed)
        except NotFound:
            continue
        got = graph.lineage(start, way, depth, fan, include_failed=failed)
        assert got.model_dump() == want.model_dump(), (start, way, depth, fan, failed)
        answers.append(((start, way, depth, fan, failed), got))
    kinds = {e.kind for _, g in answers for e in g.edges}
    bindings = {e.binding for _, g in answers for e in g.edges}
    assert "ATTEMPTED" in kinds and "any" in bindings and len(answers) > 40, (kinds, bindings)
    # the same walks through the as-of statements (the open bound, "~", sees every stored time)
    for key in list(neo4j_cypher.HOP):
        if key[2]:
            monkeypatch.setitem(neo4j_cypher.HOP, key, neo4j_cypher.HOP[(key[0], key[1], False)])
    for way4 in list(neo4j_cypher.CHAIN):
        if way4[2]:
            monkeypatch.setitem(neo4j_cypher.CHAIN, way4, neo4j_cypher.CHAIN[(way4[0], way4[1], False, way4[3])])
    for (start, way, depth, fan, failed), got in answers:
        assert graph.lineage(start, way, depth, fan, include_failed=failed) == got
    # and with statements of one hop, or of three (round 9: the default asks a walk's hops in one)
    for lookahead in (1, 3):
        monkeypatch.setattr(neo4j_store, "LOOKAHEAD", lookahead)
        for (start, way, depth, fan, failed), got in answers[::3]:
            assert graph.lineage(start, way, depth, fan, include_failed=failed) == got


def _types(params: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """What Neo4j keys a cached plan by besides the text: each parameter's type (a list's, of its items)."""
    return frozenset(
        (k, type(v).__name__ + (",".join(sorted({type(x).__name__ for x in v})) if isinstance(v, list) else ""))
        for k, v in params.items()
    )


def test_the_warm_up_plans_every_statement_a_walk_runs(
    graph: Neo4jLineageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 11: `warm_walks` runs each statement a walk may run, with parameters of the same types
    (a plan is cached per text and parameter types), on nothing: walks from every kind of start, both
    ways, as of now and as of a time, with and without failed runs, run only statements it warmed."""
    events = list(workload(40))
    graph.apply(events)
    graph.bounds = LineageBounds(time_budget_s=120)
    asked: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    run = neo4j.Transaction.run

    def recorded(self: neo4j.Transaction, query: Any, parameters: Any = None, **kw: Any) -> Any:
        asked.add((query, _types({**(parameters or {}), **kw})))
        return run(self, query, parameters, **kw)

    monkeypatch.setattr(neo4j.Transaction, "run", recorded)
    last = events[-1]
    out = ("file", "/data/out39.parquet")
    starts = [
        NodeId.run(last.run.run_id),
        NodeId.job(last.job.namespace, last.job.name),
        NodeId.dataset(*out),
        NodeId.dataset(*out, content_hash("synthetic-out39")),
    ]
    for start in starts:
        for way in Direction:
            for at in (NOW, AsOf(as_of=last.event_time + timedelta(hours=1))):
                for failed in (False, True):
                    graph.lineage(start, way, depth=10, include_failed=failed, at=at)
    warmed = {(cypher, _types(params)) for cypher, params in graph._walk_statements()}
    assert asked <= warmed, [q for q, _ in asked - warmed]
    assert len({q for q, _ in asked}) >= 12  # the walks above ran most of the statements
    monkeypatch.setattr(neo4j.Transaction, "run", run)
    assert graph.warm_walks() == len(warmed)


def test_a_read_is_an_auto_commit_transaction(graph: Neo4jLineageStore, caplog: pytest.LogCaptureFixture) -> None:
    """Round 12: a read (`run`, a page of runs, tombstones) sends RUN and PULL in one round trip, not
    a managed transaction's BEGIN … COMMIT (the commit's extra round trip cost the API ~2 ms of CPU and
    Neo4j ~2 ms a `run(id)` query); it answers as before and still sees what was just written."""
    events = list(workload(3))
    graph.apply(events)
    run_id = events[-1].run.run_id
    caplog.set_level(logging.DEBUG, logger="neo4j.io")
    caplog.clear()
    view = graph.run(run_id)
    page = graph.runs(first=10)
    sent = [m for m in caplog.messages if " C: " in m]
    assert view is not None and view.run_id == run_id and run_id in {r.run_id for r in page}
    assert sum(" C: RUN " in m for m in sent) == 2, sent
    assert not [m for m in sent if " C: BEGIN" in m or " C: COMMIT" in m], sent
    graph.advance_progress({("t", 0): 7})  # written through the driver's managed transaction
    assert graph.kafka_progress() == {("t", 0): 7}
