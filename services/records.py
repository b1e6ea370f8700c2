"""How both consumers (launcher, projector) read Kafka: one consumer group per service reading its
topic in batches of raw records, undecoded, with their positions, and one dead-letter publisher.

Handlers validate the bytes themselves (a record that fails validation goes to the dead-letter
topic with its original bytes and offset), so faststream's JSON decoding is bypassed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from provgraph.events import topics

if TYPE_CHECKING:
    from faststream.kafka import KafkaRouter
    from faststream.kafka.publisher.usecase import DefaultPublisher
    from faststream.kafka.subscriber.usecase import BatchSubscriber
    from faststream.message import StreamMessage
    from faststream.middlewares import AckPolicy

    from provgraph.events.settings import Settings

MAX_POLL_INTERVAL_MS = 15 * 60 * 1000
"""A batch may take this long (Kubernetes or Neo4j slow to answer) before Kafka hands its partitions
to another member of the group."""
MAX_PARTITION_FETCH_BYTES = 8 * 1024 * 1024
FETCH_MAX_BYTES = 64 * 1024 * 1024
"""One fetch may hold a whole batch (events are ~1 KB)."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None
    """The record's Kafka timestamp: when it was produced (or appended, with LogAppendTime). The
    projector takes it as the event's ingestion time, so a replay of the topic finds the same."""

    @staticmethod
    def of(raw: Any) -> Record:
        """From an aiokafka `ConsumerRecord` (a tombstone's value becomes b"")."""
        return Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value or b"", raw.timestamp)

    def ingested_at(self) -> datetime | None:
        return None if self.timestamp_ms is None else datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


async def decode_batch(msg: StreamMessage[Any]) -> list[Record]:
    """faststream decoder for batch subscribers: the raw batch as `Record`s."""
    return [Record.of(r) for r in msg.raw_message]


def service_group(settings: Settings, service: str) -> str:
    """A service's consumer group; one per topic prefix, so prefixed deployments never share offsets."""
    return f"{settings.kafka_topic_prefix}provgraph-{service}"


def batch_subscriber(
    router: KafkaRouter,
    settings: Settings,
    service: str,
    topic: str,
    *,
    max_records: int,
    batch_timeout_ms: int,
    ack_policy: AckPolicy,
) -> BatchSubscriber:
    """`service`'s consumer group reading `topic` (prefixed) from its earliest offset, in batches of
    `Record`s; decorate the handler with it."""
    return router.subscriber(
        topics.topic(topic, settings.kafka_topic_prefix),
        group_id=service_group(settings, service),
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=ack_policy,
        decoder=decode_batch,
        max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
        fetch_max_bytes=FETCH_MAX_BYTES,
        max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
        title=service,
    )


def dead_letter_publisher(router: KafkaRouter, settings: Settings, service: str) -> DefaultPublisher:
    """Where `service` sends the records it refuses (the prefixed dead-letter topic)."""
    return router.publisher(
        topics.topic(topics.DLQ, settings.kafka_topic_prefix),
        title="dead letters",
        description=f"records the {service} refused",
    )
