"""How far the graph has projected the event log: what a read waits on to see its own writes.

Neo4j: one `(:ProjectionProgress {topic, partition, next})` node per Kafka partition, where `next`
is one past the partition's last record in the graph. The projector sets it as the last statement
of each batch's graph transaction (in a transaction of its own after a batch it had to bisect), before
it commits the offsets to Kafka, so it is never ahead of the data: a crash before the Kafka commit
leaves the batch to be projected (idempotently) and published again. It only grows (`max`), so
replicas taking a partition over from one another cannot move it back.
Embedded SQLite: the projection's own `projected_offset`, written in the batch's transaction.

`read(handle)` reads them (a node per partition, or one SQLite row); `wait_until` blocks on it for
the CLI; the API shares one watcher among its waiting requests
(`api/consistency.py`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, LiteralString, Protocol, runtime_checkable

from provgraph.events.consistency import Position
from provgraph.events.errors import ConfigError, ProvgraphError
from provgraph.graph.neo4j_cypher import PLAN_ONCE

if TYPE_CHECKING:
    from provgraph.graph.factory import StoreHandle

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT projection_progress IF NOT EXISTS FOR (n:ProjectionProgress)"
    " REQUIRE (n.topic, n.partition) IS UNIQUE",
)
ADVANCE_PART: LiteralString = (
    "UNWIND $batch.progress AS row MERGE (p:ProjectionProgress {topic: row.topic, partition: row.partition})"
    " SET p.next = CASE WHEN p.next IS NULL OR p.next < row.next THEN row.next ELSE p.next END"
)
"""The last part of a batch's statement (`neo4j_store.BATCH`); `$batch.progress` is `rows(offsets)`."""
ADVANCE: LiteralString = PLAN_ONCE + ADVANCE_PART
"""`ADVANCE_PART` alone, after a batch that had to be bisected."""
READ: LiteralString = (
    PLAN_ONCE + "MATCH (p:ProjectionProgress) RETURN p.topic AS topic, p.partition AS partition, p.next AS next"
)

FIRST_INTERVAL_S = 0.005
MAX_INTERVAL_S = 0.05
"""A waiting reader re-reads the progress after 5 ms, doubling up to 50 ms while it does not move."""

Offsets = Mapping[tuple[str, int], int]
"""(topic, partition) -> the partition's next offset to project."""
Progress = dict[tuple[str, str, int], int]
"""`Position.stream` -> how far the graph holds that stream (see `Position.reached_by`)."""


def rows(offsets: Offsets) -> list[dict[str, object]]:
    """`ADVANCE`'s `$batch.progress` rows."""
    return [{"topic": t, "partition": p, "next": n} for (t, p), n in offsets.items()]


class NotConsistent(ProvgraphError):
    """The graph did not reach a consistency token within the wait allowed."""


@runtime_checkable
class KafkaProgress(Protocol):
    """A store the Kafka projector writes its progress into (Neo4j)."""

    def advance_progress(self, offsets: Offsets) -> None: ...

    def apply_prepared(self, batch: Any, *, offsets: Offsets | None = None) -> None:
        """Write a folded batch and then advance the progress to `offsets`, in its transaction."""

    def kafka_progress(self) -> dict[tuple[str, int], int]: ...


def check(handle: StoreHandle, position: Position) -> None:
    """`ConfigError` when `position` cannot be about the log this graph projects."""
    if position.kind == "sqlite":
        projector = handle.projector
        if projector is None:
            raise ConfigError(f"consistency token {position} is for the embedded event log; this graph is fed by Kafka")
        end = projector.log.last_offset()
        if position.offset > end:
            raise ConfigError(
                f"consistency token {position} is beyond the end of the event log ({end}): it comes from another log"
            )
    elif handle.embedded or not isinstance(handle.store, KafkaProgress):
        raise ConfigError(f"consistency token {position} is for Kafka; this graph projects the embedded event log")


def read(handle: StoreHandle) -> Progress:
    """How far the graph has projected every stream it projects: one small read (embedded: after a sync)."""
    if handle.projector is not None:
        handle.sync()
        return {("sqlite", "", 0): handle.projector.store.projected_offset()}
    if isinstance(handle.store, KafkaProgress):
        return {("kafka", t, p): n for (t, p), n in handle.store.kafka_progress().items()}
    return {}


def seen(progress: Progress, position: Position) -> int:
    return progress.get(position.stream, 0)


def wait_until(handle: StoreHandle, position: Position, timeout_s: float) -> None:
    """Block until the graph holds `position` (re-reading with backoff); `NotConsistent` after `timeout_s`.

    For one caller (the CLI); the API shares one reader among its requests (`api/consistency.py`)."""
    check(handle, position)
    deadline = time.monotonic() + timeout_s
    interval = FIRST_INTERVAL_S
    while not position.reached_by(now := seen(read(handle), position)):
        left = deadline - time.monotonic()
        if left <= 0:
            raise NotConsistent(not_reached(position, now, timeout_s))
        time.sleep(min(interval, left))
        interval = min(interval * 2, MAX_INTERVAL_S)


def not_reached(position: Position, now: int, timeout_s: float) -> str:
    where = "projected up to offset" if position.kind == "sqlite" else "next offset to project"
    return f"the graph did not reach {position} within {timeout_s:g}s ({where} {now})"
