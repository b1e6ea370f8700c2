"""The Kafka transport against a real broker, including an outage in the middle of a run.

Unmarked tests need no broker (they point at a closed port); `kafka`-marked ones use the session
broker from the `kafka` fixture, each with its own topic prefix.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from provgraph.events import topics
from provgraph.events.errors import ConfigError
from provgraph.events.facets import ParentRunFacet
from provgraph.events.facets.standard import JobRef, RootRef, RunRef
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps, event_id, loads
from provgraph.events.settings import KAFKA_UNSET, Settings
from provgraph.events.synthetic import run_events, workload
from provgraph.events.transport.factory import create_transport, kafka_config, spool_flush, spool_status
from provgraph.events.transport.kafka import KafkaConfig, KafkaTransport
from provgraph.events.transport.memory import MemoryTransport
from provgraph.events.transport.sqlite import SqliteTransport
from provgraph.graph.sqlite_store import SqliteLineageStore
from tests import services
from tests.helpers import read_topic

CLOSED_PORT = "127.0.0.1:1"


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}."


def _config(servers: str, tmp_path: Path, **kw: Any) -> KafkaConfig:
    """The config `settings` give (spool under `tmp_path`), with `kw` instead of Settings' defaults."""
    return kafka_config(Settings(home=tmp_path, kafka_bootstrap_servers=servers)).model_copy(update=kw)


def _partitions(servers: str, topic: str) -> set[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=servers)
    try:
        return set(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def _by_run(events: list[RunEvent]) -> dict[str, list[RunEvent]]:
    runs: dict[str, list[RunEvent]] = defaultdict(list)
    for e in events:
        runs[e.run.run_id].append(e)
    return runs


def _per_run(records: list[Any]) -> dict[str, list[RunEvent]]:
    return _by_run([loads(r.value) for r in records])


def _child_events(run_id: str, parent: str, root: str | None) -> list[RunEvent]:
    facet = ParentRunFacet(
        run=RunRef(run_id=parent),
        job=JobRef(namespace="synthetic", name="pipeline"),
        root=RootRef(run=RunRef(run_id=root), job=JobRef(namespace="synthetic", name="pipeline")) if root else None,
    )
    return [
        e.model_copy(
            update={"run": e.run.model_copy(update={"facets": e.run.facets.model_copy(update={"parent": facet})})}
        )
        for e in run_events(run_id, job="step")
    ]


# -- without a broker ---------------------------------------------------------------------------


def test_import_provgraph_does_not_load_kafka_python() -> None:
    code = (
        "import sys, provgraph, provgraph.events.transport.factory, provgraph.events.transport.kafka;"
        "print('kafka' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_missing_kafka_python_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kafka", None)
    with pytest.raises(ConfigError, match=r"pip install 'provgraph\[kafka\]'"):
        KafkaTransport(_config(CLOSED_PORT, tmp_path))


def test_factory_picks_the_transport(tmp_path: Path) -> None:
    assert isinstance(create_transport(Settings(home=tmp_path, transport="memory")), MemoryTransport)
    sqlite = create_transport(Settings(home=tmp_path, transport="sqlite"))
    assert isinstance(sqlite, SqliteTransport)
    kafka = create_transport(Settings(home=tmp_path, transport="kafka", kafka_bootstrap_servers=CLOSED_PORT))
    assert isinstance(kafka, KafkaTransport)
    assert kafka.spool.directory == tmp_path / "spool"
    with pytest.raises(ConfigError) as unset:
        create_transport(Settings(home=tmp_path, transport="kafka"))
    assert str(unset.value) == KAFKA_UNSET
    with pytest.raises(ConfigError, match=r"unknown transport 'carrier-pigeon'.*kafka, memory, sqlite"):
        create_transport(Settings(home=tmp_path), kind="carrier-pigeon")


def test_the_kafka_transport_takes_its_defaults_from_settings(tmp_path: Path) -> None:
    """`Settings` holds the only defaults: the transport built from bare settings has exactly them."""
    config = kafka_config(Settings(home=tmp_path, kafka_bootstrap_servers=CLOSED_PORT))
    defaults = Settings.model_fields
    assert (config.topic_prefix, config.partitions, config.delivery_timeout_s) == (
        defaults["kafka_topic_prefix"].default,
        defaults["kafka_partitions"].default,
        defaults["kafka_delivery_timeout_s"].default,
    )


def test_factory_accepts_provgraph_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        transport="kafka",
        kafka_bootstrap_servers=CLOSED_PORT,
        kafka_topic_prefix="p.",
        kafka_partitions=7,
        kafka_delivery_timeout_s=1.5,
    )
    transport = create_transport(settings)
    assert isinstance(transport, KafkaTransport)
    assert transport.config.topic == "p." + topics.LINEAGE
    assert (transport.config.partitions, transport.config.delivery_timeout_s) == (7, 1.5)
    assert transport.spool.directory == settings.spool_dir


