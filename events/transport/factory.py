"""Pick the transport from settings, and the spool operations behind `provgraph spool …`::

    transport = create_transport(settings)            # settings.transport: sqlite | memory | kafka | http
    sent, remaining, reason = spool_flush(settings)   # `provgraph spool flush`
    status = spool_status(settings)                   # `provgraph spool status`

To add a transport: write `<kind>.py` (see `base.py`), then add a builder to `_BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from provgraph.events.errors import ConfigError
from provgraph.events.settings import Settings, require_http, require_kafka
from provgraph.events.transport.base import Transport
from provgraph.events.transport.spool import REJECTED_DIR, Spool

if TYPE_CHECKING:
    from provgraph.events.transport.http import HttpConfig
    from provgraph.events.transport.kafka import KafkaConfig
    from provgraph.events.transport.spooled import SpooledTransport


def kafka_config(settings: Settings) -> KafkaConfig:
    """The Kafka transport's config from settings; `ConfigError` when no bootstrap servers are set."""
    from provgraph.events.transport.kafka import KafkaConfig

    return KafkaConfig(
        bootstrap_servers=require_kafka(settings),
        topic_prefix=settings.kafka_topic_prefix,
        partitions=settings.kafka_partitions,
        delivery_timeout_s=settings.kafka_delivery_timeout_s,
        spool_dir=settings.spool_dir,
    )


def http_config(settings: Settings) -> HttpConfig:
    """The HTTP transport's config from settings; `ConfigError` when no URL is set or it is not http(s)."""
    from pydantic import ValidationError

    from provgraph.events.transport.http import HttpConfig

    try:
        return HttpConfig(
            url=require_http(settings),
            endpoint=settings.http_endpoint,
            token=settings.http_token,
            spool_dir=settings.spool_dir,
            timeout_s=settings.http_timeout_s,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid setting http_url (PROVGRAPH_HTTP_URL): {exc.errors()[0]['msg']}") from exc


def _memory(settings: Settings) -> Transport:
    from provgraph.events.transport.memory import MemoryTransport

    return MemoryTransport()


def _sqlite(settings: Settings) -> Transport:
    from provgraph.events.transport.sqlite import SqliteEventLog, SqliteTransport

    return SqliteTransport(SqliteEventLog(settings.events_db))


def _kafka(settings: Settings) -> Transport:
    from provgraph.events.transport.kafka import KafkaTransport

    return KafkaTransport(kafka_config(settings))


def _http(settings: Settings) -> Transport:
    from provgraph.events.transport.http import HttpTransport

    return HttpTransport(http_config(settings))


_BUILDERS: dict[str, Callable[[Settings], Transport]] = {
    "sqlite": _sqlite,
    "memory": _memory,
    "kafka": _kafka,
    "http": _http,
}


def create_transport(settings: Settings, *, kind: str | None = None) -> Transport:
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
    rejected: int
    """Events the HTTP endpoint refused for their content, kept in `<spool>/rejected/` (`http.py`)."""


def spool_status(settings: Settings) -> SpoolStatus:
    """What is waiting in the local spool, and what was set aside as rejected (no network)."""
    with Spool(settings.spool_dir) as spool:
        stats = spool.stats()
    rejected_dir = settings.spool_dir / REJECTED_DIR
    rejected = 0
    if rejected_dir.is_dir():
        with Spool(rejected_dir) as aside:
            rejected = aside.stats().records
    return SpoolStatus(settings.spool_dir, stats.records, stats.bytes, stats.segments, rejected)


class Flushed(NamedTuple):
    sent: int
    remaining: int
    reason: str | None
    """Why events are still waiting (unreachable, refused …); None if none are or nobody tried."""


def spool_flush(settings: Settings, timeout: float | None = None) -> Flushed:
    """Re-send the spool in order to the HTTP endpoint when `settings.transport` is http, else to
    Kafka: (events sent, events still pending, why some are still pending).

    `remaining > 0` means the destination was unreachable or refused them (the reason says which),
    or another process is re-sending the same spool right now (no reason). `ConfigError` when events
    are waiting but no destination is set.
    """
    with Spool(settings.spool_dir) as spool:
        if spool.is_empty():
            return Flushed(0, 0, None)
        transport = _spooled(settings, spool)
        try:
            sent, remaining = transport.drain(timeout)
            return Flushed(sent, remaining, None if transport.last_error is None else str(transport.last_error))
        finally:
            transport.close(timeout=0)


def _spooled(settings: Settings, spool: Spool) -> SpooledTransport:
    if settings.transport == "http":
        from provgraph.events.transport.http import HttpTransport

        return HttpTransport(http_config(settings), spool=spool)
    from provgraph.events.transport.kafka import KafkaTransport

    return KafkaTransport(kafka_config(settings), spool=spool)
