"""What both consumers take from a Kafka batch: the raw records, undecoded, with their positions.

Handlers validate the bytes themselves (a record that fails validation goes to the dead-letter
topic with its original bytes and offset), so faststream's JSON decoding is bypassed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faststream.message import StreamMessage

    from provgraph.events.settings import Settings


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    @staticmethod
    def of(raw: Any) -> Record:
        """From an aiokafka `ConsumerRecord` (a tombstone's value becomes b"")."""
        return Record(raw.topic, raw.partition, raw.offset, raw.key, raw.value or b"")


async def decode_batch(msg: StreamMessage[Any]) -> list[Record]:
    """faststream decoder for batch subscribers: the raw batch as `Record`s."""
    return [Record.of(r) for r in msg.raw_message]


def service_group(settings: Settings, service: str) -> str:
    """A service's consumer group; one per topic prefix, so prefixed deployments never share offsets."""
    return f"{settings.kafka_topic_prefix}provgraph-{service}"
