"""Kafka transport: events to `<prefix>provgraph.lineage.v1`, and to the local spool when Kafka is down.

Key = the event's root run id (`RunEvent.root_run_id`: the pipeline's run, else the run itself).
Kafka orders records only within a partition and picks the partition from the key, so keying by the
root keeps a whole run chain (a pipeline and its steps) in one partition, in emit order; keying by
the run id would let a step's events overtake its pipeline's. OpenLineage's Kafka transport keys
the same way (`_get_run_message_key`).

Delivery contract (`spooled.py`, shared with the HTTP transport): when `emit` returns, the event is
either acknowledged by Kafka (`acks="all"`, idempotent producer) or fsynced in the spool; `emit`
never raises into user code; spooled events are re-sent in order once Kafka is reachable, at least
once (duplicates are harmless: projections de-duplicate by event id). Before reconnecting, a TCP
connect to the bootstrap servers tells a closed port in milliseconds.

kafka-python is imported only when a `KafkaTransport` is created, so `import provgraph` stays light;
without it the constructor raises `ConfigError` naming the `provgraph[kafka]` extra. Every
kafka-python error is translated to `TransportError` inside this module.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from provgraph.events import topics
from provgraph.events.consistency import Position
from provgraph.events.errors import ConfigError, TransportError
from provgraph.events.transport.spool import Record, Spool
from provgraph.events.transport.spooled import SpooledTransport

log = logging.getLogger(__name__)

ALL_TOPICS = (topics.LINEAGE, topics.REQUESTS, topics.DLQ)

_ensured: set[tuple[str, str]] = set()
"""(bootstrap servers, topic) pairs this process has already ensured, so each is checked once."""
_ensured_lock = threading.Lock()


class KafkaConfig(BaseModel):
    """Where and how the Kafka transport sends. `producer` passes extra options to kafka-python.

    The fields that are settings have no default here: build it with `factory.kafka_config(settings)`,
    so `Settings` holds the only defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: str = Field(min_length=1)
    spool_dir: Path
    topic_prefix: str
    partitions: int = Field(ge=1)
    """Partition count for topics this transport creates (existing topics are left as they are)."""
    replication_factor: int = Field(default=-1, ge=-1)
    """For created topics; -1 = the broker's `default.replication.factor`."""
    delivery_timeout_s: float = Field(gt=0)
    """Longest an `emit` waits for Kafka before it spools the event."""
    retry_interval_s: float = Field(default=1.0, gt=0)
    """After a failure, `emit` spools without trying Kafka for this long, doubling per failure …"""
    retry_max_s: float = Field(default=60.0, gt=0)
    """… up to this. `flush()` always tries."""
    create_topics: bool = True
    client_id: str = "provgraph"
    producer: dict[str, Any] = Field(default_factory=dict)
    """Pass-through kafka-python `KafkaProducer` options (security, compression …); they win."""

    @property
    def topic(self) -> str:
        return topics.topic(topics.LINEAGE, self.topic_prefix)


def _import_kafka() -> Any:
    """The kafka-python package (untyped, hence Any), or `ConfigError` naming the extra to install."""
    try:
        import kafka  # lazy: `import provgraph` must not load kafka-python
    except ImportError as exc:
        raise ConfigError(
            f"the Kafka transport needs kafka-python: pip install 'provgraph[kafka]' (import failed: {exc})"
        ) from exc
    return kafka


def _kafka_major() -> int:
    from kafka.version import __version__

    return int(str(__version__).split(".")[0])


@contextmanager
def _translated(what: str, servers: str) -> Iterator[None]:
    """Any kafka-python failure (KafkaError, but also OSError, AssertionError …) → TransportError."""
    try:
        yield
    except (TransportError, ConfigError):
        raise
    except Exception as exc:
        raise TransportError(f"{what} via Kafka at {servers} failed: {type(exc).__name__}: {exc}") from exc


def _timeout_option(cls: Any, ms: int) -> dict[str, int]:
    """The bootstrap timeout knob, renamed between kafka-python 2.x and 3.x."""
    for name in ("bootstrap_timeout_ms", "api_version_auto_timeout_ms"):
        if name in cls.DEFAULT_CONFIG:
            return {name: ms}
    return {}


def reachable(servers: str, timeout_s: float) -> bool:
    """True when a TCP connection to any bootstrap server opens within `timeout_s` (a cheap probe)."""
    for server in servers.split(","):
        server = server.strip().rpartition("://")[2]
        host, sep, port = server.rpartition(":")
        if not sep or not port.isdigit():
            host, port = server, "9092"
        try:
            address = (host.strip("[]") or "localhost", int(port))
            socket.create_connection(address, timeout=max(timeout_s, 0.05)).close()
            return True
        except OSError:
            continue
    return False


