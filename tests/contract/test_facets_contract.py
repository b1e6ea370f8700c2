"""Facets and column lineage: every store answers the same from the same OpenLineage events."""

from __future__ import annotations

import random

import pytest

from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph.contract import LineageBounds, LineageStore
from provgraph.graph.facets import (
    MAX_SCHEMA_FIELDS,
    MAX_SQL,
    MAX_STACK_TRACE,
    AssertionView,
    ErrorView,
    JobTypeView,
    SchemaFieldView,
    SourceCodeLocationView,
    SqlView,
)
from provgraph.graph.ids import NodeId, column_node_id
from provgraph.graph.projection import minted_version
from provgraph.graph.views import Direction
from tests.facet_events import DB, columns, ds, event, facet, mart_run, model_run


def test_standard_facets_are_answers_per_run_job_and_dataset_version(store: LineageStore) -> None:
    store.apply(model_run())
    found = store.facets(["run:stg-1", "job:dbt:shop.stg", f"dataset:{DB}:raw@unversioned", "run:nobody"])
    assert set(found) == {"run:stg-1", "job:dbt:shop.stg", f"dataset:{DB}:raw@unversioned"}
    run, job, raw = found["run:stg-1"], found["job:dbt:shop.stg"], found[f"dataset:{DB}:raw@unversioned"]
    assert run.error == ErrorView(message="division by zero", programming_language="SQL", stack_trace="at line 3")
    assert run.data_quality == [
        AssertionView(dataset=f"dataset:{DB}:raw", assertion="not_null", column="id", success=True),
        AssertionView(dataset=f"dataset:{DB}:raw", assertion="row_count", column=None, success=False),
    ]
    assert job.sql == SqlView(query="select id, amount from raw", dialect="duckdb")
    assert job.job_type == JobTypeView(processing_type="BATCH", integration="DBT", job_type="MODEL")
    assert job.source_code_location == SourceCodeLocationView(
        type="git",
        url="https://git.example/shop",
        repo_url="https://git.example/shop.git",
        path="models/stg.sql",
        version="abc123",
        tag=None,
        branch="main",
    )
    assert raw.schema_fields == [
        SchemaFieldView(name="id", type="INTEGER", description="key"),
        SchemaFieldView(name="addr", type="STRUCT"),
        SchemaFieldView(name="addr.city", type="VARCHAR"),
    ]
    assert run.sql is None and job.error is None and raw.data_quality == []


def test_the_latest_event_describes_a_job_whatever_the_arrival_order(store: LineageStore) -> None:
    events = [*model_run("stg-1", 0, "select 1"), *model_run("stg-2", 60, "select 2")]
    for seed in range(3):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        store.reset()
        store.apply(shuffled[:2])
        store.apply(shuffled[2:] + shuffled[:1])
        assert store.facets(["job:dbt:shop.stg"])["job:dbt:shop.stg"].sql == SqlView(query="select 2", dialect="duckdb")
        dump = store.dump()
        store.reset()
        store.apply(events)
        assert store.dump() == dump


def test_facets_are_bounded_and_malformed_parts_left_out(store: LineageStore) -> None:
    huge_schema = facet(fields=[{"name": f"c{i}", "type": "INT"} for i in range(MAX_SCHEMA_FIELDS + 5)])
    big = event(
        "big-1",
        "shop.big",
        job_facets={"sql": facet(query="x" * (MAX_SQL + 10)), "jobType": "not an object"},
        run_facets={
            "errorMessage": facet(message="m", programmingLanguage="python", stackTrace="t" * (MAX_STACK_TRACE * 2))
        },
        outputs=[ds("big", facets={"schema": huge_schema, "columnLineage": facet(fields=["nonsense"])})],
    )
    store.apply([big])
    written = f"dataset:{DB}:big@{minted_version('big-1')}"  # no version facet: one minted per run
    found = store.facets(["job:dbt:shop.big", "run:big-1", written])
    sql = found["job:dbt:shop.big"].sql
    assert sql is not None and len(sql.query) == MAX_SQL and sql.query.endswith("…")
    assert found["job:dbt:shop.big"].job_type is None
    trace = found["run:big-1"].error
    assert trace is not None and trace.stack_trace is not None
    assert len(trace.stack_trace) == MAX_STACK_TRACE and trace.stack_trace.startswith("…t")
    assert len(found[written].schema_fields or []) == MAX_SCHEMA_FIELDS
    graph = store.column_lineage(NodeId.dataset(DB, "big"), "c1", Direction.UPSTREAM)
    assert [n.id for n in graph.nodes] == [column_node_id(f"dataset:{DB}:big", "c1")] and graph.edges == []


def col(name: str, field: str) -> str:
    return column_node_id(f"dataset:{DB}:{name}", field)


def test_column_lineage_walks_both_ways_with_transformations(store: LineageStore) -> None:
    store.apply([*model_run(), *mart_run()])
    up = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM)
    assert [(n.id, n.hop, n.field) for n in up.nodes] == [
        (col("mart", "total"), 0, "total"),
        (col("stg", "amount_usd"), 1, "amount_usd"),
        (col("stg", "id"), 1, "id"),
        (col("raw", "amount"), 2, "amount"),
        (col("raw", "id"), 2, "id"),
    ]
    assert [(e.source, e.target, e.transformations[0].subtype) for e in up.edges] == [
        (col("raw", "amount"), col("stg", "amount_usd"), "IDENTITY"),
        (col("raw", "id"), col("stg", "id"), "IDENTITY"),
        (col("stg", "amount_usd"), col("mart", "total"), "AGGREGATION"),
        (col("stg", "id"), col("mart", "total"), "AGGREGATION"),
    ]
    assert up.nodes[1].dataset == f"dataset:{DB}:stg" and not up.partial
    down = store.column_lineage(NodeId.dataset(DB, "raw", "unversioned"), "id", Direction.DOWNSTREAM)
    assert [n.id for n in down.nodes] == [col("raw", "id"), col("stg", "id"), col("mart", "id"), col("mart", "total")]
    assert not down.partial


