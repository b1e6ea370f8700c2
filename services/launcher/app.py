"""Assembles the launcher: a FastStream app with one Kafka broker, the launcher router, the Job watchers.

    app = create_app(settings)          # Kubernetes client configured, nothing consumed yet
    asyncio.run(app.run())              # launches until SIGINT/SIGTERM, then stops gracefully

`run_launcher(settings)` is what `provgraph launcher` calls. Start-up ensures the requests, lineage
and dead-letter topics, then starts one Job watcher per watched namespace, then the consumer. On
SIGTERM the watchers stop first (their blocked reads are cut at once), then the subscriber, waiting
up to `GRACEFUL_TIMEOUT_S` for the batch in hand (a batch cut short is not committed: the next
launcher creates its Jobs, meeting 409 for those that exist), then the event transport is flushed.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from faststream import FastStream
from faststream.kafka import KafkaBroker

from provgraph.events import topics
from provgraph.events.settings import require_kafka
from provgraph.events.transport.base import Transport
from provgraph.events.transport.factory import create_transport, kafka_config
from provgraph.services.launcher.handlers import MAX_RECORDS, Launcher, group_id, launcher_router
from provgraph.services.launcher.jobs import selector, watched_namespaces
from provgraph.services.launcher.kube import Kube
from provgraph.services.launcher.watcher import JobReconciler, JobWatcher

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

GRACEFUL_TIMEOUT_S = 60.0


def ensure_topics(settings: Settings) -> None:
    """The requests, lineage and dead-letter topics, created with `settings.kafka_partitions` when missing."""
    from provgraph.events.transport.kafka import ensure_topics as ensure

    ensure(kafka_config(settings), [topics.REQUESTS, topics.LINEAGE, topics.DLQ])


def create_app(
    settings: Settings,
    *,
    kube: Kube | None = None,
    transport: Transport | None = None,
    max_records: int = MAX_RECORDS,
) -> FastStream:
    """The launcher app. `kube` and `transport` default to the ones `settings` describe; the app
    closes them when it stops."""
    servers = require_kafka(settings)
    kube = kube or Kube.from_settings(settings)
    transport = transport or create_transport(settings)
    pool = ThreadPoolExecutor(settings.launcher_concurrency, thread_name_prefix="provgraph-launcher")
    launcher = Launcher(settings, kube, transport)
    broker = KafkaBroker(
        servers,
        client_id="provgraph-launcher",
        graceful_timeout=GRACEFUL_TIMEOUT_S,
        log_level=logging.DEBUG,  # one line per batch is noise at INFO
    )
    broker.include_router(launcher_router(settings, launcher, pool, max_records=max_records))
    reconciler = JobReconciler(kube, transport)
    watchers = [JobWatcher(kube, reconciler, ns, selector(settings)) for ns in watched_namespaces(settings)]

    async def start() -> None:
        await asyncio.to_thread(ensure_topics, settings)
        for w in watchers:
            w.start()
        log.info(
            "launching %s as Jobs in %s (group %s)",
            topics.topic(topics.REQUESTS, settings.kafka_topic_prefix),
            ", ".join(w.where for w in watchers),
            group_id(settings),
        )

    async def stop_watchers() -> None:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in watchers))

    def close() -> None:
        pool.shutdown(wait=True)
        transport.close()
        kube.close()

    return FastStream(broker, on_startup=[start], on_shutdown=[stop_watchers], after_shutdown=[close])


def run_launcher(settings: Settings) -> None:
    """Run the launcher in the foreground until SIGINT/SIGTERM."""
    app = create_app(settings)
    asyncio.run(app.run())
