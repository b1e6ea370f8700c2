"""Facets are producer-controlled: hostile ones stay bounded, cannot forge another project's lineage,
and cannot make two columns one. Both stores."""

from __future__ import annotations

import pytest

from provgraph.events.errors import NotFound
from provgraph.graph.contract import LineageStore
from provgraph.graph.facets import MAX_ASSERTIONS, MAX_NESTING, MAX_SQL, MAX_STACK_TRACE
from provgraph.graph.ids import NodeId, column_node_id
from provgraph.graph.views import Direction
from tests.facet_events import DB, columns, ds, event, facet


def test_a_run_cannot_claim_another_projects_artifact_feeds_its_columns(store: LineageStore) -> None:
    forged = ds("mine", facets={"columnLineage": columns({"a": [("store://victim", "model", "w"), (DB, "src", "a")]})})
    store.apply([event("attacker-1", "steal", namespace="attacker", outputs=[forged])])
    victim = NodeId.dataset("store://victim", "model")
    with pytest.raises(NotFound, match=r"^no such column: 'w' of dataset:store://victim:model$"):
        store.column_lineage(victim, "w", Direction.DOWNSTREAM)
    up = store.column_lineage(NodeId.dataset(DB, "mine"), "a", Direction.UPSTREAM)
    assert [n.dataset for n in up.nodes] == [f"dataset:{DB}:mine", f"dataset:{DB}:src"]


def test_oversized_and_deep_facets_are_stored_bounded(store: LineageStore) -> None:
    deep: list[dict[str, object]] = [{"name": "leaf", "type": "INT"}]
    for level in range(MAX_NESTING + 5):
        deep = [{"name": f"l{level}", "type": "STRUCT", "fields": deep}]
    store.apply(
        [
            event(
                "big-1",
                "huge",
                job_facets={"sql": facet(query="s" * (3 * 1024 * 1024))},
                run_facets={"errorMessage": facet(message="m", programmingLanguage="x", stackTrace="t" * 3_000_000)},
                inputs=[
                    ds(
                        "in",
                        facets={"schema": facet(fields=deep)},
                        input_facets={
                            "dataQualityAssertions": facet(
                                assertions=[{"assertion": f"a{i}", "success": True} for i in range(50_000)]
                            )
                        },
                    )
                ],
            )
        ]
    )
    found = store.facets(["job:dbt:huge", "run:big-1", f"dataset:{DB}:in@unversioned"])
    sql, error = found["job:dbt:huge"].sql, found["run:big-1"].error
    assert sql is not None and len(sql.query) == MAX_SQL
    assert error is not None and error.stack_trace is not None and len(error.stack_trace) == MAX_STACK_TRACE
    assert len(found["run:big-1"].data_quality) == MAX_ASSERTIONS
    names = [f.name for f in found[f"dataset:{DB}:in@unversioned"].schema_fields or []]
    assert len(names) == MAX_NESTING + 1 and names[-1].count(".") == MAX_NESTING


def test_field_and_dataset_names_with_separators_never_share_a_column_id(store: LineageStore) -> None:
    # dataset "x" field "a#b" and dataset "x#a" field "b" would both read "x#a#b" unescaped
    out = ds(
        "out",
        facets={"columnLineage": columns({"f": [(DB, "x", "a#b"), (DB, "x#a", "b"), (DB, "x", "a%23b")]})},
    )
    store.apply([event("sep-1", "sep", outputs=[out])])
    up = store.column_lineage(NodeId.dataset(DB, "out"), "f", Direction.UPSTREAM)
    ids = [n.id for n in up.nodes]
    assert len(ids) == len(set(ids)) == 4
    assert column_node_id(f"dataset:{DB}:x", "a#b") == f"column:{DB}:x#a%23b"
    assert column_node_id(f"dataset:{DB}:x", "a%23b") == f"column:{DB}:x#a%2523b"
