"""Pick the transport from settings, and the spool operations behind `provgraph spool …`.

`events/` must not import the SDK, so these functions take any object with the attributes of
`TransportSettings` — `provgraph.events.settings.Settings` is one; `TransportOptions` is a plain one for
code that has no Settings (services, tests)::

    transport = create_transport(settings)            # settings.transport: sqlite | memory | kafka
    sent, remaining = spool_flush(settings)           # `provgraph spool flush`
    status = spool_status(settings)                   # `provgraph spool status`

To add a transport: write `<kind>.py` (see `base.py`), then add a builder to `_BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from provgraph.events.errors import ConfigError
from provgraph.events.transport.base import Transport
from provgraph.events.transport.spool import Spool

if TYPE_CHECKING:
    from provgraph.events.transport.kafka import KafkaConfig


class TransportSettings(Protocol):
    """What the transport choice reads from settings (a subset of `provgraph.events.settings.Settings`)."""

    @property
    def transport(self) -> str: ...
    @property
    def events_db(self) -> Path: ...
    @property
    def spool_dir(self) -> Path: ...
    @property
    def kafka_bootstrap_servers(self) -> str | None: ...
    @property
    def kafka_topic_prefix(self) -> str: ...
    @property
    def kafka_partitions(self) -> int: ...
    @property
    def kafka_delivery_timeout_s(self) -> float: ...


def _home() -> Path:
    return Path.home() / ".provgraph"


@dataclass(frozen=True)
class TransportOptions:
    """A `TransportSettings` without pydantic-settings: explicit values, Settings' defaults."""

    transport: str = "sqlite"
    events_db: Path = field(default_factory=lambda: _home() / "events.db")
    spool_dir: Path = field(default_factory=lambda: _home() / "spool")
    kafka_bootstrap_servers: str | None = None
    kafka_topic_prefix: str = ""
    kafka_partitions: int = 3
    kafka_delivery_timeout_s: float = 5.0


def kafka_config(settings: TransportSettings) -> KafkaConfig:
    """The Kafka transport's config from settings; `ConfigError` when no bootstrap servers are set."""
    from provgraph.events.transport.kafka import KafkaConfig

    if not settings.kafka_bootstrap_servers:
        raise ConfigError(
            "the kafka transport needs Kafka bootstrap servers: set PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS"
            " (e.g. 127.0.0.1:9092)"
        )
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic_prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        delivery_timeout_s=settings.kafka_delivery_timeout_s,
        spool_dir=settings.spool_dir,
    )


def _memory(settings: TransportSettings) -> Transport:
    from provgraph.events.transport.memory import MemoryTransport

    return MemoryTransport()


def _sqlite(settings: TransportSettings) -> Transport:
    from provgraph.events.transport.sqlite import SqliteEventLog, SqliteTransport

    return SqliteTransport(SqliteEventLog(settings.events_db))


def _kafka(settings: TransportSettings) -> Transport:
    from provgraph.events.transport.kafka import KafkaTransport

    return KafkaTransport(kafka_config(settings))


_BUILDERS: dict[str, Callable[[TransportSettings], Transport]] = {
    "sqlite": _sqlite,
    "memory": _memory,
    "kafka": _kafka,
}


def create_transport(settings: TransportSettings, *, kind: str | None = None) -> Transport:
    """The transport `kind` (default `settings.transport`) configured from `settings`.

    Raises `ConfigError` for an unknown kind, a kafka transport without bootstrap servers, or a
    missing kafka-python (the message names the `provgraph[kafka]` extra).
    """
    kind = kind or settings.transport
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown transport {kind!r} (PROVGRAPH_TRANSPORT); choose one of {', '.join(sorted(_BUILDERS))}"
        ) from None
    return builder(settings)


class SpoolStatus(NamedTuple):
    directory: Path
    records: int
    """Events waiting to be re-sent."""
    bytes: int
    segments: int


def spool_status(settings: TransportSettings) -> SpoolStatus:
    """What is waiting in the local spool (no network)."""
    with Spool(settings.spool_dir) as spool:
        stats = spool.stats()
    return SpoolStatus(settings.spool_dir, stats.records, stats.bytes, stats.segments)


def spool_flush(settings: TransportSettings, timeout: float | None = None) -> tuple[int, int]:
    """Re-send the spool to Kafka in order: (events sent, events still pending).

    `remaining > 0` means Kafka was unreachable, or another process is re-sending the same spool
    right now; the reason is logged. `ConfigError` when events are waiting but no Kafka is set.
    """
    with Spool(settings.spool_dir) as spool:
        if spool.is_empty():
            return 0, 0
        from provgraph.events.transport.kafka import KafkaTransport

        transport = KafkaTransport(kafka_config(settings), spool=spool)
        try:
            return transport.drain(timeout)
        finally:
            transport.close(timeout=0)
