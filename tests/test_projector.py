"""The graph projector against a real Kafka broker and a real Neo4j server.

Each test has its own topic prefix (so its own topics and consumer group); Neo4j has one database,
so each test starts from an empty graph. The projector runs in a thread (`running`) or, for the
crash test, as its own process, exactly as `provgraph projector` runs it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from provgraph.events import serde, topics
from provgraph.events.model import RunEvent
from provgraph.events.settings import Settings
from provgraph.events.synthetic import EPOCH, content_hash, dataset, run_events, workload
from provgraph.graph.ids import NodeId
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.projection import minted_version
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction
from provgraph.services.projector import create_app, list_dlq, replay_neo4j
from provgraph.services.projector.app import ensure_topics
from provgraph.services.projector.handlers import group_id
from tests.helpers import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.neo4j]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(kafka: str, neo4j: str, tmp_path: Path) -> Settings:
    """Replaces the embedded `settings` of conftest here: real Kafka and Neo4j, a fresh topic prefix."""
    s = Settings(
        home=tmp_path / "home",
        store="neo4j",
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=f"test-{uuid.uuid4().hex[:10]}.",
        neo4j_uri=neo4j,
    )
    ensure_topics(s)
    return s


@pytest.fixture
def graph(settings: Settings) -> Iterator[Neo4jLineageStore]:
    store = Neo4jLineageStore.from_settings(settings)
    store.reset()
    yield store
    store.close()


def produce(settings: Settings, records: Sequence[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    """Send raw records to the lineage topic; returns each one's (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=20)
    name = topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
    futures = [producer.send(name, value, key=key) for key, value in records]
    producer.flush()
    sent = [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    producer.close()
    return sent


def produce_events(settings: Settings, events: Sequence[RunEvent]) -> None:
    produce(settings, [(e.root_run_id.encode(), serde.dumps(e)) for e in events])


def lag(settings: Settings) -> int:
    """Records on the lineage topic the projector's group has not committed yet."""
    watcher = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group_id(settings), enable_auto_commit=False
    )
    try:
        name = topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
        tps = [TopicPartition(name, p) for p in sorted(watcher.partitions_for_topic(name) or ())]
        ends = watcher.end_offsets(tps)
        return sum(ends[tp] - (watcher.committed(tp) or 0) for tp in tps)
    finally:
        watcher.close()


def caught_up(settings: Settings, timeout: float = 120) -> None:
    wait_for("the projector to commit every record", lambda: lag(settings) == 0, timeout)


@contextmanager
def running(settings: Settings, **options: Any) -> Iterator[None]:
    """The projector app (its own Neo4j connection; `create_app` `options`) in a background thread,
    stopped gracefully at exit."""
    app = create_app(settings, **options)
    stop = threading.Event()
    failed: list[BaseException] = []

    async def serve() -> None:
        async with app:
            while not stop.is_set():
                await asyncio.sleep(0.05)

    def target() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # noqa: BLE001 - the thread's failure, re-raised in the test
            failed.append(exc)

    thread = threading.Thread(target=target, name="projector", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(90)
    assert not thread.is_alive(), "the projector did not stop"
    if failed:
        raise failed[0]


def projector_process(settings: Settings, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`python -m provgraph.services.projector` (what `provgraph projector` runs) with `settings`;
    its output appended to `log` (default: discarded)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env |= {
        "PROVGRAPH_HOME": str(settings.home),
        "PROVGRAPH_STORE": "neo4j",
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka_bootstrap_servers),
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "PROVGRAPH_NEO4J_URI": str(settings.neo4j_uri),
    }
    with log.open("ab") if log else open(os.devnull, "wb") as err:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "provgraph.services.projector"],
            env=env,
            cwd=settings.home.parent,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


INGESTION_TIMES = ("known_at", "ended_known_at")
"""Dump columns holding ingestion times: Kafka record timestamps here, event times in `sqlite_dump`."""


