"""Projector replicas: several `provgraph projector` processes in ONE consumer group over a topic's
partitions build exactly the graph one projector builds, also when one of them is killed mid-stream
(the group rebalances and the survivor projects what the dead one had not committed).

The workload is realistic and randomized: synthetic runs in emit order interleaved with the fold
tests' mixed events (failed, unfinished and re-labelled runs, metric histories, parents, cached and
reproduced runs, column lineage, duplicates, any order), keyed by root run like the SDK's transport,
so it spreads over every partition and a dataset version's producer and readers usually sit in
different partitions. Each record carries an ingestion time (its Kafka timestamp); the expected graph
is the embedded SQLite projection of the same events with the same ingestion times, compared whole
(`dump()`, ingestion times included). Neo4j's single-projector dump equals SQLite's
(tests/test_fold.py, tests/test_projector.py), so equal dumps here mean the replicas built what one
projector builds.
"""

from __future__ import annotations

import random
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from provgraph.events import serde, topics
from provgraph.events.model import RunEvent
from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.services.projector import list_dlq
from provgraph.services.projector.app import ensure_topics
from provgraph.services.projector.handlers import group_id
from tests.helpers import wait_for
from tests.mixed_events import mixed_events
from tests.test_projector import caught_up, lag, projector_process

pytestmark = [pytest.mark.kafka, pytest.mark.neo4j]

PARTITIONS = 4
REPLICAS = 2


@pytest.fixture
def settings(kafka: str, neo4j: str, tmp_path: Path) -> Settings:
    """Real Kafka and Neo4j, a fresh topic prefix (own topics and group), a 4-partition lineage topic."""
    s = Settings(
        home=tmp_path / "home",
        store="neo4j",
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=f"test-{uuid.uuid4().hex[:10]}.",
        kafka_partitions=PARTITIONS,
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


Stream = list[tuple[RunEvent, int]]
"""Events in send order, each with its record's timestamp (ms): its ingestion time."""


def stream(synthetic_runs: int, mixed_runs: int, seed: int) -> Stream:
    """Synthetic runs in emit order with the mixed events spliced in at random places.

    Ingestion times keep their spacing but end a minute ago: broker retention, which goes by record
    timestamps, must not see the records as old.
    """
    events, known_at = mixed_events(mixed_runs, seed)
    mixed = list(zip(events, known_at, strict=True))
    synthetic = [(e, e.event_time + timedelta(seconds=1)) for e in workload(synthetic_runs, seed=seed)]
    rng = random.Random(seed)
    total = len(synthetic) + len(mixed)
    spliced = set(rng.sample(range(total), len(mixed)))
    m, s = iter(mixed), iter(synthetic)
    merged = [next(m) if i in spliced else next(s) for i in range(total)]
    latest = max(k for _, k in merged)
    now = datetime.now(UTC) - timedelta(minutes=1)
    return [(e, int((now - (latest - k)).timestamp() * 1000)) for e, k in merged]


def produce(settings: Settings, records: Stream) -> set[int]:
    """Send the events keyed by root run (as `KafkaTransport` does); returns the partitions written."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=20)
    name = topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
    futures = [producer.send(name, serde.dumps(e), key=e.root_run_id.encode(), timestamp_ms=ts) for e, ts in records]
    producer.flush()
    partitions = {f.get(timeout=30).partition for f in futures}
    producer.close()
    return partitions


def embedded_dump(records: Stream) -> dict[str, Any]:
    """The embedded projection (SQLite) of the same events with the same ingestion times."""
    store = SqliteLineageStore(":memory:")
    store.apply([e for e, _ in records], known_at=[datetime.fromtimestamp(ts / 1000, UTC) for _, ts in records])
    return store.dump()


def assignment(settings: Settings) -> list[set[int]] | None:
    """The partitions each member of the projector group holds, once the group is stable."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        group = admin.describe_groups([group_id(settings)])[group_id(settings)]
    finally:
        admin.close()
    if group["group_state"] != "Stable":
        return None
    return [
        {p for a in m["member_assignment"]["assigned_partitions"] for p in a["partitions"]} for m in group["members"]
    ]


def split_between(settings: Settings, members: int) -> list[set[int]] | None:
    """The assignment when `members` members share every partition, each holding some; else None."""
    held = assignment(settings)
    if held is None or len(held) != members or not all(held):
        return None
    return held if sorted(p for h in held for p in h) == list(range(PARTITIONS)) else None


@contextmanager
def replicas(settings: Settings, n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`n` projector processes in the group, yielded once they share the partitions; SIGTERM at exit."""
    procs = [projector_process(settings, settings.home.parent / f"projector-{i}.log") for i in range(n)]
    try:
        wait_for(f"{n} projectors to share the partitions", lambda: split_between(settings, n), 120)
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(90) for p in procs]
    assert all(c in (0, -signal.SIGKILL) for c in codes), codes  # graceful stop, or killed by the test


def test_replicas_in_one_group_build_the_graph_one_projector_builds(
    settings: Settings, graph: Neo4jLineageStore
) -> None:
    records = stream(synthetic_runs=600, mixed_runs=120, seed=11)
    with replicas(settings, REPLICAS):
        assert produce(settings, records) == set(range(PARTITIONS))  # every replica has work
        caught_up(settings)
    assert graph.dump() == embedded_dump(records)
    assert list_dlq(settings) == []


@pytest.mark.slow
def test_a_replica_killed_mid_stream_loses_nothing(settings: Settings, graph: Neo4jLineageStore) -> None:
    records = stream(synthetic_runs=3000, mixed_runs=150, seed=12)  # ~19,000 events
    # The kill lands between two parts of the stream: sent whole before it, the stream was sometimes
    # all projected by the time the producer returned (a loaded machine produces slower than it projects).
    head, tail = records[: len(records) // 3], records[len(records) // 3 :]
    with replicas(settings, REPLICAS) as procs:
        produce(settings, head)
        wait_for("the first batches in the graph", lambda: graph.count()["Run"] > 0, 120, interval=0.02)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(30)
        produce(settings, tail)
        assert lag(settings) > 0  # the dead member's partitions wait for the group to notice it
        wait_for("the survivor to hold every partition", lambda: split_between(settings, 1), 120)
        caught_up(settings, timeout=240)
    assert graph.dump() == embedded_dump(records)
    assert list_dlq(settings) == []
