"""The kubernetes runtime, client side: store the request, publish it for the launcher, record the run.

The handler's source snapshot is already in the artifact store (by hash); the request is stored
there too, content-addressed, and published on `provgraph.requests.v1` keyed by run id. The
launcher turns it into a Job whose pod runs `provgraph exec <request hash>`. The run appears in the
graph at once in state REQUESTED.
"""

from __future__ import annotations

from provgraph._backend import Backend
from provgraph._execution import RunResult
from provgraph.events import topics
from provgraph.events.errors import ConfigError, TransportError
from provgraph.events.facets import CodeJobFacet, RuntimeRunFacet
from provgraph.events.model import RunState
from provgraph.events.request import RunRequest, dumps_request
from provgraph.events.transport.factory import kafka_config
from provgraph.events.transport.kafka import KafkaConfig, ensure_topics
from provgraph.runtimes.process import announce


def submit(request: RunRequest, code: CodeJobFacet, backend: Backend) -> RunResult:
    settings = backend.settings
    if not request.image:
        raise ConfigError("the kubernetes runtime needs a container image: pass image=... (or --image)")
    config = kafka_config(settings)  # before anything is stored: no Kafka, no request
    request = request.model_copy(
        update={
            "runtime": "kubernetes",
            "git_commit": code.git_commit,
            "git_dirty": code.git_dirty,
            "artifact_store": settings.artifact_url,
        }
    )
    body = dumps_request(request)
    backend.artifacts.put_bytes(body)  # stored before it is published: the pod fetches it by hash
    publish_request(config, request.run_id, body)
    announce(
        request,
        code,
        backend,
        backend.transport,
        RuntimeRunFacet(
            kind="kubernetes", image=request.image, resources=request.resources, secrets=request.secrets or None
        ),
    )
    return RunResult(request.run_id, request.project, request.job, RunState.REQUESTED)


def publish_request(config: KafkaConfig, run_id: str, body: bytes) -> None:
    """Send one run request (acks=all) and wait for the broker; `TransportError` if it cannot.

    Unlike lineage events, a request is not spooled: if it cannot be submitted now the caller is
    told at once, since nothing has run yet and retrying is the caller's decision.
    """
    from kafka import KafkaProducer  # lazy: only remote runs need kafka-python

    ensure_topics(config, [topics.REQUESTS])
    name = topics.topic(topics.REQUESTS, config.topic_prefix)
    try:
        producer = KafkaProducer(bootstrap_servers=config.bootstrap_servers, acks="all", client_id="provgraph-submit")
        try:
            producer.send(name, key=run_id.encode(), value=body).get(timeout=config.delivery_timeout_s)
        finally:
            producer.close(timeout=config.delivery_timeout_s)
    except Exception as exc:
        raise TransportError(f"submitting run {run_id} to {name} at {config.bootstrap_servers} failed: {exc}") from exc
