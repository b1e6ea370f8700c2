"""The event contract: stable bytes, JSON Schema export, and two-way OpenLineage compatibility."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    BaseFacet,
    DatasetFacet,
    InputDatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    dataset_version_dataset,
    error_message_run,
    parent_run,
    schema_dataset,
    source_code_location_job,
)
from openlineage.client.serde import Serde

import provgraph as pg
from provgraph.events import schema_export
from provgraph.events.errors import ContractError
from provgraph.events.request import RunRequest, dumps_request, loads_request
from provgraph.events.serde import dumps, loads, to_dict
from provgraph.events.transport.memory import MemoryTransport


def facet_objects(facets: dict[str, Any] | None, cls: type[BaseFacet]) -> dict[str, Any]:
    out = {}
    for name, body in (facets or {}).items():
        body = dict(body)
        producer, schema_url = body.pop("_producer"), body.pop("_schemaURL")
        facet = cls(producer=producer)
        facet = facet.with_additional_properties(**body) if body else facet
        facet._schemaURL = schema_url  # upstream derives it from the class; keep the event's own
        out[name] = facet
    return out


def as_openlineage(event: dict[str, Any]) -> RunEvent:
    """Our JSON rebuilt with the OpenLineage client's own classes (its validators run on construction)."""

    def dataset(d: dict[str, Any], kind: type[InputDataset] | type[OutputDataset]) -> Any:
        extra = (
            {"inputFacets": facet_objects(d.get("inputFacets"), InputDatasetFacet)}
            if kind is InputDataset
            else {"outputFacets": facet_objects(d.get("outputFacets"), OutputDatasetFacet)}
        )
        return kind(
            namespace=d["namespace"], name=d["name"], facets=facet_objects(d.get("facets"), DatasetFacet), **extra
        )

    return RunEvent(
        eventType=RunState(event["eventType"]),
        eventTime=event["eventTime"],
        run=Run(runId=event["run"]["runId"], facets=facet_objects(event["run"].get("facets"), RunFacet)),
        job=Job(
            namespace=event["job"]["namespace"],
            name=event["job"]["name"],
            facets=facet_objects(event["job"].get("facets"), JobFacet),
        ),
        inputs=[dataset(d, InputDataset) for d in event.get("inputs", [])],
        outputs=[dataset(d, OutputDataset) for d in event.get("outputs", [])],
        producer=event["producer"],
    )


def strip_empty(value: Any) -> Any:
    """OpenLineage's serialiser drops empty dicts inside lists; compare modulo that."""
    if isinstance(value, dict):
        return {k: strip_empty(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_empty(v) for v in value if v != {}]
    return value


def flow(ctx: pg.Context, data: pg.DataItem, lr: float = 0.1) -> dict[str, float]:
    data.get()
    ctx.log_metric("loss", 0.2, step=1)
    ctx.log_model("model", body=b"weights", framework="toy")
    return {"accuracy": 0.9}


def boom(ctx: pg.Context) -> None:
    raise ValueError("bad")


def test_every_sdk_event_is_a_valid_openlineage_event(settings: pg.Settings, tmp_path: Path) -> None:
    transport = MemoryTransport()
    backend = pg.Backend(settings, transport=transport)
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    pg.run(flow, inputs={"data": str(data)}, backend=backend)
    pg.run(boom, backend=backend)
    assert len(transport.events) >= 6
    for event in transport.events:
        ours = to_dict(event)
        theirs = json.loads(Serde.to_json(as_openlineage(ours)))
        assert theirs == strip_empty(ours)
        uuid.UUID(event.run.run_id)  # OpenLineage run ids are UUIDs


def test_an_openlineage_client_event_is_accepted_and_round_trips() -> None:
    run_id, parent_id = str(uuid.uuid4()), str(uuid.uuid4())
    event = RunEvent(
        eventType=RunState.FAIL,
        eventTime="2026-03-01T10:00:00.000+01:00",
        run=Run(
            runId=run_id,
            facets={
                "parent": parent_run.ParentRunFacet(
                    run=parent_run.Run(runId=parent_id), job=parent_run.Job(namespace="airflow", name="dag")
                ),
                "errorMessage": error_message_run.ErrorMessageRunFacet(message="oom", programmingLanguage="python"),
            },
        ),
        job=Job(
            namespace="airflow",
            name="dag.task",
            facets={
                "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(
                    type="git", url="https://example.com/repo.git"
                ),
            },
        ),
        inputs=[
            InputDataset(
                namespace="s3://lake",
                name="orders",
                facets={
                    "schema": schema_dataset.SchemaDatasetFacet(
                        fields=[schema_dataset.SchemaDatasetFacetFields(name="id")]
                    ),
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v42"),
                },
            )
        ],
        outputs=[OutputDataset(namespace="s3://lake", name="totals")],
        producer="https://github.com/apache/airflow",
    )
    raw = Serde.to_json(event)
    ours = loads(raw)
    assert ours.run.facets.parent is not None and ours.run.facets.parent.run.run_id == parent_id
    assert ours.root_run_id == parent_id
    assert ours.run.facets.error_message is not None and ours.run.facets.error_message.message == "oom"
    assert ours.inputs[0].version == "v42" and ours.outputs[0].version == "unversioned"
    assert ours.event_time.utcoffset() is not None and ours.event_time.hour == 9  # normalised to UTC
    # unknown facets (schema) are kept, and everything else survives the round trip
    original = json.loads(raw)
    back = json.loads(dumps(ours))
    assert back["inputs"][0]["facets"]["schema"] == original["inputs"][0]["facets"]["schema"]
    original["eventTime"] = back["eventTime"]
    assert strip_empty(back) == strip_empty(original)