def test_unreachable_kafka_spools_fast_and_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events = list(workload(3))
    transport = KafkaTransport(_config(CLOSED_PORT, tmp_path, delivery_timeout_s=2.0))
    caplog.set_level(logging.WARNING, logger="provgraph.events.transport.kafka")
    durations = []
    for e in events:
        t0 = time.perf_counter()
        transport.emit(e)
        durations.append(time.perf_counter() - t0)
    assert max(durations) < 1.0
    assert transport.pending == len(events)
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("provgraph")]
    assert len(warnings) == 1, "one warning per outage"
    assert "cannot deliver to Kafka" in warnings[0] and str(transport.spool.directory) in warnings[0]
    # The spool holds the exact bytes, keyed by root run id, in emit order.
    spooled = list(transport.spool.pending())
    assert [loads(r.value) for r in spooled] == events
    assert [r.key.decode() for r in spooled] == [e.root_run_id for e in events]
    assert transport.flush(timeout=1) is False
    assert transport.close(timeout=1) is False

    options = Settings(home=tmp_path, kafka_bootstrap_servers=CLOSED_PORT)
    status = spool_status(options)
    assert (status.records, status.segments) == (len(events), 1)
    flushed = spool_flush(options, timeout=1)
    assert flushed[:2] == (0, len(events))
    assert flushed.reason == f"no Kafka broker accepts connections at {CLOSED_PORT}"
    with pytest.raises(ConfigError) as unset:
        spool_flush(Settings(home=tmp_path))
    assert str(unset.value) == KAFKA_UNSET
    assert spool_flush(Settings(home=tmp_path / "empty")) == (0, 0, None)


# -- real broker --------------------------------------------------------------------------------


@pytest.mark.kafka
def test_events_are_keyed_by_root_run_id_on_the_configured_partitions(kafka: str, tmp_path: Path) -> None:
    config = _config(kafka, tmp_path, topic_prefix=_prefix(), partitions=4, delivery_timeout_s=10)
    events = list(workload(12))
    transport = KafkaTransport(config)
    for e in events:
        transport.emit(e)
    assert transport.close() is True
    assert transport.pending == 0

    for name in (topics.LINEAGE, topics.REQUESTS, topics.DLQ):
        assert _partitions(kafka, topics.topic(name, config.topic_prefix)) == {0, 1, 2, 3}
    records = read_topic(kafka, config.topic)
    assert len(records) == len(events), "no duplicates when Kafka never failed"
    partition_of: dict[bytes, set[int]] = defaultdict(set)
    for r in records:
        assert r.key.decode() == loads(r.value).root_run_id
        partition_of[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partition_of.values()), "a run chain stays in one partition"
    assert len({p for ps in partition_of.values() for p in ps}) > 1, "runs spread over partitions"
    assert _per_run(records) == _by_run(events), "each run's events in emit order"


def test_a_batch_kafka_cannot_take_is_spooled_in_order(tmp_path: Path) -> None:
    """`emit_many` with Kafka unreachable: every event of the batch in the spool, in order."""
    events = list(workload(2))
    transport = KafkaTransport(_config(CLOSED_PORT, tmp_path, delivery_timeout_s=1))
    transport.emit_many(events)
    assert [r.value for r in transport.spool.pending()] == [dumps(e) for e in events]
    assert transport.position(events[-1].root_run_id) is None
    transport.close(timeout=0)


@pytest.mark.kafka
def test_a_batch_is_delivered_once_in_order(kafka: str, tmp_path: Path) -> None:
    """`emit_many` (a run's last events together): all acknowledged with one wait, none spooled, the
    position of the run's last event known."""
    config = _config(kafka, tmp_path, topic_prefix=_prefix(), partitions=2)
    events = list(workload(4))
    transport = KafkaTransport(config)
    for run in _by_run(events).values():
        transport.emit(run[0])
        transport.emit_many(run[1:])
        assert transport.spool.is_empty()
        assert transport.position(run[-1].root_run_id) is not None
    assert transport.close() is True
    records = read_topic(kafka, config.topic)
    assert len(records) == len(events)
    assert _per_run(records) == _by_run(events)


@pytest.mark.kafka
def test_child_runs_are_keyed_by_the_root_run_id(kafka: str, tmp_path: Path) -> None:
    """Steps of a pipeline (parent facet) share the root's key, hence its partition and order."""
    config = _config(kafka, tmp_path, topic_prefix=_prefix(), partitions=8)
    pipeline = run_events("pipeline-1", job="pipeline")
    step = _child_events("step-1", parent="pipeline-1", root=None)  # parent is the root
    nested = _child_events("step-1-1", parent="step-1", root="pipeline-1")  # grandchild names the root
    transport = KafkaTransport(config)
    for e in [pipeline[0], step[0], nested[0], *nested[1:], *step[1:], *pipeline[1:]]:
        transport.emit(e)
    assert transport.close() is True

    records = read_topic(kafka, config.topic)
    assert len(records) == len(pipeline) + len(step) + len(nested)
    assert {r.key for r in records} == {b"pipeline-1"}
    assert len({r.partition for r in records}) == 1
    runs = _per_run(records)
    assert [e.seq for e in runs["step-1-1"]] == [e.seq for e in nested]
    assert [loads(r.value).run.run_id for r in records][:3] == ["pipeline-1", "step-1", "step-1-1"]


