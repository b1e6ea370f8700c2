"""The launcher's handler: a batch of run requests in, one Job per run out, refusals reported.

`Launcher.launch` is the synchronous core for one record; `launcher_router` runs it for every
record of a batch in a thread pool (`settings.launcher_concurrency` at a time), so the event loop
keeps heart-beating while the API server answers. For each record:

1. `RunRequest` validation; bytes that are not a run request go to the dead-letter topic (stage
   `validate`, the projector's record shape) and the launcher carries on;
2. `jobs.check_request` (image, namespace served, quantities parse), then the image pull secret is
   looked up; a problem becomes a FAIL event for the run (`<runId>:launcher:rejected`) whose
   errorMessage names it: the request is done, never retried;
3. the Job is created. `409 AlreadyExists` is success: a redelivered request finds its Job. A
   refusal by the API (404 namespace not found, 403 forbidden or over quota, 422 invalid) is
   reported like (2).

Offsets: the subscriber uses `AckPolicy.NACK_ON_ERROR`; the batch is committed only after every
record's Job exists or its rejection was sent (acknowledged by Kafka, or kept in the transport's
spool). If the API server is unavailable (`KubeUnavailable`) the handler pauses and raises, the
partitions rewind, and the same requests come back: the ones already created meet 409.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from faststream.kafka import KafkaRouter
from faststream.middlewares import AckPolicy
from faststream.params import NoCast

from provgraph.events import topics
from provgraph.events.errors import ContractError
from provgraph.events.model import EventType
from provgraph.events.request import RunRequest, loads_request, request_hash
from provgraph.events.transport.base import Transport
from provgraph.services.launcher.jobs import RunIdentity, build_job, check_request, namespace_of
from provgraph.services.launcher.kube import JobRefused, Kube, KubeUnavailable
from provgraph.services.launcher.reports import launcher_event
from provgraph.services.projector.dead_letters import DeadLetter
from provgraph.services.records import Record, batch_subscriber, dead_letter_publisher, service_group

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "launcher"
MAX_RECORDS = 200
"""Requests per batch (one commit)."""
RETRY_PAUSE_S = 2.0
"""Pause before a batch the API server could not take is handed back for redelivery."""


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["created", "exists", "rejected", "dead"]
    run_id: str | None = None
    job: str | None = None
    """`<namespace>/<name>` of the Job (created or found)."""
    error: str | None = None
    letter: DeadLetter | None = None


class Launcher:
    """Turns one run request into a Job, or into a FAIL event saying why not. Thread-safe."""

    def __init__(self, settings: Settings, kube: Kube, transport: Transport) -> None:
        self.settings = settings
        self.kube = kube
        self.transport = transport

    def launch(self, record: Record) -> Outcome:
        """Handle one record; raises only `KubeUnavailable` (retry later)."""
        try:
            request = loads_request(record.value)
        except ContractError as exc:
            error = str(exc)
            letter = DeadLetter.of(error, "validate", record.topic, record.partition, record.offset, record.value)
            log.warning("request at %s/%d@%d dead-lettered: %s", record.topic, record.partition, record.offset, error)
            return Outcome("dead", error=error, letter=letter)
        try:
            return self._launch(request, request_hash(record.value))
        except KubeUnavailable:
            raise
        except Exception as exc:  # a bug or an input nobody foresaw: fail this run, never block the partition
            log.exception("launching run %s failed", request.run_id)
            return self._reject(request, f"the launcher could not create a Job: {type(exc).__name__}: {exc}")

    def _launch(self, request: RunRequest, digest: str) -> Outcome:
        problem = check_request(request, self.settings)
        if problem is not None:
            return self._reject(request, problem)
        namespace = namespace_of(request, self.settings)
        secret = request.image_pull_secret
        try:
            if secret is not None and not self.kube.secret_exists(namespace, secret):
                return self._reject(request, f"image pull secret {secret!r} not found in namespace {namespace!r}")
            for name in request.secrets:  # else the pod would wait forever in CreateContainerConfigError
                if not self.kube.secret_exists(namespace, name):
                    return self._reject(request, f"secret {name!r} not found in namespace {namespace!r}")
            body = build_job(request, digest, self.settings)
            created = self.kube.create_job(namespace, body)
        except JobRefused as exc:
            return self._reject(request, f"Kubernetes refused the Job: {exc}")
        where = f"{namespace}/{body['metadata']['name']}"
        if created:
            log.info("run %s: created Job %s", request.run_id, where)
        else:
            log.info("run %s: Job %s exists already (request redelivered)", request.run_id, where)
        return Outcome("created" if created else "exists", request.run_id, where)

    def _reject(self, request: RunRequest, error: str) -> Outcome:
        message = f"run request refused: {error}"
        log.warning("run %s: %s", request.run_id, message)
        self.transport.emit(launcher_event(RunIdentity.of(request), EventType.FAIL, "rejected", message))
        return Outcome("rejected", request.run_id, error=message)

    async def launch_all(self, records: Sequence[Record], pool: ThreadPoolExecutor) -> list[Outcome]:
        """Every record, concurrently in `pool`; raises `KubeUnavailable` if any could not be handled now
        (after all have been tried)."""
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, self.launch, r) for r in records), return_exceptions=True
        )
        outcomes: list[Outcome] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            outcomes.append(result)
        return outcomes


def group_id(settings: Settings) -> str:
    return service_group(settings, SERVICE)


def launcher_router(
    settings: Settings, launcher: Launcher, pool: ThreadPoolExecutor, *, max_records: int = MAX_RECORDS
) -> KafkaRouter:
    """The requests-topic subscriber (a consumer group reading in batches) and the DLQ publisher."""
    router = KafkaRouter()
    dlq = dead_letter_publisher(router, settings, SERVICE)

    @batch_subscriber(
        router,
        settings,
        SERVICE,
        topics.REQUESTS,
        max_records=max_records,
        batch_timeout_ms=100,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def launch(records: NoCast[list[Record]]) -> None:
        """Create the batch's Jobs; dead letters are acknowledged by Kafka before the batch is."""
        try:
            outcomes = await launcher.launch_all(records, pool)
        except KubeUnavailable as exc:
            log.warning("Kubernetes API unavailable, %d request(s) will be retried: %s", len(records), exc)
            await asyncio.sleep(RETRY_PAUSE_S)
            raise
        dead = [(r, o.letter) for r, o in zip(records, outcomes, strict=True) if o.letter is not None]
        if dead:
            await asyncio.gather(*(dlq.publish(letter.to_bytes(), key=r.key) for r, letter in dead))

    return router
