"""Property: anything the contract accepts is projectable, on every store, and readable afterwards.

Events are generated as wire JSON with edge values (NaN/±Infinity metrics, 64-bit bounds and one
past them, extreme dates and offsets, any unicode, unknown facets, nested free JSON). Each goes
validate -> serialise -> embedded log -> projection (the embedded SQLite projector, which must
dead-letter nothing, and the store under test), then `run`, `runs`, `lineage` and `search` must
answer. What the contract refuses is refused with `ContractError`, never another exception.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provgraph.events.errors import ContractError
from provgraph.events.facets.values import INT64_MAX, INT64_MIN, encode_float
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps, loads
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.contract import LineageStore
from provgraph.graph.embedded import EmbeddedProjector
from provgraph.graph.ids import NodeId
from provgraph.graph.projection import DatasetFacts, minted_version
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction

IN_RANGE = [0, -1, 1, INT64_MIN, INT64_MAX]
OUT_OF_RANGE = [INT64_MIN - 1, INT64_MAX + 1, 2**64, -(2**70)]

chars = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])  # NUL, surrogates: refused
text = st.text(chars, max_size=30)
names = st.text(chars, min_size=1, max_size=30)
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
in_range_times = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00-01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+00:00"]),
    st.builds(
        lambda dt, tz: dt.replace(tzinfo=tz).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        offsets,
    ),
)


def event_bodies(*, refusable: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Wire events; with `refusable`, values the contract refuses are mixed in as often as the rest."""
    ints = st.one_of(st.sampled_from(IN_RANGE), st.integers(INT64_MIN, INT64_MAX))
    non_negative = st.one_of(st.sampled_from([0, 1, INT64_MAX]), st.integers(0, INT64_MAX))
    leaves = st.one_of(st.none(), st.booleans(), ints, st.floats(allow_nan=False, allow_infinity=False), text)
    times = in_range_times
    if refusable:
        ints = non_negative = st.one_of(ints, st.sampled_from(OUT_OF_RANGE))
        leaves = st.one_of(leaves, st.sampled_from([*OUT_OF_RANGE, math.nan, math.inf, -math.inf, "nul\x00", "\ud800"]))
        times = st.one_of(times, st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-05:00"]))
    free_json = st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
        max_leaves=12,
    )
    metric = st.fixed_dictionaries({"key": text, "value": st.floats().map(encode_float), "step": ints})
    # standard facets provgraph projects (graph/facets.py): well-formed, or any JSON in their places
    field = st.fixed_dictionaries(
        {"name": st.one_of(text, free_json)}, optional={"type": free_json, "description": text, "fields": free_json}
    )
    source_field = st.fixed_dictionaries(
        {"namespace": names, "name": names, "field": text}, optional={"transformations": free_json}
    )
    derived = st.fixed_dictionaries({"inputFields": st.one_of(free_json, st.lists(source_field, max_size=2))})
    assertion = st.fixed_dictionaries(
        {"assertion": text, "success": st.one_of(st.booleans(), free_json)}, optional={"column": free_json}
    )
    job_facets = st.fixed_dictionaries(
        {},
        optional={
            "sql": st.fixed_dictionaries({"query": text}, optional={"dialect": free_json}),
            "jobType": st.dictionaries(st.sampled_from(["processingType", "integration", "jobType", "x"]), free_json),
            "sourceCodeLocation": st.fixed_dictionaries({"url": text}, optional={"repoUrl": free_json, "tag": text}),
        },
    )
    dataset = st.fixed_dictionaries(
        {"namespace": names, "name": names},
        optional={
            "facets": st.fixed_dictionaries(
                {},
                optional={
                    "version": st.fixed_dictionaries({"datasetVersion": names}),
                    "provgraph_artifact": st.fixed_dictionaries(
                        {},
                        optional={
                            "kind": st.sampled_from(["data", "model"]),
                            "size": non_negative,
                            "uri": text,
                            "meta": st.dictionaries(text, free_json, max_size=3),
                        },
                    ),
                    "vendor_ds": st.dictionaries(text, free_json, max_size=3),
                    "schema": st.fixed_dictionaries({"fields": st.one_of(free_json, st.lists(field, max_size=3))}),
                    "columnLineage": st.fixed_dictionaries(
                        {"fields": st.one_of(free_json, st.dictionaries(text, derived, max_size=2))}
                    ),
                },
            ),
            "inputFacets": st.fixed_dictionaries(
                {},
                optional={
                    "provgraph_binding": st.fixed_dictionaries({"name": text}),
                    "dataQualityAssertions": st.fixed_dictionaries(
                        {"assertions": st.one_of(free_json, st.lists(assertion, max_size=3))}
                    ),
                },
            ),
        },
    )
    run_facets = st.fixed_dictionaries(
        {},
        optional={
            "provgraph_params": st.fixed_dictionaries({"params": st.dictionaries(text, free_json, max_size=4)}),
            "provgraph_results": st.fixed_dictionaries({"results": st.dictionaries(text, free_json, max_size=4)}),
            "provgraph_metrics": st.fixed_dictionaries({"metrics": st.lists(metric, max_size=4)}),
            "provgraph_event": st.fixed_dictionaries({"eventId": names, "seq": non_negative}),
            "provgraph_labels": st.fixed_dictionaries(
                {},
                optional={
                    "labels": st.dictionaries(text, text, max_size=4),
                    "annotations": st.dictionaries(text, text),
                },
            ),
            "errorMessage": st.fixed_dictionaries(
                {"message": text, "programmingLanguage": text}, optional={"stackTrace": text}
            ),
            "vendor_run": free_json,
        },
    )
    return st.fixed_dictionaries(
        {
            "eventType": st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"]),
            "eventTime": times,
            "run": st.fixed_dictionaries({"runId": names, "facets": run_facets}),
            "job": st.fixed_dictionaries({"namespace": names, "name": names}, optional={"facets": job_facets}),
            "inputs": st.lists(dataset, max_size=2),
            "outputs": st.lists(dataset, max_size=2),
            "producer": text,
        }
    )


