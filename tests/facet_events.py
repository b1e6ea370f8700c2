"""OpenLineage events as a dbt-like producer sends them, with the standard facets provgraph projects.

raw (schema, dataQualityAssertions) -> shop.stg run (sql, jobType, sourceCodeLocation; FAIL with errorMessage)
    -> stg (schema, columnLineage id<-raw.id, amount_usd<-raw.amount)
stg -> shop.mart run -> mart (columnLineage total<-stg.amount_usd+stg.id, id<-stg.id)
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from provgraph.events.model import RunEvent
from provgraph.events.serde import loads
from provgraph.events.synthetic import EPOCH

DB = "duckdb://warehouse"


def facet(**fields: Any) -> dict[str, Any]:
    return {
        "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/dbt",
        "_schemaURL": "x",
    } | fields


def columns(mapping: dict[str, list[tuple[str, str, str]]], transformation: str = "IDENTITY") -> dict[str, Any]:
    return facet(
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


def event(
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


def ds(
    name: str, *, facets: dict[str, Any] | None = None, input_facets: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"namespace": DB, "name": name, "facets": facets or {}, "inputFacets": input_facets or {}}


SCHEMA = facet(
    fields=[
        {"name": "id", "type": "INTEGER", "description": "key"},
        {"name": "addr", "type": "STRUCT", "fields": [{"name": "city", "type": "VARCHAR"}]},
        {"name": 7, "type": "broken"},  # not a name: left out
    ]
)


def model_run(run_id: str = "stg-1", minutes: int = 0, query: str = "select id, amount from raw") -> list[RunEvent]:
    jf = {
        "sql": facet(query=query, dialect="duckdb"),
        "jobType": facet(processingType="BATCH", integration="DBT", jobType="MODEL"),
        "sourceCodeLocation": facet(
            type="git",
            url="https://git.example/shop",
            repoUrl="https://git.example/shop.git",
            path="models/stg.sql",
            version="abc123",
            branch="main",
        ),
    }
    raw = ds(
        "raw",
        facets={"schema": SCHEMA},
        input_facets={
            "dataQualityAssertions": facet(
                assertions=[
                    {"assertion": "not_null", "success": True, "column": "id"},
                    {"assertion": "row_count", "success": False},
                    {"assertion": "bad", "success": "yes"},  # not a boolean: left out
                ]
            )
        },
    )
    stg = ds(
        "stg",
        facets={
            "schema": facet(fields=[{"name": "id", "type": "INTEGER"}, {"name": "amount_usd", "type": "DOUBLE"}]),
            "columnLineage": columns({"id": [(DB, "raw", "id")], "amount_usd": [(DB, "raw", "amount")]}),
        },
    )
    return [
        event(run_id, "shop.stg", minutes=minutes, event_type="START", job_facets=jf, inputs=[raw], outputs=[stg]),
        event(
            run_id,
            "shop.stg",
            minutes=minutes + 1,
            event_type="FAIL",
            run_facets={
                "errorMessage": facet(message="division by zero", programmingLanguage="SQL", stackTrace="at line 3")
            },
            inputs=[raw],
            outputs=[stg],
        ),
    ]


def mart_run() -> list[RunEvent]:
    mart = ds(
        "mart",
        facets={
            "columnLineage": columns(
                {"total": [(DB, "stg", "amount_usd"), (DB, "stg", "id")], "id": [(DB, "stg", "id")]}, "AGGREGATION"
            )
        },
    )
    return [event("mart-1", "shop.mart", minutes=5, inputs=[ds("stg")], outputs=[mart])]