def ensure_topics(
    config: KafkaConfig, names: Iterable[str] = ALL_TOPICS, *, timeout_s: float | None = None
) -> list[str]:
    """Create the topics that do not exist yet, with `config.partitions` partitions; returns those created.

    `names` are the logical names from `provgraph.events.topics`; `config.topic_prefix` is applied
    here. Existing topics are left untouched (even with another partition count). Waits until the
    created topics have leaders, so a producer can use them at once. Raises `TransportError`.
    Services call this at start-up; the Kafka transport calls it once per process and bootstrap.
    """
    kafka = _import_kafka()
    timeout_ms = max(int((timeout_s if timeout_s is not None else max(config.delivery_timeout_s, 10.0)) * 1000), 500)
    wanted = {topics.topic(n, config.topic_prefix): topics.CONFIGS.get(n, {}) for n in names}
    with _translated("creating topics", config.bootstrap_servers):
        admin_cls = kafka.KafkaAdminClient
        options = {  # the connection options (security …) of `producer` apply to the admin client too
            **{k: v for k, v in config.producer.items() if k in admin_cls.DEFAULT_CONFIG},
            "bootstrap_servers": config.bootstrap_servers,
            "client_id": f"{config.client_id}-admin",
            "request_timeout_ms": timeout_ms,
            **_timeout_option(admin_cls, timeout_ms),
        }
        admin = admin_cls(**options)
        try:
            existing = set(admin.list_topics())
            missing = {t: settings for t, settings in wanted.items() if t not in existing}
            created = _create(kafka, admin, config, missing, timeout_ms) if missing else []
        finally:
            admin.close()
    if created:
        log.info("created Kafka topics %s with %d partitions", ", ".join(created), config.partitions)
    return created


def _create(
    kafka: Any, admin: Any, config: KafkaConfig, names: dict[str, dict[str, str]], timeout_ms: int
) -> list[str]:
    """Create `names` (each with its topic settings); returns those created."""
    if _kafka_major() < 3:  # kafka-python 2.x: NewTopic objects and an explicit replication factor
        created = []
        for name, settings in names.items():
            try:
                rf = max(config.replication_factor, 1)
                new = kafka.admin.NewTopic(name, config.partitions, rf, topic_configs=settings)
                admin.create_topics([new], timeout_ms=timeout_ms)
                created.append(name)
            except kafka.errors.TopicAlreadyExistsError:
                pass  # created concurrently by another process: fine
        return created
    spec = {
        n: {"num_partitions": config.partitions, "replication_factor": config.replication_factor, "configs": settings}
        for n, settings in names.items()
    }
    result = admin.create_topics(spec, timeout_ms=timeout_ms, raise_errors=False)
    created, errors = [], []
    for topic in result["topics"]:
        code = topic.get("error_code", 0)
        if code == 0:
            created.append(topic["name"])
        elif code != kafka.errors.TopicAlreadyExistsError.errno:  # concurrent creation is fine
            reason = topic.get("error_message") or kafka.errors.for_code(code).__name__
            errors.append(f"{topic['name']}: {reason}")
    if errors:
        raise TransportError(f"creating topics via Kafka at {config.bootstrap_servers} failed: {'; '.join(errors)}")
    if created:
        admin.wait_for_topics(created, timeout_ms=timeout_ms)
    return created


def _position(metadata: Any) -> Position:
    """A produced record's position, from kafka-python's `RecordMetadata`."""
    return Position.kafka(metadata.topic, metadata.partition, metadata.offset)