def validate(body: dict[str, Any]) -> RunEvent | None:
    """The event, or None when the contract refuses it (only ever with ContractError)."""
    raw = json.dumps(body, allow_nan=True).encode()  # NaN literals too: what a careless producer sends
    try:
        return loads(raw)
    except ContractError:
        return None


def test_json_nested_deeper_than_the_stores_recurse_is_refused() -> None:
    deep: Any = []
    for _ in range(70):
        deep = [deep]
    body = {
        "eventTime": "2026-01-01T00:00:00Z",
        "run": {"runId": "r", "facets": {"x": deep}},
        "job": {"namespace": "n", "name": "j"},
    }
    with pytest.raises(
        ContractError, match=r"^not a valid OpenLineage RunEvent: run\.facets\.x(\.0)+: nested deeper than 64"
    ):
        loads(json.dumps(body))


@given(body=event_bodies(refusable=True))
@settings(max_examples=150, deadline=None)
def test_the_contract_refuses_only_with_contract_error(body: dict[str, Any]) -> None:
    validate(body)  # any other exception fails the test


@given(body=event_bodies(refusable=False))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_whatever_the_contract_accepts_every_store_projects_and_answers(
    store: LineageStore, tmp_path_factory: pytest.TempPathFactory, body: dict[str, Any]
) -> None:
    event = validate(body)
    assert event is not None, "the contract refused an in-range event"
    wire = dumps(event)
    again = loads(wire)
    assert dumps(again) == wire  # serialising is stable, nothing turned into null
    assert [m.value for m in (again.run.facets.metrics.metrics if again.run.facets.metrics else [])] == pytest.approx(
        [m.value for m in (event.run.facets.metrics.metrics if event.run.facets.metrics else [])], nan_ok=True
    )

    folder: Path = tmp_path_factory.mktemp("embedded")
    log = SqliteEventLog(folder / "events.db")
    embedded = SqliteLineageStore(folder / "graph.db")
    assert log.append([again]) == 1
    assert EmbeddedProjector(log, embedded).sync() == 1
    assert embedded.dead_letters() == [] and embedded.projected_offset() == 1
    embedded.close()
    log.close()

    store.reset()  # the fixture outlives one example
    store.apply([again])
    run_id = again.run.run_id
    view = store.run(run_id)
    assert view is not None and view.namespace == again.job.namespace
    for point in again.run.facets.metrics.metrics if again.run.facets.metrics else []:
        assert point.key in view.metrics
    assert store.runs(first=3)
    for direction in Direction:
        store.lineage(NodeId("run", (run_id,)), direction)
        store.lineage(NodeId("job", (again.job.namespace, again.job.name)), direction)
        for d in again.inputs:
            store.lineage(NodeId("datasetVersion", (d.namespace, d.name, d.version)), direction)
        for f in (DatasetFacts.of(d, minted_version(run_id)) for d in again.outputs):  # as projected
            store.lineage(NodeId("datasetVersion", (f.namespace, f.name, f.version)), direction)
    owners = [f"run:{run_id}", f"job:{again.job.namespace}:{again.job.name}"]
    owners += [f"dataset:{d.namespace}:{d.name}@{d.version}" for d in (*again.inputs, *again.outputs)]
    store.facets(owners)
    for d in again.outputs:
        fields = (d.facets.model_extra or {}).get("columnLineage", {}).get("fields")
        for name in [*(fields if isinstance(fields, dict) else {}), "x"][:3]:
            if name:
                for direction in Direction:
                    store.column_lineage(NodeId.dataset(d.namespace, d.name), name, direction)
    store.search(run_id)  # found or not (SQLite folds only ASCII case): never an error
    store.search(again.job.name)


def test_an_accepted_event_time_is_projected_in_utc_order() -> None:
    early = validate(
        {
            "eventTime": "0001-01-01T00:00:00-01:00",
            "run": {"runId": "r"},
            "job": {"namespace": "n", "name": "j"},
        }
    )
    assert early is not None and early.event_time == datetime(1, 1, 1, 1, tzinfo=UTC)
    assert early.order_key == "000000000000|0001-01-01T01:00:00.000000"
