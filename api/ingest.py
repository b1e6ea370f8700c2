"""`POST /api/v1/lineage`: the OpenLineage HTTP endpoint (the path Marquez and OpenLineage's
HttpTransport use), so any OpenLineage producer can write into provgraph.

The body is one OpenLineage RunEvent as JSON (gzip allowed: `Content-Encoding: gzip`, which the
OpenLineage client sends with `compression: gzip`). It is validated with `events.serde.loads`, the
same contract every event passes, then handed to the configured transport (Kafka, or the embedded
log the API reads). Before that, the write rules of `events/admission.py`, plus the token's projects:

    201  accepted and handed to the transport            {"runId", "eventType"}
    400  not a valid RunEvent: the validation message; or a `store://` version that is not a
         content hash, or an output whose object is not in the artifact store; or an event time
         more than MAX_CLOCK_AHEAD ahead of the server's clock, or more than MAX_DATASETS inputs
         and outputs or MAX_POINTS metric points or log chunks; a run id no lookup reads back (blank
         at either end, a control character, the `run:` prefix) or a run naming itself as its
         parent; nothing is forwarded. A missing output object is told before the run's owner is
         asked, so that answer says nothing of who owns the run id
    401  no or bad token (see auth.py)
    403  the event's job namespace is not one of the token's projects; its run id belongs to another
         project (the run's owner: the embedded log's record, in Kafka mode the graph); it writes a
         `store://` output outside its own project, or names a `store://` input of a project the
         token does not have
    409  the event id is already recorded with different content (both digests in the message;
         detected by the embedded log; with Kafka the conflict is found later, see docs/DESIGN.md)
    413  body (or decompressed body) larger than MAX_EVENT_BYTES
    503  the transport, the graph or the artifact store could not answer (the message says why)

In Kafka mode a run not yet in the graph has no known owner here; the projector settles it (the
run's first event keeps it, a later one from another project is dead-lettered).
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from provgraph.api.auth import SCOPE_KEY
from provgraph.api.scope import Scope
from provgraph.events.admission import KnownObjects, check_datasets, owner_conflict, store_datasets
from provgraph.events.errors import ContractError, EventConflict, Forbidden, ProvgraphError
from provgraph.events.model import RunEvent
from provgraph.events.serde import loads
from provgraph.events.transport.base import Transport
from provgraph.graph.ids import RUN_PREFIX

log = logging.getLogger("provgraph.api")

MAX_EVENT_BYTES = 4 * 1024 * 1024
MAX_DATASETS = 2_000
"""Inputs plus outputs one event may name: each is a node, an edge and facets to project before the
next request is answered, and 35,000 in one 2.4 MB event stalled every other client for a second."""
MAX_CLOCK_AHEAD = timedelta(days=1)
"""How far an event's time may be ahead of this server's clock: "the latest facet wins" is by event
time, so a far-future event would pin a shared dataset's schema (or a job's SQL) for good."""


MAX_POINTS = 10_000
"""Metric points or log chunks one event may carry (the SDK sends at most a few hundred): 95,000
points in one 4 MB event stalled every other client for over a second."""
_ODD_ID = re.compile(r"^\s|\s$|[\x00-\x1f\x7f-\x9f]")


class BodyTooLarge(Exception):
    pass


def _static_event(body: bytes) -> str | None:
    """The refusal of an OpenLineage DatasetEvent or JobEvent (static lineage, which the client sends
    to the same endpoint), or None for anything else."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict) or "run" in raw or "eventType" in raw:  # a RunEvent, however broken
        return None
    kind = "DatasetEvent" if "dataset" in raw else "JobEvent" if "job" in raw else None
    return kind and (f"an OpenLineage {kind} (static lineage) is not recorded: provgraph records runs, POST RunEvents")


def _shape_problem(event: RunEvent) -> str | None:
    """Why the event's size or run ids make it unfit for the record, or None."""
    named = len(event.inputs) + len(event.outputs)
    if named > MAX_DATASETS:
        return f"the event names {named} datasets (at most {MAX_DATASETS} inputs and outputs)"
    facets = event.run.facets
    for what, count in (
        ("metric points", len(facets.metrics.metrics) if facets.metrics else 0),
        ("log chunks", len(facets.logs.chunks) if facets.logs else 0),
    ):
        if count > MAX_POINTS:
            return f"the event carries {count} {what} (at most {MAX_POINTS}: send them in several events)"
    parent = facets.parent
    ids = [event.run.run_id, *([parent.run.run_id] if parent else [])]
    for run_id in ids:
        if run_id.startswith(RUN_PREFIX) or _ODD_ID.search(run_id):
            return (
                f"run id {run_id!r} cannot be read back: no leading or trailing blank, control character"
                f" or {RUN_PREFIX!r} prefix (a node id's, which lookups strip)"
            )
    if parent is not None and parent.run.run_id == event.run.run_id:
        return f"run {event.run.run_id!r} names itself as its parent"
    return None


