"""Facets and column lineage through GraphQL on both stores: exact answers, and what a scope hides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.graph.ids import column_node_id
from tests.facet_events import DB, columns, ds, event, mart_run, model_run
from tests.test_api import Api, store_settings

# Project "other" writes its own artifact from raw.id; "dbt" callers must not see that column.
OTHER = [
    event(
        "other-feat",
        "features",
        namespace="other",
        inputs=[ds("raw")],
        outputs=[
            {
                "namespace": "store://other",
                "name": "feat",
                "facets": {
                    "columnLineage": columns({"fid": [(DB, "raw", "id")]}),
                    "version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "sha256:" + "ab" * 32},
                },
            }
        ],
    )
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)], ids=["sqlite", "neo4j"]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    events = [*model_run(), *mart_run(), *OTHER]
    settings = store_settings(request.param, tmp_path_factory.mktemp(f"facets-{request.param}"), request, events)
    tokens = TokenStore(settings.tokens_db)
    try:
        made = {"dbt": tokens.create(["dbt"], name="dbt")[1], "all": tokens.create(["dbt", "other"], name="all")[1]}
    finally:
        tokens.close()
    with ServerThread(create_app(settings)) as url:
        yield Api(url, request.param, made)


def col(name: str, field: str) -> str:
    return column_node_id(f"dataset:{DB}:{name}", field)


FACETS = """query($ns: String!) {
  run(id: "stg-1") {
    state error { message programmingLanguage stackTrace }
    dataQuality { dataset assertion column success }
    job { sql sqlDialect jobType { processingType integration jobType }
          sourceCodeLocation { type url repoUrl path version tag branch } }
    inputs { name schema { name type description } }
    outputs { name }
  }
  datasetVersion(namespace: $ns, name: "stg", version: "unversioned") { schema { name type } }
}"""


def test_facets_answer_through_graphql(api: Api) -> None:
    data = api.data(FACETS, token="all", ns=DB)
    run = data["run"]
    assert run["state"] == "FAIL"
    assert run["error"] == {"message": "division by zero", "programmingLanguage": "SQL", "stackTrace": "at line 3"}
    assert run["dataQuality"] == [
        {"dataset": f"dataset:{DB}:raw", "assertion": "not_null", "column": "id", "success": True},
        {"dataset": f"dataset:{DB}:raw", "assertion": "row_count", "column": None, "success": False},
    ]
    assert run["job"] == {
        "sql": "select id, amount from raw",
        "sqlDialect": "duckdb",
        "jobType": {"processingType": "BATCH", "integration": "DBT", "jobType": "MODEL"},
        "sourceCodeLocation": {
            "type": "git",
            "url": "https://git.example/shop",
            "repoUrl": "https://git.example/shop.git",
            "path": "models/stg.sql",
            "version": "abc123",
            "tag": None,
            "branch": "main",
        },
    }
    assert run["inputs"] == [
        {
            "name": "raw",
            "schema": [
                {"name": "id", "type": "INTEGER", "description": "key"},
                {"name": "addr", "type": "STRUCT", "description": None},
                {"name": "addr.city", "type": "VARCHAR", "description": None},
            ],
        }
    ]
    assert data["datasetVersion"]["schema"] == [
        {"name": "id", "type": "INTEGER"},
        {"name": "amount_usd", "type": "DOUBLE"},
    ]
    mart = api.data(
        '{ run(id: "mart-1") { error { message } dataQuality { assertion } job { sql jobType { jobType } } } }',
        token="all",
    )
    assert mart["run"] == {"error": None, "dataQuality": [], "job": {"sql": None, "jobType": None}}


COLUMNS = """query($d: ID!, $f: String!, $dir: Direction, $depth: Int) {
  columnLineage(dataset: $d, field: $f, direction: $dir, depth: $depth) {
    root nodes { id dataset field hop } edges { from to transformations { type subtype masking } }
    partial partialReasons
  }
}"""


def _walk(api: Api, token: str, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = api.data(COLUMNS, token=token, **variables)["columnLineage"]
    return result


def test_column_lineage_through_graphql(api: Api) -> None:
    up = _walk(api, "all", d=f"dataset:{DB}:mart", f="total")
    assert [n["id"] for n in up["nodes"]] == [
        col("mart", "total"),
        col("stg", "amount_usd"),
        col("stg", "id"),
        col("raw", "amount"),
        col("raw", "id"),
    ]
    assert up["edges"][2] == {
        "from": col("stg", "amount_usd"),
        "to": col("mart", "total"),
        "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION", "masking": False}],
    }
    assert (up["partial"], up["partialReasons"]) == (False, [])
    shallow = _walk(api, "all", d=f"dataset:{DB}:mart", f="total", depth=1)
    assert (shallow["partial"], shallow["partialReasons"]) == (True, ["depth 1 reached with columns left to visit"])


def test_column_lineage_hides_what_the_scope_hides(api: Api) -> None:
    theirs = column_node_id("dataset:store://other:feat", "fid")
    both = _walk(api, "all", d=f"dataset:{DB}:raw", f="id", dir="DOWNSTREAM")
    demo = _walk(api, "dbt", d=f"dataset:{DB}:raw", f="id", dir="DOWNSTREAM")
    assert theirs in [n["id"] for n in both["nodes"]]
    assert [n["id"] for n in demo["nodes"]] == [n["id"] for n in both["nodes"] if n["id"] != theirs]
    assert all(theirs not in (e["from"], e["to"]) for e in demo["edges"])
    assert api.error(COLUMNS, token="dbt", d="dataset:store://other:feat", f="fid") == (
        "no such column: 'fid' of dataset:store://other:feat"
    )
    assert (
        api.error(COLUMNS, token="dbt", d="run:stg-1", f="x")
        == "column lineage starts at a dataset, not a run (run:stg-1)"
    )


def test_a_lost_runs_reason_carries_no_stored_stack_trace() -> None:
    from provgraph.api.facets import RunError, run_error
    from provgraph.events.model import RunState
    from provgraph.graph.facets import ErrorView, Facets
    from provgraph.graph.views import RunView

    stored = Facets(error=ErrorView(message="old", programming_language="python", stack_trace="Traceback …"))
    failed = RunView(run_id="r", namespace="p", job_name="j", state=RunState.FAIL, error="old")
    lost = failed.model_copy(update={"state": RunState.LOST, "error": "process 42 is gone"})
    assert run_error(failed, stored) == RunError(
        message="old", programming_language="python", stack_trace="Traceback …"
    )
    assert run_error(lost, stored) == RunError(
        message="process 42 is gone", programming_language=None, stack_trace=None
    )
    assert run_error(failed.model_copy(update={"error": None}), stored) is None
