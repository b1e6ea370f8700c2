"""The pipeline controller's loop: the lineage topic in, run requests out, no state of its own.

On start the controller reads the lineage topic from its beginning into a private SQLite graph (a
projection it rebuilds on every start, in a temporary directory), up to the end offsets it found
when it started. Only then, caught up, does it decide: for every pipeline run not yet ended it
calls `advance`, which requests the steps that are ready and have no run yet. From then on each
batch of events is projected first and the pipeline runs it touches are advanced.

Why a replay rather than a consumer group: a decision needs the pipeline's whole history (which
steps were requested, completed, failed) and the cache needs earlier runs; a committed offset
without that history would lose it on restart. Replaying the topic is the event log's own answer.

Exactly once per step: a step's run id is derived from the pipeline run id, the step and the
attempt, and the controller requests it only when the graph holds no run of it. A controller
killed between publishing a request and its REQUESTED event reaching the topic requests it again
on restart: the same run id, so the launcher finds the Job (409) and creates no second one. While
a request's REQUESTED event is on its way back, `acted` keeps this process from requesting it twice.

One controller per deployment (topic prefix): two would both act, harmlessly for Jobs (same ids)
but doubling cached steps' events.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgraph._backend import Backend
from provgraph.events import topics
from provgraph.events.errors import ProvgraphError
from provgraph.events.model import RunEvent
from provgraph.events.serde import loads
from provgraph.events.transport.base import Transport
from provgraph.events.transport.factory import create_transport, kafka_config
from provgraph.events.transport.kafka import ensure_topics
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.pipelines.remote import ENGINE, PipelineDocument, advance, load_document, submitter

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

POLL_MS = 100
RETRY_S = 5.0
"""A pipeline whose decision failed (Kafka or the artifact store unavailable) is decided again after this."""
MAX_RECORDS = 500


class Controller:
    """The controller's state in memory, all of it derived from the topic (see the module doc)."""

    def __init__(self, settings: Settings, *, transport: Transport | None = None) -> None:
        self.settings = settings
        self.config = kafka_config(settings)
        self._dir = tempfile.TemporaryDirectory(prefix="provgraph-pipeline-controller-")
        self.store = SqliteLineageStore(Path(self._dir.name) / "graph.db")
        self.backend = Backend(settings, transport=transport or create_transport(settings), graph=self.store)
        self.documents: dict[str, str] = {}
        """Pipeline run id -> its document's hash, from the pipeline runs' REQUESTED events."""
        self._loaded: dict[str, PipelineDocument | None] = {}
        self.acted: set[str] = set()
        self._stopping = threading.Event()
        self._producer: Any = None
        self.caught_up = threading.Event()
        self._retry: set[str] = set()
        self._retry_at = 0.0

    # -- Kafka ------------------------------------------------------------------------------------

    def _publish(self, run_id: str, body: bytes) -> None:
        from kafka import KafkaProducer

        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.config.bootstrap_servers, acks="all", client_id="provgraph-pipeline-controller"
            )
        name = topics.topic(topics.REQUESTS, self.config.topic_prefix)
        self._producer.send(name, key=run_id.encode(), value=body).get(timeout=self.config.delivery_timeout_s)
        self.acted.add(run_id)

    def run(self) -> None:
        """Replay, then follow the lineage topic until `stop()`."""
        from kafka import KafkaConsumer, TopicPartition

        ensure_topics(self.config, [topics.LINEAGE, topics.REQUESTS])
        name = topics.topic(topics.LINEAGE, self.config.topic_prefix)
        consumer = KafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            client_id="provgraph-pipeline-controller",
            max_poll_records=MAX_RECORDS,
        )
        try:
            known = consumer.partitions_for_topic(name)
            while not known and not self._stopping.wait(0.2):  # metadata of a topic just created comes late
                known = consumer.partitions_for_topic(name)
            parts = [TopicPartition(name, p) for p in sorted(known or ())]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            end: dict[Any, int] = consumer.end_offsets(parts)
            log.info("replaying %s (%d events) before deciding", name, sum(end.values()))
            while not self._stopping.is_set():
                polled = consumer.poll(timeout_ms=POLL_MS)
                records = sorted((r for batch in polled.values() for r in batch), key=lambda r: (r.partition, r.offset))
                touched = self.apply(records)
                if not self.caught_up.is_set():
                    if any(consumer.position(tp) < end[tp] for tp in parts):
                        continue
                    touched = set(self.documents)
                    self.caught_up.set()
                    log.info("caught up; following %s", name)
                if time.monotonic() >= self._retry_at:  # pipelines whose last decision failed (Kafka, the store)
                    touched |= self._retry
                    self._retry.clear()
                    self._retry_at = time.monotonic() + RETRY_S
                for run_id in sorted(touched):
                    self.advance(run_id)
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
        self.backend.close()
        self.store.close()
        self._dir.cleanup()

    # -- events and decisions ---------------------------------------------------------------------

    def apply(self, records: list[Any]) -> set[str]:
        """Project `records` into the private graph; the pipeline runs they concern."""
        events: list[RunEvent] = []
        for r in records:
            try:
                events.append(loads(r.value))
            except ProvgraphError:
                continue  # the projector dead-letters it; nothing of a pipeline can be in it
        if not events:
            return set()
        try:
            self.store.apply(events)
        except Exception:  # noqa: BLE001 - one event the projection refuses spoils no other (idempotent re-apply)
            for e in events:
                try:
                    self.store.apply([e])
                except Exception as exc:  # noqa: BLE001 - logged and skipped, as the projector does
                    log.warning("event %s of run %s not projected: %s", e.event_type, e.run.run_id, exc)
        touched: set[str] = set()
        for e in events:
            requested = e.run.facets.requested
            if requested is not None and requested.runtime == ENGINE and e.run.run_id not in self.documents:
                self.documents[e.run.run_id] = requested.request_hash
            parent = e.run.facets.parent
            if e.run.run_id in self.documents:
                touched.add(e.run.run_id)
            elif parent is not None and parent.run.run_id in self.documents and e.event_type.is_terminal:
                touched.add(parent.run.run_id)  # a step's REQUESTED, START and RUNNING decide nothing: its end does
        return touched

    def document(self, run_id: str) -> PipelineDocument | None:
        if run_id not in self._loaded:
            try:
                doc: PipelineDocument | None = load_document(self.documents[run_id], self.backend)
            except ProvgraphError as exc:
                log.warning("pipeline run %s cannot be advanced: %s", run_id, exc)
                doc = None
            if doc is not None and doc.run_id != run_id:
                log.warning("pipeline run %s names the document of run %s; ignored", run_id, doc.run_id)
                doc = None
            self._loaded[run_id] = doc
        return self._loaded[run_id]

    def advance(self, run_id: str) -> None:
        run = self.store.run(run_id)
        if run is None or run.state.is_terminal or run_id in self.acted:
            return
        doc = self.document(run_id)
        if doc is None:
            return
        if (doc.project, doc.name) != (run.namespace, run.job_name):
            log.warning(
                "pipeline run %s is %s/%s; its document says %s/%s: ignored",
                run_id,
                run.namespace,
                run.job_name,
                doc.project,
                doc.name,
            )
            return
        try:
            decision = advance(
                doc, self.store.children(run_id), self.backend, submitter(self.backend, self._publish), self._acted
            )
        except Exception:  # one pipeline's problem must not stop the others; retried in RETRY_S
            log.exception("advancing pipeline run %s failed; retrying in %.0f s", run_id, RETRY_S)
            self._retry.add(run_id)
            return
        for step in decision.requested:
            log.info("pipeline run %s: requested step %s", run_id, step)
        for step, step_run in decision.cached.items():
            self.acted.add(step_run)  # its events are on their way back: not again meanwhile
            log.info("pipeline run %s: step %s reused (cached)", run_id, step)
        if decision.finished is not None:
            self.acted.add(run_id)
            log.info("pipeline run %s ended %s", run_id, decision.finished)

    @property
    def retrying(self) -> set[str]:
        """Pipeline runs whose last decision failed, to be decided again."""
        return set(self._retry)

    def _acted(self, run_id: str) -> bool:
        return run_id in self.acted


def run_controller(settings: Settings) -> None:
    """Run the controller in the foreground until SIGINT/SIGTERM."""
    controller = Controller(settings)

    def stop(*_: object) -> None:
        controller.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        controller.run()
    finally:
        controller.close()
