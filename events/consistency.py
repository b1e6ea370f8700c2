"""Consistency tokens: where an event landed in the log, so a read can wait until it is projected.

    kafka:<topic>:<partition>:<offset>   the Kafka record holding the event
    sqlite:<offset>                      the event's offset in the embedded SQLite event log

The SDK hands one back per run (`RunResult.position`: its last event's); a read given one
(`consistentWith`, `--consistent-with`) waits until the graph has projected that position. Kafka
orders records per partition and the projector commits a partition's records in order, so "the
graph holds everything of this partition before offset N+1" means the event is in. A run's events
share a key (its root run), hence a partition: the last event's token covers all of them.

Parsing is strict (one canonical spelling, bounded numbers), so a token is safe to log and compare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from provgraph.events.errors import ConfigError

_KAFKA = re.compile(r"kafka:([A-Za-z0-9._-]{1,249}):(0|[1-9][0-9]{0,8}):(0|[1-9][0-9]{0,17})")
_SQLITE = re.compile(r"sqlite:([1-9][0-9]{0,17})")
MAX_TOKEN_CHARS = 300


@dataclass(frozen=True)
class Position:
    """One event's place: a Kafka record (`topic`, `partition`, `offset`) or an embedded-log offset."""

    kind: Literal["kafka", "sqlite"]
    offset: int
    topic: str = ""
    partition: int = 0

    @classmethod
    def kafka(cls, topic: str, partition: int, offset: int) -> Position:
        return cls("kafka", offset, topic, partition)

    @classmethod
    def sqlite(cls, offset: int) -> Position:
        return cls("sqlite", offset)

    @property
    def stream(self) -> tuple[str, str, int]:
        """What the offset counts in: a Kafka partition, or the embedded log."""
        return (self.kind, self.topic, self.partition)

    def __str__(self) -> str:
        if self.kind == "kafka":
            return f"kafka:{self.topic}:{self.partition}:{self.offset}"
        return f"sqlite:{self.offset}"

    def reached_by(self, projected: int) -> bool:
        """Whether a projection at `projected` holds this event.

        Kafka: `projected` is the partition's next offset to project (one past the last one in the
        graph). SQLite: the last log offset in the graph."""
        return projected > self.offset if self.kind == "kafka" else projected >= self.offset


def parse(text: str) -> Position:
    """The position a token names; `ConfigError` (one line) for anything but a canonical token."""
    if len(text) <= MAX_TOKEN_CHARS:
        if m := _KAFKA.fullmatch(text):
            return Position("kafka", int(m[3]), m[1], int(m[2]))
        if m := _SQLITE.fullmatch(text):
            return Position("sqlite", int(m[1]))
    shown = text if len(text) <= 60 else text[:57] + "..."
    raise ConfigError(
        f"malformed consistency token {shown!r}: expected kafka:<topic>:<partition>:<offset> or sqlite:<offset>"
    )
