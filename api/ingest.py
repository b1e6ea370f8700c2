"""`POST /api/v1/lineage`: the OpenLineage HTTP endpoint (the path Marquez and OpenLineage's
HttpTransport use), so any OpenLineage producer can write into provgraph.

The body is one OpenLineage RunEvent as JSON (gzip allowed: `Content-Encoding: gzip`, which the
OpenLineage client sends with `compression: gzip`). It is validated with `events.serde.loads`, the
same contract every event passes, then handed to the configured transport (Kafka, or the embedded
log the API reads). Answers:

    201  accepted and handed to the transport            {"runId", "eventType"}
    400  not a valid RunEvent: the validation message; nothing is forwarded
    401  no or bad token (see auth.py)
    403  the event's job namespace is not one of the token's projects
    409  the event id is already recorded with different content (both digests in the message;
         detected by the embedded log; with Kafka the conflict is found later, see docs/DESIGN.md)
    413  body (or decompressed body) larger than MAX_EVENT_BYTES
    503  the transport refused the event (the message says why)
"""

from __future__ import annotations

import logging
import zlib

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from provgraph.api.auth import SCOPE_KEY
from provgraph.api.scope import Scope
from provgraph.events.errors import ContractError, EventConflict, ProvgraphError
from provgraph.events.serde import loads
from provgraph.events.transport.base import Transport

log = logging.getLogger("provgraph.api")

MAX_EVENT_BYTES = 4 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


class IngestEndpoint:
    """A starlette endpoint forwarding valid, in-scope RunEvents to `transport`."""

    def __init__(self, transport: Transport, max_bytes: int = MAX_EVENT_BYTES) -> None:
        self.transport = transport
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
            return _error(400, str(exc))
        if not scope.allows(event.job.namespace):
            return _error(403, f"this token may not write to project {event.job.namespace!r} (the job namespace)")
        try:
            await anyio.to_thread.run_sync(self.transport.emit, event)
        except EventConflict as exc:
            return _error(409, str(exc))
        except ProvgraphError as exc:
            return _error(503, f"event not accepted by the {self.transport.kind} transport: {exc}")
        except Exception:
            log.exception("transport %s failed on event %s", self.transport.kind, event.run.run_id)
            return _error(500, "internal error (logged on the server)")
        return JSONResponse({"runId": event.run.run_id, "eventType": event.event_type.value}, status_code=201)

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
