"""Facets and column lineage: every store answers the same from the same OpenLineage events."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest

from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.model import RunEvent
from provgraph.events.serde import loads
from provgraph.events.synthetic import EPOCH
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
from provgraph.graph.views import Direction

DB = "duckdb://warehouse"


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/dbt", "_schemaURL": "x"} | fields


def _columns(mapping: dict[str, list[tuple[str, str, str]]], transformation: str = "IDENTITY") -> dict[str, Any]:
    return _facet(
        fields={
            out: {
                "inputFields": [
                    {
                        "namespace": ns,
                        "name": name,
                        "field": field,
                        "transformations": [{"type": "DIRECT", "subtype": transformation, "masking": False}],
                    }
                    for ns, name, field in inputs
                ]
            }
            for out, inputs in mapping.items()
        }
    )


def _event(
    run_id: str,
    job: str,
    *,
    minutes: int = 0,
    event_type: str = "COMPLETE",
    job_facets: dict[str, Any] | None = None,
    run_facets: dict[str, Any] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    namespace: str = "dbt",
) -> RunEvent:
    raw = {
        "eventType": event_type,
        "eventTime": (EPOCH + timedelta(minutes=minutes)).isoformat(),
        "run": {"runId": run_id, "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/dbt",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    return loads(json.dumps(raw).encode())


def _ds(name: str, *, facets: dict[str, Any] | None = None, input_facets: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"namespace": DB, "name": name, "facets": facets or {}, "inputFacets": input_facets or {}}


SCHEMA = _facet(
    fields=[
        {"name": "id", "type": "INTEGER", "description": "key"},
        {"name": "addr", "type": "STRUCT", "fields": [{"name": "city", "type": "VARCHAR"}]},
        {"name": 7, "type": "broken"},  # not a name: left out
    ]
)


def _model_run(run_id: str = "stg-1", minutes: int = 0, query: str = "select id, amount from raw") -> list[RunEvent]:
    jf = {
        "sql": _facet(query=query, dialect="duckdb"),
        "jobType": _facet(processingType="BATCH", integration="DBT", jobType="MODEL"),
        "sourceCodeLocation": _facet(
            type="git", url="https://git.example/shop", repoUrl="https://git.example/shop.git", path="models/stg.sql",
            version="abc123", branch="main",
        ),
    }
    raw = _ds(
        "raw",
        facets={"schema": SCHEMA},
        input_facets={
            "dataQualityAssertions": _facet(
                assertions=[
                    {"assertion": "not_null", "success": True, "column": "id"},
                    {"assertion": "row_count", "success": False},
                    {"assertion": "bad", "success": "yes"},  # not a boolean: left out
                ]
            )
        },
    )
    stg = _ds(
        "stg",
        facets={
            "schema": _facet(fields=[{"name": "id", "type": "INTEGER"}, {"name": "amount_usd", "type": "DOUBLE"}]),
            "columnLineage": _columns({"id": [(DB, "raw", "id")], "amount_usd": [(DB, "raw", "amount")]}),
        },
    )
    return [
        _event(run_id, "shop.stg", minutes=minutes, event_type="START", job_facets=jf, inputs=[raw], outputs=[stg]),
        _event(
            run_id,
            "shop.stg",
            minutes=minutes + 1,
            event_type="FAIL",
            run_facets={
                "errorMessage": _facet(message="division by zero", programmingLanguage="SQL", stackTrace="at line 3")
            },
            inputs=[raw],
            outputs=[stg],
        ),
    ]


def _mart_run() -> list[RunEvent]:
    mart = _ds(
        "mart",
        facets={
            "columnLineage": _columns(
                {"total": [(DB, "stg", "amount_usd"), (DB, "stg", "id")], "id": [(DB, "stg", "id")]}, "AGGREGATION"
            )
        },
    )
    return [_event("mart-1", "shop.mart", minutes=5, inputs=[_ds("stg")], outputs=[mart])]


def test_standard_facets_are_answers_per_run_job_and_dataset_version(store: LineageStore) -> None:
    store.apply(_model_run())
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
        type="git", url="https://git.example/shop", repo_url="https://git.example/shop.git", path="models/stg.sql",
        version="abc123", tag=None, branch="main",
    )
    assert raw.schema_fields == [
        SchemaFieldView(name="id", type="INTEGER", description="key"),
        SchemaFieldView(name="addr", type="STRUCT"),
        SchemaFieldView(name="addr.city", type="VARCHAR"),
    ]
    assert run.sql is None and job.error is None and raw.data_quality == []


def test_the_latest_event_describes_a_job_whatever_the_arrival_order(store: LineageStore) -> None:
    events = [*_model_run("stg-1", 0, "select 1"), *_model_run("stg-2", 60, "select 2")]
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
    huge_schema = _facet(fields=[{"name": f"c{i}", "type": "INT"} for i in range(MAX_SCHEMA_FIELDS + 5)])
    event = _event(
        "big-1",
        "shop.big",
        job_facets={"sql": _facet(query="x" * (MAX_SQL + 10)), "jobType": "not an object"},
        run_facets={"errorMessage": _facet(message="m", programmingLanguage="python", stackTrace="t" * (MAX_STACK_TRACE * 2))},
        outputs=[_ds("big", facets={"schema": huge_schema, "columnLineage": _facet(fields=["nonsense"])})],
    )
    store.apply([event])
    found = store.facets(["job:dbt:shop.big", "run:big-1", f"dataset:{DB}:big@unversioned"])
    sql = found["job:dbt:shop.big"].sql
    assert sql is not None and len(sql.query) == MAX_SQL and sql.query.endswith("…")
    assert found["job:dbt:shop.big"].job_type is None
    trace = found["run:big-1"].error
    assert trace is not None and trace.stack_trace is not None
    assert len(trace.stack_trace) == MAX_STACK_TRACE and trace.stack_trace.startswith("…t")
    assert len(found[f"dataset:{DB}:big@unversioned"].schema_fields or []) == MAX_SCHEMA_FIELDS
    graph = store.column_lineage(NodeId.dataset(DB, "big"), "c1", Direction.UPSTREAM)
    assert [n.id for n in graph.nodes] == [column_node_id(f"dataset:{DB}:big", "c1")] and graph.edges == []


def col(name: str, field: str) -> str:
    return column_node_id(f"dataset:{DB}:{name}", field)


def test_column_lineage_walks_both_ways_with_transformations(store: LineageStore) -> None:
    store.apply([*_model_run(), *_mart_run()])
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
    store.apply([*_model_run(), *_mart_run()])
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
    newer = _ds("mart", facets={"columnLineage": _columns({"total": [(DB, "stg", "id")]})})
    later = _event("mart-2", "shop.mart", minutes=30, inputs=[_ds("stg")], outputs=[newer])
    for batches in ([[*_model_run(), *_mart_run()], [later]], [[later], [*_model_run(), *_mart_run()]]):
        store.reset()
        for batch in batches:
            store.apply(batch)
        up = store.column_lineage(NodeId.dataset(DB, "mart"), "total", Direction.UPSTREAM, depth=1)
        assert [e.source for e in up.edges] == [col("stg", "id")]


def test_column_lineage_refuses_another_projects_artifacts_and_unknown_columns(store: LineageStore) -> None:
    out = _ds("t", facets={"columnLineage": _columns({"a": [("store://other", "secret", "x"), (DB, "src", "a")]})})
    store.apply([_event("r-1", "j", outputs=[out], namespace="mine")])
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
    store.apply([*_model_run("abc-1"), *_model_run("abc-2"), *_model_run("abd-1"), *_model_run("ab%_")])
    assert store.run_ids_with_prefix("abc") == ["abc-1", "abc-2"]
    assert store.run_ids_with_prefix("abd-1") == ["abd-1"]
    assert store.run_ids_with_prefix("ab%") == ["ab%_"]
    assert store.run_ids_with_prefix("ab", limit=2) == ["ab%_", "abc-1"]
    assert store.run_ids_with_prefix("zz") == []
