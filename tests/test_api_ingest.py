"""POST /api/v1/lineage with OpenLineage's own client and HTTP transport, and SDK runs: what any
producer writes shows up in the graph the API reads (embedded store)."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import dataset_version_dataset, error_message_run
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport

import provgraph as pg
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.ingest import MAX_EVENT_BYTES
from provgraph.api.server import ServerThread
from provgraph.events.settings import Settings
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.projection import minted_version
from tests.helpers import graphql_data

RUN_QUERY = """query($id: ID!) { run(id: $id) { runId project jobName state error { message programmingLanguage }
  inputs { namespace name version } outputs { namespace name version } } }"""


class Server:
    def __init__(self, url: str, settings: Settings, token: str) -> None:
        self.url, self.settings, self.token = url, settings, token

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql_data(self.url, self.token, query, **variables)

    def events(self) -> int:
        log = SqliteEventLog(self.settings.events_db)
        try:
            return log.count()
        finally:
            log.close()

    def client(self, *, gzip: bool = False) -> OpenLineageClient:
        config = HttpConfig(
            url=self.url,
            auth=ApiKeyTokenProvider({"apiKey": self.token}),
            compression=HttpCompression.GZIP if gzip else None,
            timeout=30,
        )
        return OpenLineageClient(transport=HttpTransport(config))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = Settings(home=tmp_path / "home")
    store = TokenStore(settings.tokens_db)
    _, token = store.create(["airflow", "demo"], name="producer")
    store.close()
    with ServerThread(create_app(settings)) as url:
        yield Server(url, settings, token)


def airflow_events(run_id: str, *, fail: bool = False) -> list[RunEvent]:
    job = Job(namespace="airflow", name="orders_dag.aggregate")
    version = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="sha256:" + "ab" * 32)
    start = RunEvent(
        eventType=RunState.START,
        eventTime="2026-03-01T10:00:00.000+01:00",
        run=Run(runId=run_id),
        job=job,
        inputs=[InputDataset(namespace="s3://lake", name="raw/orders", facets={"version": version})],
        producer="https://github.com/apache/airflow",
    )
    end = RunEvent(
        eventType=RunState.FAIL if fail else RunState.COMPLETE,
        eventTime="2026-03-01T10:05:00.000+01:00",
        run=Run(
            runId=run_id,
            facets={"errorMessage": error_message_run.ErrorMessageRunFacet(message="oom", programmingLanguage="py")}
            if fail
            else {},
        ),
        job=job,
        outputs=[OutputDataset(namespace="s3://lake", name="agg/orders_daily")],
        producer="https://github.com/apache/airflow",
    )
    return [start, end]


@pytest.mark.parametrize("compressed", [False, True], ids=["json", "gzip"])
def test_openlineage_http_transport_events_appear_in_the_graph(server: Server, compressed: bool) -> None:
    run_id = str(uuid.uuid4())
    client = server.client(gzip=compressed)
    for event in airflow_events(run_id, fail=compressed):
        client.emit(event)  # raises on any non-2xx answer
    client.close()

    run = server.query(RUN_QUERY, id=run_id)["run"]
    assert run["project"] == "airflow" and run["jobName"] == "orders_dag.aggregate"
    assert run["state"] == ("FAIL" if compressed else "COMPLETE")
    assert run["error"] == ({"message": "oom", "programmingLanguage": "py"} if compressed else None)
    assert run["inputs"] == [{"namespace": "s3://lake", "name": "raw/orders", "version": "sha256:" + "ab" * 32}]
    # no version facet on the output: the run's own version; a failed run only attempted it
    out = f"dataset:s3://lake:agg/orders_daily@{minted_version(run_id)}"
    assert run["outputs"] == [{"namespace": "s3://lake", "name": "agg/orders_daily", "version": minted_version(run_id)}]
    upstream = server.query(
        "query($n: ID!) { lineage(node: $n, direction: UPSTREAM, includeFailed: true)"
        " { nodes { id } edges { kind } } }",
        n=out,
    )["lineage"]
    assert {n["id"] for n in upstream["nodes"]} == {
        out,
        f"run:{run_id}",
        "dataset:s3://lake:raw/orders@sha256:" + "ab" * 32,
    }
    assert {e["kind"] for e in upstream["edges"]} == {"READ", "ATTEMPTED" if compressed else "WROTE"}


def post_event(server: Server, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        server.url + "/api/v1/lineage",
        content=content,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json", **headers},
        timeout=30,
    )


def valid_event(namespace: str = "airflow") -> dict[str, Any]:
    return {
        "eventType": "START",
        "eventTime": "2026-03-01T10:00:00Z",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": namespace, "name": "job"},
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def _metrics(n: int) -> dict[str, Any]:
    return {
        "_producer": "https://example.com/p",
        "_schemaURL": "https://example.com/s",
        "metrics": [{"key": "m", "value": 1.0, "step": i} for i in range(n)],
    }


def _parent(run_id: str) -> dict[str, Any]:
    return {
        "_producer": "https://example.com/p",
        "_schemaURL": "https://example.com/s",
        "run": {"runId": run_id},
        "job": {"namespace": "airflow", "name": "dag"},
    }


def test_invalid_events_get_400_with_the_validation_message_and_are_not_forwarded(server: Server) -> None:
    before = server.events()
    no_run = valid_event()
    del no_run["run"]
    bad_time = {**valid_event(), "eventTime": "yesterday-ish"}
    for body, expected in (
        (no_run, "run: Field required"),
        (bad_time, "eventTime"),
        (b"{not json", "not a valid OpenLineage RunEvent"),
        (b"", "not a valid OpenLineage RunEvent"),
        ({**valid_event(), "job": {"namespace": "", "name": "x"}}, "job.namespace"),
        # a far-future time would make its facets the latest for good (a shared dataset's schema)
        ({**valid_event(), "eventTime": "9999-01-01T00:00:00Z"}, "hours ahead of this server's clock (at most 24"),
        (
            {**valid_event(), "inputs": [{"namespace": "s3://b", "name": f"t{i}"} for i in range(2_001)]},
            "the event names 2001 datasets (at most 2000 inputs and outputs)",
        ),
        (
            {**valid_event(), "run": {"runId": "r", "facets": {"provgraph_metrics": _metrics(10_001)}}},
            "the event carries 10001 metric points (at most 10000",
        ),
        # ids no lookup reads back: `run(id:)` and the CLI strip a `run:` prefix; blanks and controls
        ({**valid_event(), "run": {"runId": "run:abc"}}, "cannot be read back"),
        ({**valid_event(), "run": {"runId": " abc"}}, "cannot be read back"),
        ({**valid_event(), "run": {"runId": "abc\n"}}, "cannot be read back"),
        ({**valid_event(), "run": {"runId": "a\x1b[2Jb"}}, "cannot be read back"),
        ({**valid_event(), "run": {"runId": "me", "facets": {"parent": _parent("me")}}}, "names itself as its parent"),
        (  # the real client sends static lineage to the same endpoint
            {
                "eventTime": "2026-03-01T10:00:00Z",
                "producer": "p",
                "schemaURL": "s",
                "dataset": {"namespace": "a", "name": "b"},
            },
            "an OpenLineage DatasetEvent (static lineage) is not recorded",
        ),
        (
            {
                "eventTime": "2026-03-01T10:00:00Z",
                "producer": "p",
                "schemaURL": "s",
                "job": {"namespace": "a", "name": "b"},
            },
            "an OpenLineage JobEvent (static lineage) is not recorded",
        ),
    ):
        response = post_event(server, body)
        assert response.status_code == 400, response.text
        assert expected in response.json()["error"]
    assert post_event(server, b"\x1f\x8bnot gzip", **{"Content-Encoding": "gzip"}).status_code == 400
    assert server.events() == before
    skewed = (datetime.now(UTC) + timedelta(hours=20)).isoformat()  # a clock a little ahead is fine
    assert post_event(server, {**valid_event(), "eventTime": skewed}).status_code == 201


def test_events_outside_the_tokens_projects_are_403_and_not_forwarded(server: Server) -> None:
    before = server.events()
    response = post_event(server, valid_event(namespace="finance"))
    assert response.status_code == 403
    assert "project 'finance'" in response.json()["error"]
    assert server.events() == before
    accepted = post_event(server, valid_event(namespace="demo"))
    assert accepted.status_code == 201 and accepted.json()["eventType"] == "START"
    assert server.events() == before + 1


def test_oversized_bodies_are_413(server: Server) -> None:
    event = valid_event()
    event["run"]["facets"] = {"big": {"blob": "x" * (MAX_EVENT_BYTES + 10)}}
    assert post_event(server, event).status_code == 413
    bomb = gzip.compress(json.dumps(event).encode())  # small on the wire, too large inflated
    assert len(bomb) < MAX_EVENT_BYTES
    assert post_event(server, bomb, **{"Content-Encoding": "gzip"}).status_code == 413


def copy_upper(ctx: pg.Context, src: pg.DataItem, suffix: str = "!") -> dict[str, int]:
    data = src.get()
    ctx.log_model("upper", body=data.upper() + suffix.encode(), framework="none")
    return {"size": len(data)}


def test_sdk_runs_are_answered_by_the_api(server: Server, tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"hello")
    settings = server.settings.model_copy(update={"project": "demo"})
    result = pg.run(copy_upper, params={"suffix": "?"}, inputs={"src": str(raw)}, backend=pg.Backend(settings))
    uri = result.outputs["upper"]  # store://demo/upper@sha256:…
    version = uri.rpartition("@")[2]
    run = server.query(
        'query($v: String!) { producedBy(namespace: "store://demo", name: "upper", version: $v) {'
        " runId state params results jobVersion { codeHash entrypoint gitCommit }"
        " inputs { namespace name version } } }",
        v=version,
    )["producedBy"]
    assert run["runId"] == result.run_id and run["state"] == "COMPLETE"
    assert run["params"] == {"suffix": "?"} and run["results"] == {"size": 5}
    assert run["jobVersion"]["codeHash"].startswith("sha256:")
    assert run["jobVersion"]["entrypoint"].endswith(":copy_upper")
    assert run["inputs"] == [{"namespace": "file", "name": str(raw.resolve()), "version": pg_sha(b"hello")}]


def pg_sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_missing_output_object_answers_alike_whoever_owns_the_run_id(server: Server) -> None:
    """The object check comes before the owner check, and names no server path: a token cannot tell
    another project's run ids from free ones by posting outputs whose bytes are missing."""
    from provgraph.events.synthetic import run_events

    log = SqliteEventLog(server.settings.events_db)
    log.append(run_events("hidden-run", namespace="other"))
    log.close()
    missing = {"namespace": "store://airflow", "name": "model", "facets": {}}
    missing["facets"] = {
        "version": {
            "_producer": "https://example.com/p",
            "_schemaURL": "https://example.com/s",
            "datasetVersion": "sha256:" + "cd" * 32,
        }
    }
    answers = []
    for run_id in ("hidden-run", str(uuid.uuid4())):
        response = post_event(server, {**valid_event(), "run": {"runId": run_id}, "outputs": [missing]})
        answers.append((response.status_code, response.json()["error"]))
    assert answers[0] == answers[1] and answers[0][0] == 400, answers
    assert str(server.settings.home) not in answers[0][1]


def test_a_run_lists_at_most_a_page_of_its_inputs_and_says_how_many(server: Server) -> None:
    """An event names at most 2,000 datasets but a run's events together are unbounded: `inputs`
    lists the first `first` (at most 1,000), `inputCount` says how many there are, and a query over
    many runs' inputs is costed by what it may list (so it takes the costly lane)."""
    from graphql import parse

    from provgraph.api.guards import operation_cost
    from provgraph.api.root import build_schema

    run_id = str(uuid.uuid4())
    for part in range(2):
        inputs = [{"namespace": "s3://b", "name": f"t{part}-{i}"} for i in range(1_500)]
        event = {**valid_event(), "run": {"runId": run_id}, "eventType": "RUNNING", "inputs": inputs}
        assert post_event(server, event).status_code == 201
    got = server.query(
        "query($id: ID!) { run(id: $id) { inputCount inputs { name } few: inputs(first: 3) { name } } }", id=run_id
    )["run"]
    assert got["inputCount"] == 3_000 and len(got["inputs"]) == 1_000 and len(got["few"]) == 3
    many = "{ runs(first: 50) { nodes { inputs { name namespace version binding } } } }"
    assert operation_cost(build_schema()._schema, parse(many), None) > 2_000
