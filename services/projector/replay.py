"""Rebuild the Neo4j graph from the lineage topic, and read the dead-letter topic.

`replay_neo4j` first reads every partition of the lineage topic from its first record, with a
fresh, group-less consumer (no consumer group's offsets move), up to the end offsets seen when it
started: only when the whole log could be read does it empty the graph and read it again, projecting
batch by batch exactly as the projector does, with one batch being written while the next is
validated. This is as atomic as Neo4j allows without a second database: Kafka or Neo4j being
unreachable at the start, or a log that cannot be read to its end, leaves the graph untouched; a
failure after the wipe (Neo4j going down mid-replay) leaves a partial graph that running the replay
again completes. Records that do not validate are dead-lettered and counted in a warning at the end.
The first read does not validate: that was a fifth of the replayer's CPU (docs/BENCHMARKS.md, round
16), and whether a record validates changes nothing before the wipe (it is dead-lettered either way).
A projector running meanwhile may keep writing:
projection is idempotent and order-independent, so both converge. Records already on the
dead-letter topic are not dead-lettered again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from provgraph.events import topics
from provgraph.events.errors import TransportError
from provgraph.events.serde import few_collections
from provgraph.events.settings import require_kafka
from provgraph.graph.contract import LineageStore
from provgraph.services.projector.app import ensure_topics
from provgraph.services.projector.dead_letters import DeadLetter, read_dlq
from provgraph.services.projector.handlers import MAX_RECORDS, BatchProjector, Dead
from provgraph.services.projector.progress import publish
from provgraph.services.records import Record

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (records done, records in total) after each batch."""

ASSIGNMENT_TIMEOUT_S = 30.0


def list_dlq(settings: Settings, limit: int = 50) -> list[DeadLetter]:
    """The newest `limit` dead letters, oldest first."""
    return read_dlq(require_kafka(settings), settings.kafka_topic_prefix, limit=limit)


def replay_neo4j(
    settings: Settings,
    progress: Progress | None = None,
    *,
    store: LineageStore | None = None,
    batch: int = MAX_RECORDS,
) -> int:
    """Reset the graph and project the whole lineage topic again; returns how many records were read."""
    servers = require_kafka(settings)
    owned = store is None
    if store is None:
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        store = Neo4jLineageStore.from_settings(settings)
    try:
        ensure_topics(settings)
        known: set[tuple[str, int, int, str]] = {
            (*d.source, d.stage) for d in read_dlq(servers, settings.kafka_topic_prefix)
        }
        replay = _Replay(settings, servers, BatchProjector.for_settings(store, settings), known, progress, batch)
        with few_collections():  # in the caller's process (`provgraph replay`), as the embedded replay
            return asyncio.run(replay.run())
    finally:
        if owned:
            store.close()


class _Replay:
    def __init__(
        self,
        settings: Settings,
        servers: str,
        projector: BatchProjector,
        known: set[tuple[str, int, int, str]],
        progress: Progress | None,
        batch: int,
    ) -> None:
        self.servers = servers
        self.projector = projector
        self.known = known
        self.progress = progress
        self.batch = batch
        self.topic = topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
        self.dlq = topics.topic(topics.DLQ, settings.kafka_topic_prefix)
        self._producer: AIOKafkaProducer | None = None
        self.invalid = 0
        """Records that did not validate, found by the projecting pass."""

    async def run(self) -> int:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.errors import KafkaError

        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.servers,
            client_id="provgraph-replay",
            group_id=None,  # group-less: every partition, no committed offsets touched
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        try:
            await consumer.start()
            return await self._consume(consumer)
        except KafkaError as exc:
            raise TransportError(f"replay of {self.topic} via Kafka at {self.servers} failed: {exc}") from exc
        finally:
            await consumer.stop()
            if self._producer is not None:
                await self._producer.stop()

    async def _consume(self, consumer: Any) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ASSIGNMENT_TIMEOUT_S
        while not consumer.assignment():
            if loop.time() > deadline:
                raise TransportError(f"replay: no partitions of {self.topic} found within {ASSIGNMENT_TIMEOUT_S}s")
            await asyncio.sleep(0.05)
        tps = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        total = sum(ends[tp] - starts[tp] for tp in tps)
        await self._read_through(consumer, tps, ends)
        await consumer.seek_to_beginning(*tps)
        await anyio.to_thread.run_sync(self.projector.store.reset)
        self._report(0, total)
        done = 0
        writing: asyncio.Task[Dead] | None = None
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            polled = await consumer.getmany(timeout_ms=1000, max_records=self.batch)
            records = [Record.of(r) for tp, rs in polled.items() for r in rs if r.offset < ends[tp]]
            if not records:
                continue
            prepared = await anyio.to_thread.run_sync(self.projector.prepare, records)
            if writing is not None:
                await self._dead_letter(await writing)
            writing = asyncio.create_task(anyio.to_thread.run_sync(self.projector.write, prepared))
            done += len(records)
            self._report(done, total)
        if writing is not None:
            await self._dead_letter(await writing)
        if self.invalid:
            log.warning(
                "replay: records of %s that do not validate: %d, on the dead-letter topic", self.topic, self.invalid
            )
        # The graph holds the log up to `ends` again: reads waiting for a position before it may proceed.
        ends_by_partition = {(tp.topic, tp.partition): ends[tp] for tp in tps}
        await anyio.to_thread.run_sync(publish, self.projector.store, ends_by_partition)
        return done

    async def _read_through(self, consumer: Any, tps: list[Any], ends: dict[Any, int]) -> None:
        """Read the whole log once before anything is wiped: a read failure raises here."""
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            await consumer.getmany(timeout_ms=1000, max_records=self.batch)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    async def _dead_letter(self, dead: Dead) -> None:
        """Count the records that did not validate; send the dead letters that are not on the DLQ yet."""
        self.invalid += sum(d.stage == "validate" for _, d in dead)
        fresh = [(r, d) for r, d in dead if (*d.source, d.stage) not in self.known]
        if not fresh:
            return
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            self._producer = AIOKafkaProducer(bootstrap_servers=self.servers, acks="all", client_id="provgraph-replay")
            await self._producer.start()
        producer = self._producer
        await asyncio.gather(*(producer.send_and_wait(self.dlq, d.to_bytes(), key=r.key) for r, d in fresh))
        self.known.update((*d.source, d.stage) for _, d in fresh)