def test_serialisation_is_stable_bytes() -> None:
    raw = (
        b'{"eventType":"START","eventTime":"2026-01-01T00:00:00Z","run":{"runId":"r","facets":{"zz":{"b":1,"a":2}}},'
        b'"job":{"namespace":"n","name":"j"},"producer":"p"}'
    )
    first = dumps(loads(raw))
    assert dumps(loads(first)) == first
    assert b'"zz":{"a":2,"b":1}' in first


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not a valid OpenLineage RunEvent"),
        (b'{"eventTime":"2026-01-01T00:00:00Z","job":{"namespace":"n","name":"j"}}', "run: Field required"),
        (b'{"eventTime":"yesterday","run":{"runId":"r"},"job":{"namespace":"n","name":"j"}}', "eventTime"),
        (
            b'{"eventTime":"2026-01-01T00:00:00Z","run":{"runId":"r","facets":{"provgraph_params":{"params":3}}},'
            b'"job":{"namespace":"n","name":"j"}}',
            "provgraph_params",
        ),
    ],
)
def test_invalid_events_raise_contract_errors_that_say_where(payload: bytes, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        loads(payload)


REQUEST = RunRequest(run_id="r", project="p", job="j", entrypoint="f.py:f", code_hash="sha256:" + "0" * 64)


def test_a_request_round_trips_through_its_bytes() -> None:
    assert loads_request(dumps_request(REQUEST)) == REQUEST
    assert dumps_request(loads_request(dumps_request(REQUEST))) == dumps_request(REQUEST)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"this is not a run request", "(root): Invalid JSON: expected ident at line 1 column 2"),
        (b"[1]", "(root): Input should be an object"),
        (
            b'{"not": "a request"}',
            "runId: Field required; project: Field required; job: Field required (+2 more)",
        ),
        (
            dumps_request(REQUEST).replace(b"sha256:", b"md5:"),
            "codeHash: String should match pattern '^sha256:[0-9a-f]{64}$'",
        ),
    ],
)
def test_invalid_requests_raise_contract_errors_that_say_where(payload: bytes, message: str) -> None:
    with pytest.raises(ContractError) as refused:
        loads_request(payload)
    assert str(refused.value) == f"not a valid run request: {message}"


def test_exported_json_schemas_are_current() -> None:
    assert schema_export.stale() == [], "run `make schema` and commit events/schema/"


def test_exported_schemas_validate_what_the_sdk_writes(settings: pg.Settings, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    transport = MemoryTransport()
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    pg.run(flow, inputs={"data": str(data)}, backend=pg.Backend(settings, transport=transport))
    files = {p.name: json.loads(p.read_text()) for p in schema_export.SCHEMA_DIR.glob("*/*.json")}
    checked = 0
    for event in transport.events:
        d = to_dict(event)
        facets = {**d["run"]["facets"], **d["job"]["facets"]}
        for ds in d.get("inputs", []) + d.get("outputs", []):
            facets.update(ds["facets"])
        for body in facets.values():
            name = body["_schemaURL"].rsplit("/", 1)[-1]
            if name in files:
                jsonschema.validate(body, files[name])
                checked += 1
    assert checked >= 8
