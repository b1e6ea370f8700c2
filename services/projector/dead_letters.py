"""Dead letters: what the projector could not project, with the original bytes, the error and where it was.

A record on `<prefix>provgraph.dlq.v1` is one JSON object::

    {"error": "...", "stage": "validate" | "admit" | "project", "topic": "...", "partition": 0, "offset": 42,
     "original": "<base64 of the original record value>", "failed_at": "2026-01-01T00:00:00+00:00"}

keyed by the original record's key. `stage` says which step refused it: `validate` (not a valid
OpenLineage RunEvent), `admit` (valid, but it breaks a write rule of `events/admission.py`) or
`project` (the graph store refused it, e.g. an event for a run another project owns). Nothing is dropped: the
original bytes can be fixed and re-sent to the lineage topic.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from provgraph.events import topics
from provgraph.events.errors import TransportError

Stage = Literal["validate", "admit", "project"]


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    error: str
    stage: Stage
    topic: str
    partition: int
    offset: int
    original: str
    """Base64 of the original record value (see `original_bytes`)."""
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(cls, error: str, stage: Stage, topic: str, partition: int, offset: int, original: bytes) -> DeadLetter:
        return cls(
            error=error,
            stage=stage,
            topic=topic,
            partition=partition,
            offset=offset,
            original=base64.b64encode(original).decode("ascii"),
        )

    @property
    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original)

    @property
    def source(self) -> tuple[str, int, int]:
        """Where the failed record sits: (topic, partition, offset)."""
        return self.topic, self.partition, self.offset

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> DeadLetter:
        return cls.model_validate_json(data)


def read_dlq(
    bootstrap_servers: str, prefix: str, *, limit: int | None = None, timeout_s: float = 10.0
) -> list[DeadLetter]:
    """The dead letters on the DLQ topic, oldest first (the newest `limit` when given).

    Reads with a group-less consumer from the start of each partition (or `limit` before its end)
    up to the end offsets seen when called. Unreadable DLQ records are skipped: they are not ours.
    """
    from kafka import KafkaConsumer, TopicPartition

    name = topics.topic(topics.DLQ, prefix)
    if limit is not None and limit <= 0:
        return []
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            client_id="provgraph-dlq-reader",
            request_timeout_ms=int(timeout_s * 1000) + 1000,
        )
    except Exception as exc:
        raise TransportError(f"reading the dead-letter topic {name} via Kafka at {bootstrap_servers}: {exc}") from exc
    try:
        parts = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        ends: dict[Any, int] = consumer.end_offsets(tps)
        starts: dict[Any, int] = consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp], ends[tp] - limit) if limit is not None else starts[tp])
        letters: list[tuple[int, DeadLetter]] = []
        deadline = datetime.now(UTC).timestamp() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if datetime.now(UTC).timestamp() > deadline:
                raise TransportError(f"timed out after {timeout_s}s reading the dead-letter topic {name}")
            for tp, records in consumer.poll(timeout_ms=500, max_records=5000).items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    try:
                        letters.append((r.timestamp, DeadLetter.from_bytes(r.value)))
                    except ValueError:
                        continue
    except TransportError:
        raise
    except Exception as exc:
        raise TransportError(f"reading the dead-letter topic {name} via Kafka at {bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()
    letters.sort(key=lambda t: (t[0], t[1].source))
    found = [letter for _, letter in letters]
    return found[-limit:] if limit is not None else found