Owners = Callable[[Sequence[str]], dict[str, str]]
"""Run id -> owning project, for the runs known (the embedded log's, or the graph's)."""


class IngestEndpoint:
    """A starlette endpoint forwarding valid, in-scope RunEvents to `transport`."""

    def __init__(
        self, transport: Transport, owners: Owners, objects: KnownObjects, max_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        self.transport = transport
        self.owners = owners
        self.objects = objects
        self.max_bytes = max_bytes

    async def handle(self, request: Request) -> JSONResponse:
        scope: Scope = request.scope.get(SCOPE_KEY, Scope(frozenset()))
        try:
            body = await self._body(request)
        except BodyTooLarge:
            return _error(413, f"event larger than {self.max_bytes} bytes")
        except zlib.error as exc:
            return _error(400, f"body is not valid gzip: {exc}")
        try:
            event = loads(body)
        except ContractError as exc:
            return _error(400, _static_event(body) or str(exc))
        shape = _shape_problem(event)
        if shape is not None:
            return _error(400, shape)
        ahead = event.event_time - datetime.now(UTC)
        if ahead > MAX_CLOCK_AHEAD:
            return _error(
                400,
                f"eventTime {event.event_time.isoformat()} is {ahead.total_seconds() / 3600:,.0f} hours ahead of"
                f" this server's clock (at most {MAX_CLOCK_AHEAD.total_seconds() / 3600:.0f}: the latest event's"
                " facets win)",
            )
        if not scope.allows(event.job.namespace):
            return _error(403, f"this token may not write to project {event.job.namespace!r} (the job namespace)")
        try:
            refusal = await anyio.to_thread.run_sync(self._refusal, scope, event)
        except ProvgraphError as exc:
            return _error(503, f"could not check the event: {exc}")
        except OSError as exc:
            return _error(503, f"could not check the event's outputs in the artifact store: {exc}")
        if refusal is not None:
            return refusal
        try:
            await anyio.to_thread.run_sync(self.transport.emit, event)
        except Forbidden:  # the run was claimed by another project since `_refusal` looked
            return _error(403, f"run {event.run.run_id!r} belongs to another project")
        except EventConflict as exc:
            return _error(409, str(exc))
        except ProvgraphError as exc:
            return _error(503, f"event not accepted by the {self.transport.kind} transport: {exc}")
        except Exception:
            log.exception("transport %s failed on event %s", self.transport.kind, event.run.run_id)
            return _error(500, "internal error (logged on the server)")
        return JSONResponse({"runId": event.run.run_id, "eventType": event.event_type.value}, status_code=201)

    def _refusal(self, scope: Scope, event: RunEvent) -> JSONResponse | None:
        """The answer refusing `event` (blocking: asks the run's owner and the artifact store), or None."""
        try:
            check_datasets(event)
        except ContractError as exc:
            return _error(400, str(exc))
        except Forbidden as exc:
            return _error(403, str(exc))
        for role, d, project in store_datasets(event):
            if not scope.allows(project):
                return _error(403, f"this token may not use {role} {d.namespace}/{d.name}: project {project!r}")
        try:  # before the run's owner is asked: a missing object answers alike whoever owns the run id
            self.objects.check_outputs(event)
        except ContractError:
            return _error(400, "an output or a tagged version is not in the artifact store: store its bytes first")
        run_id, namespace = event.run.run_id, event.job.namespace
        owner = self.owners([run_id]).get(run_id)
        if owner is not None and owner != namespace:
            if not scope.allows(owner):  # say no more: the token may not know that project
                return _error(403, f"run {run_id!r} belongs to a project this token may not write to")
            return _error(403, owner_conflict(run_id, owner, namespace))
        parent = event.run.facets.parent
        if parent is not None:
            linked = [parent.run.run_id, *([parent.root.run.run_id] if parent.root else [])]
            for linked_id, linked_owner in self.owners(linked).items():
                if not scope.allows(linked_owner):
                    return _error(
                        403, f"run {linked_id!r}, this run's parent, belongs to a project this token may not write to"
                    )
        tomb = event.run.facets.tombstone
        if tomb is not None and tomb.kind == "run":
            target_owner = self.owners([tomb.target]).get(tomb.target)
            if target_owner not in (None, namespace):
                return _error(403, f"run {run_id!r} of project {namespace!r} may not delete run {tomb.target!r}")
        return None

    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise BodyTooLarge
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
        body = b"".join(chunks)
        if request.headers.get("content-encoding", "").strip().lower() == "gzip":
            inflater = zlib.decompressobj(wbits=31)
            body = inflater.decompress(body, self.max_bytes + 1)
            if len(body) > self.max_bytes or inflater.unconsumed_tail:
                raise BodyTooLarge
        return body


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