def test_column_walk_says_what_cut_it(store: LineageStore) -> None:
    store.apply([*model_run(), *mart_run()])
    shallow = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM, depth=1)
    assert (shallow.partial, shallow.partial_reasons) == (True, ["depth 1 reached with columns left to visit"])
    exact = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM, depth=2)
    assert not exact.partial
    narrow = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM, fan_out=1)
    assert narrow.partial_reasons == [f"fan-out limit of 1 cut the neighbours of {col('mart', 'total')}"]
    assert [n.id for n in narrow.nodes] == [col("mart", "total"), col("stg", "amount_usd"), col("raw", "amount")]
    store.bounds = LineageBounds(max_nodes=2)
    capped = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM)
    assert capped.partial_reasons == ["node limit of 2 reached at hop 1"] and len(capped.nodes) == 2


def test_the_latest_column_lineage_of_an_output_replaces_the_older(store: LineageStore) -> None:
    newer = ds("mart", facets={"columnLineage": columns({"total": [(DB, "stg", "id")]})})
    later = event("mart-2", "shop.mart", minutes=30, inputs=[ds("stg")], outputs=[newer])
    for batches in ([[*model_run(), *mart_run()], [later]], [[later], [*model_run(), *mart_run()]]):
        store.reset()
        for batch in batches:
            store.apply(batch)
        up = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM, depth=1)
        assert [e.source for e in up.edges] == [col("stg", "id")]


def test_a_later_run_that_does_not_complete_does_not_replace_column_lineage(store: LineageStore) -> None:
    """Declared is not written: a FAIL (or a RUNNING whose run never ends) sent after a COMPLETE run's
    column lineage does not replace it, in either arrival order."""
    bad = ds("mart", facets={"columnLineage": columns({"total": [(DB, "stg", "bad_col")]})})
    failed = event("mart-2", "shop.mart", minutes=30, event_type="FAIL", inputs=[ds("stg")], outputs=[bad])
    running = event("mart-3", "shop.mart", minutes=40, event_type="RUNNING", inputs=[ds("stg")], outputs=[bad])
    for batches in ([[*model_run(), *mart_run()], [failed, running]], [[failed, running], [*model_run(), *mart_run()]]):
        store.reset()
        for batch in batches:
            store.apply(batch)
        up = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM, depth=1)
        assert col("stg", "bad_col") not in [e.source for e in up.edges] and up.edges


def test_column_lineage_refuses_another_projects_artifacts_and_unknown_columns(store: LineageStore) -> None:
    out = ds("t", facets={"columnLineage": columns({"a": [("store://other", "secret", "x"), (DB, "src", "a")]})})
    store.apply([event("r-1", "j", outputs=[out], namespace="mine")])
    up = store.column_lineage(NodeId.dataset(DB, "t"), "a", Direction.UPSTREAM)
    assert [e.source for e in up.edges] == [col("src", "a")]
    with pytest.raises(NotFound, match="no such column: 'a' of dataset:duckdb://warehouse:nowhere"):
        store.column_lineage(NodeId.dataset(DB, "nowhere"), "a", Direction.UPSTREAM)
    with pytest.raises(ConfigError, match="column lineage starts at a dataset, not a run"):
        store.column_lineage(NodeId.run("r-1"), "a", Direction.UPSTREAM)
    # a column named only as an input field is known; a dataset without column lineage is a lone node
    assert [n.id for n in store.column_lineage(NodeId.dataset(DB, "src"), "a", Direction.DOWNSTREAM).nodes] == [
        col("src", "a"),
        col("t", "a"),
    ]
    assert len(store.column_lineage(NodeId.dataset(DB, "t"), "zzz", Direction.UPSTREAM).nodes) == 1


def test_run_ids_resolve_by_prefix(store: LineageStore) -> None:
    store.apply([*model_run("abc-1"), *model_run("abc-2"), *model_run("abd-1"), *model_run("ab%_")])
    assert store.run_ids_with_prefix("abc") == ["abc-1", "abc-2"]
    assert store.run_ids_with_prefix("abd-1") == ["abd-1"]
    assert store.run_ids_with_prefix("ab%") == ["ab%_"]
    assert store.run_ids_with_prefix("ab", limit=2) == ["ab%_", "abc-1"]
    assert store.run_ids_with_prefix("zz") == []


def test_a_dropped_table_is_not_a_new_version_of_it(store: LineageStore) -> None:
    """openlineage-sql sends `lifecycleStateChange: DROP` for `DROP TABLE`: that output is no write,
    so the table's latest version and what produced it stay those of the run that built it."""
    created = event("build-1", "shop.build", outputs=[ds("t")])
    drop = facet(lifecycleStateChange="DROP")
    dropped = event("drop-1", "shop.drop", minutes=10, outputs=[ds("t", facets={"lifecycleStateChange": drop})])
    for order in ([created, dropped], [dropped, created]):
        store.reset()
        store.apply(order)
        producer = store.produced_by(DB, "t")
        assert producer is not None and producer.run_id == "build-1"
        run = store.run("drop-1")
        assert run is not None and run.outputs == []