def comparable(dump: dict[str, Any]) -> dict[str, object]:
    """A dump without ingestion times, to compare graphs fed through different logs."""
    return {
        table: sorted(
            ({k: v for k, v in row.items() if k not in INGESTION_TIMES} for row in rows),
            key=lambda d: json.dumps(d, sort_keys=True, default=str),
        )
        for table, rows in dump.items()
    }


def sqlite_dump(events: Sequence[RunEvent]) -> dict[str, object]:
    store = SqliteLineageStore(":memory:")
    store.apply(list(events))
    return comparable(store.dump())


def test_events_on_the_topic_appear_in_the_graph(settings: Settings, graph: Neo4jLineageStore) -> None:
    events = list(workload(40))
    produce_events(settings, events)
    with running(settings):
        caught_up(settings)
    assert comparable(graph.dump()) == sqlite_dump(events)
    run = graph.run("synthetic-run-00000039")
    assert run is not None and run.state == "COMPLETE" and len(run.inputs) == 2
    assert list_dlq(settings) == []


def test_the_projector_plans_its_batch_statement_before_the_first_batch(
    settings: Settings, graph: Neo4jLineageStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="provgraph.services.projector.app"), running(settings):
        wait_for("the plan", lambda: any("planned the batch statement" in r.message for r in caplog.records), 120)
    assert graph.dump() == SqliteLineageStore(":memory:").dump()  # planned on nothing


def test_duplicates_and_reordering_leave_the_graph_unchanged(settings: Settings, graph: Neo4jLineageStore) -> None:
    events = list(workload(30))
    redelivered = events + random.Random(3).sample(events, 60)
    random.Random(4).shuffle(redelivered)
    with running(settings):
        produce_events(settings, redelivered[:100])
        caught_up(settings)
        produce_events(settings, redelivered[100:])  # a second wave, after the first is committed
        caught_up(settings)
    assert comparable(graph.dump()) == sqlite_dump(events)


def test_refused_records_go_to_the_dlq_and_the_rest_lands(settings: Settings, graph: Neo4jLineageStore) -> None:
    before = run_events("good-before", job="train")
    after = run_events("good-after", job="train", start=EPOCH + timedelta(minutes=1))
    garbage = b"\x00\xffthis is not JSON"
    invalid = b'{"eventType": "START", "eventTime": "not a time", "run": {}, "job": {"namespace": "x"}}'
    too_big = run_events("too-big", inputs=[dataset("file", "/x" * 20_000, content_hash("big"), "data")])[1]
    records = [(e.root_run_id.encode(), serde.dumps(e)) for e in before]
    records += [(b"bad-1", garbage), (b"bad-2", invalid), (b"too-big", serde.dumps(too_big))]
    records += [(e.root_run_id.encode(), serde.dumps(e)) for e in after]
    positions = produce(settings, records)
    with running(settings):
        caught_up(settings)
        wait_for("three dead letters", lambda: len(list_dlq(settings)) == 3, 30)
    letters = list_dlq(settings)
    name = topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
    expected = {
        garbage: ("validate", positions[len(before)]),
        invalid: ("validate", positions[len(before) + 1]),
        serde.dumps(too_big): ("project", positions[len(before) + 2]),
    }
    for letter in letters:
        stage, (partition, offset) = expected[letter.original_bytes]
        assert (letter.stage, letter.topic, letter.partition, letter.offset) == (stage, name, partition, offset)
        assert letter.error
    by_stage = {d.stage: d.error for d in letters}
    assert "too large" in by_stage["project"]
    assert "not a valid OpenLineage RunEvent" in by_stage["validate"]
    # everything around them landed
    assert comparable(graph.dump()) == sqlite_dump([*before, *after])
    assert len(list_dlq(settings, limit=1)) == 1 and list_dlq(settings, limit=0) == []


