"""Assembles the graph projector: a FastStream app with one Kafka broker, the projector router and Neo4j.

    app = create_app(settings)          # connects to Neo4j (schema ensured), nothing consumed yet
    asyncio.run(app.run())              # consumes until SIGINT/SIGTERM, then stops gracefully

`run_projector(settings)` is what `provgraph projector` calls. On SIGTERM FastStream stops the
subscriber, waiting up to `GRACEFUL_TIMEOUT_S` for the batch in hand; a batch cut short is not
committed and is projected again by the next consumer (idempotently).

The projector looks up logged-artifact outputs in `settings.artifact_url` (with
`s3_endpoint_url`): it must be the artifact store the producers write to, or every output is
dead-lettered (see docs/SECURITY.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import TYPE_CHECKING

from faststream import FastStream
from faststream.kafka import KafkaBroker

from provgraph.events import topics
from provgraph.events.serde import BATCH_GC_THRESHOLDS
from provgraph.events.settings import require_kafka
from provgraph.events.transport.factory import kafka_config
from provgraph.graph.contract import LineageStore
from provgraph.services.projector.handlers import MAX_RECORDS, BatchProjector, group_id, projector_router

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

GRACEFUL_TIMEOUT_S = 60.0


def ensure_topics(settings: Settings) -> None:
    """The lineage, dead-letter and progress-notice topics, created with `settings.kafka_partitions` when missing."""
    from provgraph.events.transport.kafka import ensure_topics as ensure

    ensure(kafka_config(settings), [topics.LINEAGE, topics.DLQ, topics.PROGRESS])


def create_app(
    settings: Settings, *, store: LineageStore | None = None, max_records: int = MAX_RECORDS, notify: bool = True
) -> FastStream:
    """The projector app. `store` (default: Neo4j from settings) is closed when the app stops.
    `notify=False`: no progress notices (the API's watcher then finds batches by its safety reads)."""
    servers = require_kafka(settings)
    if store is None:
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        store = Neo4jLineageStore.from_settings(settings)
    broker = KafkaBroker(
        servers,
        client_id="provgraph-projector",
        graceful_timeout=GRACEFUL_TIMEOUT_S,
        log_level=logging.DEBUG,  # one line per batch is noise at INFO
    )
    router, pipeline = projector_router(
        settings, BatchProjector.for_settings(store, settings), max_records=max_records, notify=notify
    )
    broker.include_router(router)

    async def start() -> None:
        await asyncio.to_thread(ensure_topics, settings)
        log.info(
            "projecting %s into the graph (group %s)",
            topics.topic(topics.LINEAGE, settings.kafka_topic_prefix),
            group_id(settings),
        )
        await asyncio.to_thread(warm_writes, store)

    # on_shutdown runs before the broker stops: the write in flight is committed while we still can.
    return FastStream(broker, on_startup=[start], on_shutdown=[pipeline.close], after_shutdown=[store.close])


def warm_writes(store: LineageStore) -> None:
    """Plan a Neo4j store's batch statement before anything is consumed; best effort: a failure
    (Neo4j not up yet) leaves the plan to the first batch, which retries as it always does."""
    from provgraph.graph.neo4j_store import Neo4jLineageStore

    if not isinstance(store, Neo4jLineageStore):
        return
    started = time.perf_counter()
    try:
        store.warm_writes()
    except Exception as exc:  # noqa: BLE001 - best effort, see above
        log.warning("planning the batch statement before the first batch failed: %s", exc)
        return
    log.info("planned the batch statement in %.1f s", time.perf_counter() - started)


def tune_gc() -> None:
    """`serde.BATCH_GC_THRESHOLDS` for the whole process (it only projects), what it holds now frozen
    out of the collector's scans. A batch keeps ~2.5*10^5 objects alive (validated events): see
    `events/serde.py`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*BATCH_GC_THRESHOLDS)


def run_projector(settings: Settings) -> None:
    """Run the projector in the foreground until SIGINT/SIGTERM."""
    tune_gc()
    app = create_app(settings)
    asyncio.run(app.run())
