"""The kubernetes runtime's client side and `provgraph exec`, against the real Kafka broker.

The launcher (services/launcher) turns the published request into a Job; here the request is read
back from the topic and executed locally with `exec_request`, exactly as the pod would.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import provgraph as pg
from provgraph._stored_request import exec_request, load_request
from provgraph.events import topics
from provgraph.events.request import loads_request, request_hash
from provgraph.events.settings import KAFKA_UNSET
from tests.helpers import read_topic

pytestmark = pytest.mark.kafka


def double(ctx: pg.Context, data: pg.DataItem, times: int = 2) -> dict[str, int]:
    body = data.get()
    ctx.log_artifact("doubled", body=body * times)
    return {"n": len(body) * times}


@pytest.fixture
def k8s_settings(settings: pg.Settings, kafka: str) -> pg.Settings:
    return settings.model_copy(
        update={"kafka_bootstrap_servers": kafka, "kafka_topic_prefix": f"t{uuid.uuid4().hex[:8]}."}
    )


def read_requests(settings: pg.Settings) -> list[tuple[bytes, bytes]]:
    assert settings.kafka_bootstrap_servers
    records = read_topic(settings.kafka_bootstrap_servers, topics.topic(topics.REQUESTS, settings.kafka_topic_prefix))
    return [(r.key, r.value) for r in records]


def test_submit_publishes_a_stored_request_and_records_the_run(k8s_settings: pg.Settings, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(b"abc")
    backend = pg.Backend(k8s_settings)
    result = pg.run(
        double,
        params={"times": 3},
        inputs={"data": str(tmp_path / "in.txt")},
        runtime="kubernetes",
        image="registry.local/provgraph:dev",
        resources={"cpu": "500m"},
        backend=backend,
    )
    assert result.state == "REQUESTED"
    run = backend.graph().run(result.run_id)
    assert run is not None and run.state == "REQUESTED" and run.params == {"times": 3}
    assert run.runtime["kind"] == "kubernetes" and run.runtime["image"] == "registry.local/provgraph:dev"

    [(key, body)] = read_requests(k8s_settings)
    assert key == result.run_id.encode()
    request = loads_request(body)
    assert (request.run_id, request.image, request.resources) == (
        result.run_id,
        "registry.local/provgraph:dev",
        {"cpu": "500m"},
    )
    assert load_request(request_hash(body), backend) == request  # the message is the stored object

    # what the pod does: execute the stored request with the normal SDK
    done = exec_request(request_hash(body), backend)
    assert done.state == "COMPLETE" and done.results == {"n": 9}
    run = backend.graph().run(result.run_id)
    assert run is not None and run.state == "COMPLETE" and run.runtime["kind"] == "kubernetes"
    assert [i.binding for i in run.inputs] == ["data"] and [o.binding for o in run.outputs] == ["doubled"]
    assert len(backend.graph().runs()) == 1  # one run, not a requested one plus an executed one


def test_kubernetes_runtime_needs_an_image_and_kafka(settings: pg.Settings) -> None:
    backend = pg.Backend(settings)
    with pytest.raises(pg.ConfigError, match="needs a container image"):
        pg.run(double, runtime="kubernetes", backend=backend)
    with pytest.raises(pg.ConfigError) as unset:
        pg.run(double, runtime="kubernetes", image="x", backend=backend)
    assert str(unset.value) == KAFKA_UNSET
    assert backend.graph().runs() == []  # refused before the run was recorded


def test_exec_refuses_unknown_or_corrupt_requests(settings: pg.Settings) -> None:
    backend = pg.Backend(settings)
    with pytest.raises(pg.NotFound, match="is not in the artifact store"):
        exec_request("sha256:" + "0" * 64, backend)
    digest, _ = backend.artifacts.put_bytes(b'{"not": "a request"}')
    with pytest.raises(pg.ContractError) as refused:
        exec_request(digest, backend)
    assert str(refused.value) == (
        "not a valid run request: runId: Field required; project: Field required; job: Field required (+2 more)"
    )