class KafkaTransport(SpooledTransport):
    """Sends events to Kafka keyed by root run id; spools them locally while Kafka is unreachable."""

    kind = "kafka"
    config_class: ClassVar[type[KafkaConfig]] = KafkaConfig
    destination = "Kafka"

    def __init__(self, config: KafkaConfig, *, spool: Spool | None = None) -> None:
        self.config = config
        self._kafka = _import_kafka()
        super().__init__(
            spool if spool is not None else Spool(config.spool_dir),
            delivery_timeout_s=config.delivery_timeout_s,
            retry_interval_s=config.retry_interval_s,
            retry_max_s=config.retry_max_s,
        )
        self._producer: Any = None

    def _connect(self, deadline: float | None) -> Any:
        """The producer, created (and topics ensured) when needed. Raises `TransportError`.

        A TCP connect to the bootstrap servers comes first (milliseconds when the port is closed)."""
        if self._producer is not None:
            return self._producer
        servers = self.config.bootstrap_servers
        budget = self._remaining(deadline)
        if not reachable(servers, min(1.0, budget)):
            raise TransportError(f"no Kafka broker accepts connections at {servers}")
        if self.config.create_topics:
            self._ensure_topics_once(deadline)
        producer_cls = self._kafka.KafkaProducer
        defaults = producer_cls.DEFAULT_CONFIG
        timeout_ms = int(self.config.delivery_timeout_s * 1000)
        options: dict[str, Any] = {
            "bootstrap_servers": servers,
            "client_id": self.config.client_id,
            "acks": "all",
            "linger_ms": 0,
            "max_block_ms": timeout_ms,
            **_timeout_option(producer_cls, max(int(self._remaining(deadline) * 1000), 500)),
        }
        if "enable_idempotence" in defaults:
            # The client has an idempotent producer: its retries neither duplicate nor reorder.
            options["enable_idempotence"] = True
        else:  # older kafka-python: retries keep the order only with one request in flight
            options["max_in_flight_requests_per_connection"] = 1
            options["retries"] = 5
        if "delivery_timeout_ms" in defaults:
            options["delivery_timeout_ms"] = timeout_ms
            options["request_timeout_ms"] = max(timeout_ms - 1, 1)
        else:
            options["request_timeout_ms"] = timeout_ms
        options.update(self.config.producer)
        with _translated("connecting", servers):
            self._producer = producer_cls(**options)
        return self._producer

    def _ensure_topics_once(self, deadline: float | None) -> None:
        """Create missing topics once per process and bootstrap. A failure is logged, not fatal: the
        broker answered the probe, topics may exist already, and creating them may simply not be
        allowed to this client (ACLs); a real outage fails the producer next anyway."""
        servers = self.config.bootstrap_servers
        with _ensured_lock:
            if (servers, self.config.topic) in _ensured:
                return
            try:
                ensure_topics(self.config, timeout_s=self._remaining(deadline))
            except TransportError as exc:
                log.warning("provgraph: could not check or create the Kafka topics (%s); sending anyway", exc)
                return
            _ensured.update((servers, topics.topic(n, self.config.topic_prefix)) for n in ALL_TOPICS)

    def _send_now(self, key: bytes, value: bytes, deadline: float) -> None:
        producer = self._connect(deadline)
        with _translated("sending an event", self.config.bootstrap_servers):
            future = producer.send(self.config.topic, key=key, value=value)
            self._delivered(key, _position(future.get(timeout=self._remaining(deadline))), resent=False)

    def _send_batch(self, batch: list[Record], deadline: float | None) -> tuple[int, TransportError | None]:
        """Send a batch and wait for it: (records Kafka acknowledged, in order, the failure)."""
        return self._send_all([(rec.key, rec.value) for rec in batch], deadline, resent=True)

    def _send_direct(self, records: list[tuple[bytes, bytes]], deadline: float) -> tuple[int, TransportError | None]:
        """Several events of one `emit_many` sent together, one wait for all their acknowledgements."""
        if len(records) == 1:
            return super()._send_direct(records, deadline)
        return self._send_all(records, deadline, resent=False)

    def _send_all(
        self, records: list[tuple[bytes, bytes]], deadline: float | None, *, resent: bool
    ) -> tuple[int, TransportError | None]:
        """Send (key, value) records and wait for them: (records Kafka acknowledged, in order, the failure)."""
        servers = self.config.bootstrap_servers
        what = "re-sending spooled events" if resent else "sending events"
        producer = self._connect(deadline)
        futures: list[Any] = []
        error: TransportError | None = None
        try:
            with _translated(what, servers):
                for key, value in records:
                    futures.append(producer.send(self.config.topic, key=key, value=value))
                producer.flush(timeout=self._remaining(deadline))
        except TransportError as exc:
            error = exc
        done = 0
        for future in futures:
            if not (future.is_done and future.succeeded()):
                break
            self._delivered(records[done][0], _position(future.value), resent=resent)
            done += 1
        if done < len(records) and error is None:
            future = futures[done]
            reason = future.exception if future.is_done else "not acknowledged in time"
            error = TransportError(f"{what} via Kafka at {servers} failed: {reason}")
        return done, error

    def _drop_client(self, timeout: float) -> None:
        """Close the producer. After a failure its buffered state is unreliable: abort (timeout=0)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - closing a broken client must not hide the original failure
                log.debug("closing the Kafka producer failed: %s", exc)