def test_replay_rebuilds_an_identical_graph_twice(
    settings: Settings, graph: Neo4jLineageStore, caplog: pytest.LogCaptureFixture
) -> None:
    events = list(workload(60))
    produce_events(settings, events)
    produce(settings, [(b"bad", b"not json")])
    with running(settings):
        caught_up(settings)
        wait_for("the dead letter", lambda: len(list_dlq(settings)) == 1, 30)
    projected = graph.dump()
    seen: list[tuple[int, int]] = []
    with caplog.at_level(logging.WARNING, logger="provgraph.services.projector.replay"):
        assert replay_neo4j(settings, lambda done, total: seen.append((done, total))) == len(events) + 1
    warned = [r.getMessage() for r in caplog.records if r.name == "provgraph.services.projector.replay"]
    assert [w.split(": ")[-1] for w in warned] == ["1, on the dead-letter topic"]
    assert seen[0] == (0, len(events) + 1) and seen[-1] == (len(events) + 1, len(events) + 1)
    assert graph.dump() == projected
    assert replay_neo4j(settings) == len(events) + 1
    assert graph.dump() == projected
    assert comparable(projected) == sqlite_dump(events)
    assert len(list_dlq(settings)) == 1  # replays do not dead-letter the same record again


@pytest.mark.slow
def test_a_killed_projector_resumes_without_loss_or_change(settings: Settings, graph: Neo4jLineageStore) -> None:
    events = list(workload(3334))  # 20,004 events
    produce_events(settings, events)
    first = projector_process(settings)
    try:
        wait_for("the first batch in the graph", lambda: graph.count()["Run"] > 0, 120, interval=0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert 0 < graph.count()["Run"] < 3334, "the kill should land mid-way"
    assert lag(settings) > 0

    second = projector_process(settings)
    try:
        caught_up(settings, timeout=240)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(90) == 0  # graceful stop on SIGTERM
    assert comparable(graph.dump()) == sqlite_dump(events)


def test_events_from_the_openlineage_client_land_in_the_graph(settings: Settings, graph: Neo4jLineageStore) -> None:
    """openlineage-python's own KafkaTransport (confluent-kafka) as the producer: no provgraph code involved."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run, parent_run
    from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

    transport = KafkaTransport(
        KafkaConfig(
            config={"bootstrap.servers": str(settings.kafka_bootstrap_servers), "acks": "all"},
            topic=topics.topic(topics.LINEAGE, settings.kafka_topic_prefix),
            flush=True,
        )
    )
    parent_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
    job = Job(namespace="airflow", name="etl.load")
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent_id), job=parent_run.Job(namespace="airflow", name="etl")
    )
    producer = "https://github.com/apache/airflow/tree/providers-openlineage/2.0.0"
    transport.emit(
        RunEvent(
            eventType=RunState.START,
            eventTime="2026-01-01T00:00:00.000Z",
            run=Run(runId=run_id, facets={"parent": parent}),
            job=job,
            producer=producer,
            inputs=[InputDataset(namespace="postgres://db:5432", name="public.orders")],
        )
    )
    transport.emit(
        RunEvent(
            eventType=RunState.FAIL,
            eventTime="2026-01-01T00:00:05.000Z",
            run=Run(runId=run_id, facets={"errorMessage": error_message_run.ErrorMessageRunFacet("boom", "python")}),
            job=job,
            producer=producer,
            outputs=[OutputDataset(namespace="s3://lake", name="orders/2026")],
        )
    )
    assert transport.close(timeout=30)
    with running(settings):
        caught_up(settings)
    run = graph.run(run_id)
    assert run is not None
    assert (run.namespace, run.job_name, run.state, run.error, run.parent_run_id) == (
        "airflow",
        "etl.load",
        "FAIL",
        "boom",
        parent_id,
    )
    # the failed run's output (no version facet: its own version) is attempted, walked on request
    out = NodeId.dataset("s3://lake", "orders/2026", minted_version(run_id))
    assert {n.id for n in graph.lineage(out, Direction.UPSTREAM, depth=1).nodes} == {str(out)}
    g = graph.lineage(out, Direction.UPSTREAM, depth=1, include_failed=True)
    assert {n.id for n in g.nodes} == {
        str(out),
        f"run:{run_id}",
        "dataset:postgres://db:5432:public.orders@unversioned",
    }
    assert {e.kind for e in g.edges} == {"READ", "ATTEMPTED"}
    assert list_dlq(settings) == []
