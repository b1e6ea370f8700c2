"""The projector's handler: a batch of lineage records in, one graph write out, refusals to the DLQ.

`BatchProjector` is the synchronous core, shared by the Kafka consumer and by `replay_neo4j`:

1. `prepare`: every record is validated with `events.serde.loads` (a refusal becomes a dead letter
   with stage `validate`), then checked against the write rules of `events/admission.py` that need
   no graph: `store://` versions are content hashes, outputs are in the run's own project and their
   objects exist in the artifact store (stage `admit`); the admitted events are folded into rows
   (`neo4j_rows.rows_for`). The topic is trusted like a token for every project, but not to break
   these rules;
2. `write`: the rows go to the store in ONE transaction;
3. if the store refuses the batch for a reason that retrying cannot fix (`ProjectionError`, e.g. a
   value too large to index, or `Inadmissible`: an event for a run another project owns), the batch
   is bisected until the refused events are isolated; each becomes a dead letter with stage
   `project`, the rest is written (in order, so a run's first event keeps it);
4. if the store is unavailable (`StoreUnavailable`), nothing is dead-lettered: the error propagates
   and the same records are consumed again after a pause.

`Pipeline` runs it for the Kafka subscriber, one batch in the store at a time. Records arriving while
a batch is written join the next one, sealed when that write ends; with a full batch already waiting
(a backlog) the next is prepared during the write instead (the client's CPU work overlaps Neo4j's).
Offsets are committed by hand (`AckPolicy.MANUAL`), explicitly per partition, in order, only after
the batch is in the graph and its dead letters are acknowledged by Kafka; a failed batch is prepared
and written again in place, the later records waiting behind it. A crash anywhere replays
uncommitted batches: harmless, since writes are idempotent (a dead letter may repeat).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from aiokafka import TopicPartition
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import Consumer
from faststream.middlewares import AckPolicy
from faststream.params import NoCast

from provgraph.events import topics
from provgraph.events.admission import KnownObjects, check_datasets
from provgraph.events.errors import ContractError, Forbidden, Inadmissible, ProjectionError, StoreUnavailable
from provgraph.events.model import RunEvent
from provgraph.events.serde import loads
from provgraph.graph.contract import LineageStore
from provgraph.services.projector import progress
from provgraph.services.projector.dead_letters import DeadLetter, Stage
from provgraph.services.records import Record, batch_subscriber, dead_letter_publisher, service_group

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "projector"
MAX_RECORDS = 5000
"""Records per batch (one transaction)."""
RETRY_PAUSE_S = 2.0
"""Pause before records the store could not take are consumed again."""
IDLE_WAIT_MS = 20
"""How long a fetch waits for records when none are buffered. A fetch returns whatever records have
arrived without waiting to fill a batch, but after an empty one faststream sleeps this long again,
so a record reaching an idle projector waited up to twice this (was 2 x 200 ms) before projection."""
FETCH_GAP_S = 0.01
"""Between two fetches while a batch is written: what arrives meanwhile is queued for the next batch
within this, and a trickle of records makes at most 1 / FETCH_GAP_S handler calls a second."""


Dead = list[tuple[Record, DeadLetter]]


@dataclass
class Prepared:
    """A validated batch: its events, what the store folded them into, and the records refused so far."""

    records: Sequence[Record]
    valid: list[tuple[Record, RunEvent]] = field(default_factory=list)
    folded: Any = None
    """What `store.prepare` made of the valid events; None when it refused them (then bisected)."""
    dead: Dead = field(default_factory=list)

    def first_offsets(self) -> dict[tuple[str, int], int]:
        first: dict[tuple[str, int], int] = {}
        for r in self.records:
            tp = (r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        return first

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """What to commit once the batch is in: per partition, one past its last record."""
        last: dict[tuple[str, int], int] = {}
        for r in self.records:
            tp = (r.topic, r.partition)
            last[tp] = max(last.get(tp, r.offset), r.offset + 1)
        return last


class BatchProjector:
    """Validate and project batches of records. Synchronous; safe to prepare one batch while writing another."""

    def __init__(self, store: LineageStore, objects: KnownObjects) -> None:
        self.store = store
        self.objects = objects

    @classmethod
    def for_settings(cls, store: LineageStore, settings: Settings) -> BatchProjector:
        """Output objects are looked up in `settings.artifact_url`: the store producers write to."""
        from provgraph.events.artifacts import ArtifactStore

        return cls(store, KnownObjects(ArtifactStore(settings.artifact_url, settings.s3_endpoint_url)))

    def project(self, records: Sequence[Record]) -> Dead:
        """Prepare and write one batch; returns its dead letters."""
        return self.write(self.prepare(records))

    def prepare(self, records: Sequence[Record]) -> Prepared:
        batch = Prepared(records)
        for r in records:
            try:
                event = loads(r.value)
            except ContractError as exc:
                batch.dead.append((r, _letter(r, "validate", str(exc))))
                continue
            try:
                check_datasets(event)
                self.objects.check_outputs(event)
            except (ContractError, Forbidden) as exc:
                log.warning("record %s/%d@%d refused: %s", r.topic, r.partition, r.offset, exc)
                batch.dead.append((r, _letter(r, "admit", str(exc))))
                continue
            batch.valid.append((r, event))
        # One run claimed by two projects in this batch: nothing folded, so `write` bisects it apart.
        with contextlib.suppress(Inadmissible):
            batch.folded = self.store.prepare([e for _, e in batch.valid], known_at=_known_at(batch.valid))
        return batch

    def write(self, batch: Prepared, *, publish: bool = False) -> Dead:
        """Write a prepared batch; returns its dead letters. With `publish`, the progress past it
        too (`progress.py`: in the batch's transaction unless it had to be bisected)."""
        offsets = batch.next_offsets() if publish else {}
        if batch.folded is not None:
            try:
                progress.apply(self.store, batch.folded, offsets)
                return batch.dead
            except StoreUnavailable:
                raise
            except ProjectionError:
                pass
        dead = batch.dead + self._bisect(batch.valid)
        progress.publish(self.store, offsets)
        return dead

    def _bisect(self, items: list[tuple[Record, RunEvent]]) -> Dead:
        if not items:
            return []
        try:
            self.store.apply([e for _, e in items], known_at=_known_at(items))
            return []
        except StoreUnavailable:
            raise
        except ProjectionError as exc:
            if len(items) == 1:
                r = items[0][0]
                log.warning("record %s/%d@%d refused by the graph store: %s", r.topic, r.partition, r.offset, exc)
                return [(r, _letter(r, "project", str(exc)))]
            mid = len(items) // 2
            return self._bisect(items[:mid]) + self._bisect(items[mid:])


def _known_at(items: Sequence[tuple[Record, RunEvent]]) -> list[datetime]:
    """Each event's ingestion time: its record's timestamp (its event time if the record has none)."""
    return [r.ingested_at() or e.event_time for r, e in items]


def _letter(r: Record, stage: Stage, error: str) -> DeadLetter:
    return DeadLetter.of(error, stage, r.topic, r.partition, r.offset, r.value)


class Pipeline:
    """One batch in the store at a time; commits each batch once it is in the graph.

    `handle` (the subscriber's, called for each fetch, in order) queues the records for a worker task
    and returns after `FETCH_GAP_S`, or once the worker has room again when a full batch is queued
    (backpressure). The worker seals a batch of what is queued when the write before it has ended, so
    records arriving during a write are in the next one (a batch sealed as that write began, as
    before, left them for the one after: a write cycle more of latency); once a full batch is queued
    during a write (a backlog), it prepares that one during the write. Batches are written, published
    and committed in order, one at a time, so the progress never passes data that is not in. A batch
    that cannot be prepared or written is tried again in place after a pause, with nothing committed
    past it and no seek (the earlier rewind to its first offsets lost it when it was fetched again
    while the projector was idle: dropped as "consumed after the failed batch", never re-sought).
    """

    def __init__(
        self,
        projector: BatchProjector,
        publish_dead: Callable[[Dead], Awaitable[None]],
        *,
        max_records: int,
        notify: Callable[[bytes], Awaitable[object]] | None = None,
    ) -> None:
        self.projector = projector
        self.publish_dead = publish_dead
        self.notify = notify
        """Sends a progress notice (`topics.PROGRESS`) without waiting for Kafka's ack."""
        self.max_records = max_records
        self.closing = False
        self._queue: collections.deque[Record] = collections.deque()
        self._arrived = asyncio.Event()
        self._taken = asyncio.Event()
        """Set when the worker takes records from the queue."""
        self._consumer: AIOKafkaConsumer | None = None
        self._worker: asyncio.Task[None] | None = None

    async def handle(self, records: list[Record], consumer: AIOKafkaConsumer) -> None:
        if self.closing:  # not committed: the next consumer of these partitions projects them
            return
        self._consumer = consumer
        if self._worker is None:
            self._worker = asyncio.create_task(self._work())
        elif self._worker.done():
            # Never reached (the worker retries every failure); queuing behind a dead worker would
            # hold records nobody writes while nothing is committed past them.
            raise RuntimeError("the projector's batch worker stopped") from self._worker.exception()
        self._queue.extend(records)
        self._arrived.set()
        await asyncio.sleep(FETCH_GAP_S)
        while len(self._queue) >= self.max_records and not self._worker.done():
            self._taken.clear()
            taken = asyncio.ensure_future(self._taken.wait())
            await asyncio.wait([taken, self._worker], return_when=asyncio.FIRST_COMPLETED)
            taken.cancel()

    async def close(self) -> None:
        """Write and commit what is queued, then stop taking records (later ones are left uncommitted)."""
        self.closing = True
        self._arrived.set()
        if self._worker is not None:
            with contextlib.suppress(_Closing):
                await self._worker

    async def _take(self) -> list[Record] | None:
        """The next batch: what is queued, up to `max_records` (waits for records); None once closing."""
        while not self._queue:
            if self.closing:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        n = min(len(self._queue), self.max_records)
        self._taken.set()
        return [self._queue.popleft() for _ in range(n)]

    async def _work(self) -> None:
        writing: asyncio.Task[None] | None = None
        while True:
            # Seal the next batch when this write ends, or as soon as a full one is queued (see the class).
            while writing is not None and not writing.done() and len(self._queue) < self.max_records:
                self._arrived.clear()
                arrived = asyncio.ensure_future(self._arrived.wait())
                await asyncio.wait([arrived, writing], return_when=asyncio.FIRST_COMPLETED)
                arrived.cancel()
            if (records := await self._take()) is None:
                break
            received = time.time()
            batch = await self._prepare(records)
            prepared = time.time()
            if writing is not None:
                await writing
            writing = asyncio.create_task(self._finish(batch, (received, prepared, time.time())))
        if writing is not None:
            await writing

    async def _prepare(self, records: list[Record]) -> Prepared:
        while True:
            try:
                return await anyio.to_thread.run_sync(self.projector.prepare, records)
            except Exception:  # service loop: log, pause, prepare the same records again
                log.exception("could not prepare a batch of %d records; trying again", len(records))
            await self._pause()

    async def _finish(self, batch: Prepared, stamps: tuple[float, float, float]) -> None:
        while True:
            try:
                dead = await anyio.to_thread.run_sync(functools.partial(self.projector.write, batch, publish=True))
                if self.notify is not None:
                    await self._notice(batch)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s", _timeline(batch, (*stamps, time.time())))
                if dead:
                    await self.publish_dead(dead)
                    log.warning("%d of %d records dead-lettered", len(dead), len(batch.records))
                break
            except Exception as exc:  # noqa: BLE001 - service loop: log, pause, write the same records again
                log.warning("batch of %d records not projected, writing it again: %s", len(batch.records), exc)
            await self._pause()
            batch = await self._prepare(list(batch.records))
        assert self._consumer is not None
        offsets = {TopicPartition(t, p): o for (t, p), o in batch.next_offsets().items()}
        try:
            await self._consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - e.g. the partitions moved to another member: it re-projects them
            log.warning("could not commit offsets %s: %s", offsets, exc)

    async def _notice(self, batch: Prepared) -> None:
        """Tell the API's watchers the batch is in (its transaction committed): a hint to re-read the
        progress, not waited for; a lost notice only delays a waiter to its safety read."""
        assert self.notify is not None
        body = json.dumps([[t, p, n] for (t, p), n in batch.next_offsets().items()]).encode()
        try:
            sent = await self.notify(body)
        except Exception as exc:  # noqa: BLE001 - a hint: never holds the batch or its commit
            log.warning("progress notice not sent: %s", exc)
            return
        if isinstance(sent, asyncio.Future):
            sent.add_done_callback(_unsent)

    async def _pause(self) -> None:
        """Before trying a batch again; when closing, give up (its records stay uncommitted)."""
        if self.closing:
            raise _Closing
        await asyncio.sleep(RETRY_PAUSE_S)
        if self.closing:
            raise _Closing


def _unsent(sent: asyncio.Future[Any]) -> None:
    if not sent.cancelled() and (exc := sent.exception()) is not None:
        log.warning("progress notice not sent: %s", exc)


class _Closing(Exception):
    """A batch still failing while the projector stops: left uncommitted for the next consumer."""


def _timeline(batch: Prepared, stamps: tuple[float, ...]) -> str:
    """One batch's way through the pipeline (bench_latency splits emit -> visible with it): its records
    per partition, the wall time the pipeline took it over to prepare it, then ms until it
    was prepared, its write started (after the previous batch's), and it was in the graph with its
    progress published."""
    first, after = batch.first_offsets(), batch.next_offsets()
    spans = " ".join(f"{t}:{p}@{o}-{after[t, p] - 1}" for (t, p), o in sorted(first.items()))
    received, *later = stamps
    steps = ", ".join(f"{name} +{(at - received) * 1e3:.1f}" for name, at in zip(STAGES, later, strict=True))
    return f"batch of {len(batch.records)} records [{spans}] at {received:.6f}: {steps} ms"


STAGES = ("prepared", "writing", "published")
"""The stages `_timeline` names after a batch's arrival, in order."""


def group_id(settings: Settings) -> str:
    return service_group(settings, SERVICE)


def projector_router(
    settings: Settings, projector: BatchProjector, *, max_records: int = MAX_RECORDS, notify: bool = True
) -> tuple[KafkaRouter, Pipeline]:
    """The lineage-topic subscriber (a consumer group reading in batches), the DLQ publisher and
    (with `notify`) the progress-notice publisher."""
    router = KafkaRouter()
    dlq = dead_letter_publisher(router, settings, SERVICE)
    notices = router.publisher(
        topics.topic(topics.PROGRESS, settings.kafka_topic_prefix),
        title="progress notices",
        description="the offsets of each batch the projector put in the graph",
    )

    async def publish_dead(dead: Dead) -> None:
        await asyncio.gather(*(dlq.publish(d.to_bytes(), key=r.key) for r, d in dead))

    async def notify_api(body: bytes) -> object:
        return await notices.publish(body, no_confirm=True)

    pipeline = Pipeline(projector, publish_dead, max_records=max_records, notify=notify_api if notify else None)

    @batch_subscriber(
        router,
        settings,
        SERVICE,
        topics.LINEAGE,
        max_records=max_records,
        batch_timeout_ms=IDLE_WAIT_MS,
        ack_policy=AckPolicy.MANUAL,
    )
    async def project(records: NoCast[list[Record]], consumer: Consumer) -> None:
        """Project a batch into the graph; its offsets are committed once it is there."""
        await pipeline.handle(records, consumer)

    return router, pipeline