@pytest.mark.kafka
@pytest.mark.slow
def test_kafka_outage_in_the_middle_of_a_run_loses_nothing(
    kafka: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop the broker mid-run, keep emitting, start it again: every event arrives, per-run order kept."""
    if not services.owns("kafka"):
        pytest.skip("the broker is shared (not started by this session): the outage test needs its own")
    caplog.set_level(logging.INFO, logger="provgraph.events.transport.kafka")
    delivery_timeout = 2.0
    config = _config(
        kafka, tmp_path, topic_prefix=_prefix(), partitions=3, delivery_timeout_s=delivery_timeout, retry_max_s=1.0
    )
    events = list(workload(8))  # 8 runs x 6 events, emitted run after run
    before, during = 20, 40  # the broker stops after event 20 (inside the 3rd run) and is back after 40
    transport = KafkaTransport(config)
    for e in events[:before]:
        transport.emit(e)
    assert transport.spool.is_empty()

    services.restart("kafka", "stop")
    try:
        durations = []
        for e in events[before:during]:
            t0 = time.perf_counter()
            transport.emit(e)  # never raises: the run goes on
            durations.append(time.perf_counter() - t0)
        assert durations[0] < delivery_timeout + 2.0, "the first failure is bounded by the delivery timeout"
        assert max(durations[1:]) < 0.5, f"after the first failure emits go straight to the spool: {durations}"
        assert statistics.median(durations[1:]) < 0.1
        assert transport.pending == during - before
        assert transport.flush(timeout=1) is False, "flush reports what is still pending"
    finally:
        services.restart("kafka", "start")

    # Back up: once the backoff has passed (the time is what is tested), the next emit re-sends the
    # spool automatically, in order, before its own event.
    time.sleep(config.retry_max_s + 0.2)
    for e in events[during:]:
        transport.emit(e)
    assert transport.spool.is_empty(), "re-sent at the next emit once Kafka was reachable"
    # A crash between a re-send and its ack re-sends records Kafka already has: duplicates.
    for e in events[:3]:
        transport.spool.append(e.root_run_id.encode(), dumps(e))
    assert transport.close() is True

    warnings = [r for r in caplog.records if r.name.startswith("provgraph") and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "cannot deliver to Kafka" in warnings[0].getMessage()

    records = read_topic(kafka, config.topic)
    consumed = [loads(r.value) for r in records]
    ids = [event_id(e) for e in consumed]
    assert set(ids) == {event_id(e) for e in events}, "none missing"
    assert len(ids) >= len(events) + 3
    for run_id, run in _per_run(records).items():
        first_seen: list[int] = []
        for e in run:
            if e.seq not in first_seen:
                first_seen.append(e.seq)
        expected = [e.seq for e in events if e.run.run_id == run_id]
        assert first_seen == expected, f"run {run_id} out of order: {[e.seq for e in run]}"
    for r in records:
        assert r.key.decode() == loads(r.value).root_run_id

    # Duplicates (at-least-once) change nothing in the projected graph.
    replayed, undisturbed = SqliteLineageStore(tmp_path / "replayed.db"), SqliteLineageStore(tmp_path / "direct.db")
    replayed.apply(consumed)
    undisturbed.apply(events)
    assert replayed.dump() == undisturbed.dump()
    print(
        f"outage: {len(events)} events, {len(records)} records on the topic ({len(records) - len(events)} duplicates);"
        f" first failed emit {durations[0]:.2f} s, then median {statistics.median(durations[1:]) * 1e3:.1f} ms"
    )


@pytest.mark.kafka
def test_spool_flush_resends_what_an_earlier_process_left(kafka: str, tmp_path: Path) -> None:
    """Events spooled while Kafka was unreachable are re-sent in order by `provgraph spool flush`."""
    events = list(workload(4))
    offline = KafkaTransport(_config(CLOSED_PORT, tmp_path))
    for e in events:
        offline.emit(e)
    offline.close(timeout=0)

    options = Settings(home=tmp_path, kafka_bootstrap_servers=kafka, kafka_topic_prefix=_prefix())
    assert spool_status(options).records == len(events)
    assert spool_flush(options) == (len(events), 0, None)
    assert spool_status(options).records == 0
    records = read_topic(kafka, topics.topic(topics.LINEAGE, options.kafka_topic_prefix))
    assert sorted(r.value for r in records) == sorted(dumps(e) for e in events)
    assert _per_run(records) == _by_run(events)
