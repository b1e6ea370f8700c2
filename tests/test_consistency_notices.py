"""Read-your-writes without polling: the projector's progress notices wake the API's watcher.

After each batch's graph transaction the projector sends a notice (`topics.PROGRESS`) with the
offsets it reached; the API's watcher re-reads the progress from Neo4j when a notice names an
offset someone waits for, and every second while someone waits (a lost notice only delays). A
waiter is released by the graph's progress only: a notice, even one naming offsets far ahead
(stale, from before a reset), never releases it before the data is there.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from provgraph.api.app import create_app
from provgraph.api.server import ServerThread
from provgraph.events import serde, topics
from provgraph.events.consistency import Position, parse
from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.graph.neo4j_store import Neo4jLineageStore
from tests.test_consistency_kafka import graph, kafka_settings, post, projected, tracked_run
from tests.test_projector import running

pytestmark = [pytest.mark.kafka, pytest.mark.neo4j]

__all__ = ["graph"]  # the fixture, used by name


@pytest.fixture
def progress_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Every read of the projection progress from Neo4j in this process (when it was made)."""
    reads: list[float] = []
    read = Neo4jLineageStore.kafka_progress

    def counted(self: Neo4jLineageStore) -> dict[tuple[str, int], int]:
        reads.append(time.monotonic())
        return read(self)

    monkeypatch.setattr(Neo4jLineageStore, "kafka_progress", counted)
    yield reads


def answer_of(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_a_stale_notice_does_not_release_a_waiter_before_the_graph_holds_its_run(
    kafka: str, neo4j: str, tmp_path: Path, graph: Neo4jLineageStore, progress_reads: list[float]
) -> None:
    settings = kafka_settings(kafka, neo4j, tmp_path / "home", consistency_timeout_s=60, api_query_timeout_s=60)
    result = tracked_run(settings, 3)
    assert result.position is not None
    position = parse(result.position)
    answers: list[httpx.Response] = []
    with ServerThread(create_app(settings, insecure_local=True)) as url:
        asking = threading.Thread(target=lambda: answers.append(post(url, result.position or "", result.run_id)))
        asking.start()
        time.sleep(1.0)  # the watcher is listening
        producer = KafkaProducer(bootstrap_servers=kafka)
        stale = json.dumps([[position.topic, position.partition, position.offset + 1000]]).encode()
        for _ in range(3):  # a notice naming offsets far past the run (as one from before a reset would)
            producer.send(topics.topic(topics.PROGRESS, settings.kafka_topic_prefix), stale).get(30)
            time.sleep(0.5)
        producer.close()
        assert asking.is_alive() and not answers, "released by a notice while the graph does not hold the run"
        # a read per notice (3) and per second without one (2), plus the first: a stale hint never loops
        assert len(progress_reads) <= 8, len(progress_reads)
        assert graph.run(result.run_id) is None
        with running(settings):
            asking.join(60)
            assert not asking.is_alive()
    assert answer_of(answers[0])["data"]["run"]["state"] == "COMPLETE"
    assert graph.kafka_progress()[(position.topic, position.partition)] > position.offset


def test_during_a_steady_stream_the_watcher_reads_the_progress_about_once_per_waiter(
    kafka: str, neo4j: str, tmp_path: Path, graph: Neo4jLineageStore, progress_reads: list[float]
) -> None:
    """A polling watcher re-read the progress every 5-50 ms while anyone waited (~20-200 reads a
    second); with notices it reads when a notice names a waiter's offset, or after a second without."""
    settings = kafka_settings(kafka, neo4j, tmp_path / "home", consistency_timeout_s=60, api_query_timeout_s=60)
    topic = topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
    first = tracked_run(settings, 1)
    assert first.position is not None
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=1)
    with running(settings), ServerThread(create_app(settings, insecure_local=True)) as url:
        projected(settings, first.position)
        assert answer_of(post(url, first.position, first.run_id))["data"]["run"]["state"] == "COMPLETE"
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            asked: list[concurrent.futures.Future[httpx.Response]] = []
            before = len(progress_reads)
            started = time.monotonic()
            for i, event in enumerate(workload(60, namespace="stream")):  # 360 events, ~4 s
                sent = producer.send(topic, key=event.root_run_id.encode(), value=serde.dumps(event))
                if event.event_type.is_terminal and i % 30 == 29:  # every 5th run's COMPLETE
                    md = sent.get(30)
                    token = str(Position.kafka(md.topic, md.partition, md.offset))
                    asked.append(pool.submit(post, url, token, event.run.run_id))
                time.sleep(0.01)
            answers = [a.result(90) for a in asked]
            waited = time.monotonic() - started
            reads = len(progress_reads) - before
    producer.close()
    assert [answer_of(a)["data"]["run"]["state"] for a in answers] == ["COMPLETE"] * len(asked)
    # One read per waiter, plus a safety read per second the stream lasted, at most.
    assert reads <= len(asked) + waited + 2, f"{reads} progress reads for {len(asked)} waiters in {waited:.1f}s"


def test_without_notices_a_waiter_is_released_by_the_safety_read(
    kafka: str, neo4j: str, tmp_path: Path, graph: Neo4jLineageStore
) -> None:
    """The notice topic absent when the API starts, and a projector that sends none: the watcher
    still reads the progress every second while someone waits."""
    settings = Settings(
        home=tmp_path / "home",
        store="neo4j",
        transport="kafka",
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=kafka_settings(kafka, neo4j, tmp_path / "x").kafka_topic_prefix + "absent.",
        neo4j_uri=neo4j,
        consistency_timeout_s=60,
        api_query_timeout_s=60,
    )
    result = tracked_run(settings, 4)  # the transport creates the lineage topic, not the notices'
    assert result.position is not None
    with ServerThread(create_app(settings, insecure_local=True)) as url:
        answers: list[httpx.Response] = []
        asking = threading.Thread(target=lambda: answers.append(post(url, result.position or "", result.run_id)))
        asking.start()
        with running(settings, notify=False):
            asking.join(60)
            assert not asking.is_alive()
    run = answer_of(answers[0])["data"]["run"]
    assert run == {"runId": result.run_id, "state": "COMPLETE", "results": {"double": 8}}


def test_the_notice_topic_keeps_its_notices_an_hour_and_the_lineage_topic_the_brokers_default(
    kafka: str, neo4j: str, tmp_path: Path
) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    settings = kafka_settings(kafka, neo4j, tmp_path / "home")  # creates the projector's topics
    names = [topics.topic(t, settings.kafka_topic_prefix) for t in (topics.PROGRESS, topics.LINEAGE)]
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:  # the settings a topic was given beyond the broker's defaults
        given = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])["topic"]
    finally:
        admin.close()
    assert {n: {k: v["value"] for k, v in given[n].items()} for n in names} == {
        names[0]: {"retention.ms": "3600000"},
        names[1]: {},
    }
