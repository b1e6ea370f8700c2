"""`create_app(settings)`: the ASGI application `provgraph serve` runs under uvicorn.

    /                   the web UI (ui.py; its assets under /assets/)
    /graphql            GraphQL (POST, or GET with ?query=); GET without a query serves GraphiQL (offline)
    /api/v1/lineage     OpenLineage ingest (POST), see ingest.py
    /healthz            liveness, no token needed

Layers, outermost first: `Authenticate` (bearer token → `Scope`, or 401), `BodyLimit`
(413 past MAX_BODY_BYTES), the routes. The store and the transport are opened once, at startup,
and closed at shutdown; tests may pass their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio.to_thread
from cross_web import AsyncHTTPRequestAdapter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from provgraph.api.auth import SCOPE_KEY, Authenticate, TokenStore
from provgraph.api.consistency import Notices, Watcher, requested, unanswered
from provgraph.api.context import RequestContext, open_graph_service
from provgraph.api.guards import Budget
from provgraph.api.ingest import MAX_EVENT_BYTES, IngestEndpoint
from provgraph.api.limits import Lanes
from provgraph.api.root import build_schema
from provgraph.api.scope import Scope as Visibility
from provgraph.api.ui import page_response, ui_routes
from provgraph.events.admission import KnownObjects
from provgraph.events.errors import ProvgraphError
from provgraph.events.settings import Settings
from provgraph.events.transport.base import Transport
from provgraph.graph.factory import StoreHandle

log = logging.getLogger("provgraph.api")

MAX_BODY_BYTES = MAX_EVENT_BYTES


class EncodedResponse(dict[str, object]):
    """A GraphQL response already encoded to JSON (on the costly lane): `encode_json` sends `body`."""

    def __init__(self, response: GraphQLHTTPResponse, body: str) -> None:
        super().__init__(response)
        self.body = body


@dataclasses.dataclass
class EncodedResult(ExecutionResult):
    """The result of a costly operation with its encoded response (see `GraphQLApp.execute_single`)."""

    response: EncodedResponse | None = None


class GraphQLApp(GraphQL[RequestContext, None]):
    """strawberry's ASGI GraphQL app with provgraph's per-request context and the costly lane.

    A costly operation (`Lanes.costly`) executes, and its answer is encoded, on `Lanes.lane`: the
    event loop only hands it over and sends the bytes back, so cheap operations never queue behind it.
    """

    def __init__(self, graph: StoreHandle, settings: Settings, transport: Transport) -> None:
        schema = build_schema()
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=True, subscription_protocols=())
        self.graphql_schema = schema._schema
        self.graph = graph
        self.settings = settings
        self.transport = transport
        self.lanes = Lanes(settings)
        self.watcher = Watcher(graph, settings.consistency_timeout_s, Notices.for_settings(settings, graph))

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: RequestContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        if (position := requested(request_data)) is not None:
            try:
                await self.watcher.wait(position)
            except ProvgraphError as exc:  # not reached in time, or the progress could not be read
                return unanswered(exc)
        execution = super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)
        if not self.lanes.costly(self.graphql_schema, request_data.query, request_data.operation_name):
            return await execution

        async def execute_and_encode() -> ExecutionResult:
            result = await execution
            response = await super(GraphQLApp, self).process_result(request, result)
            encoded = EncodedResponse(response, self.encode_json_string(response))
            return EncodedResult(result.data, result.errors, result.extensions, response=encoded)

        return await self.lanes.lane.run(execute_and_encode())

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if isinstance(result, EncodedResult) and result.response is not None:
            return cast(GraphQLHTTPResponse, result.response)
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> str | bytes:
        return data.body if isinstance(data, EncodedResponse) else super().encode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        """A body (or GET variables) the JSON parser gives up on — nested past its recursion limit, an
        integer of more than 4,300 digits — is a 400 like any unparsable one, not a 500."""
        try:
            return json.loads(data)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:  # strawberry answers a JSONDecodeError with its 400
            raise json.JSONDecodeError(str(exc), "", 0) from exc

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from the package's own bundle: strawberry's page loads it from a CDN."""
        return page_response("graphiql.html")

    async def get_context(self, request: Any, response: Any = None) -> RequestContext:
        budget = Budget(self.settings.api_query_timeout_s)
        if self.graph.embedded:
            try:
                await budget.call(self.graph.sync)
            except ProvgraphError as exc:  # answer from the graph as it is rather than not at all
                log.warning("graph sync before a request failed: %s", exc)
        scope = request.scope.get(SCOPE_KEY, Visibility(frozenset()))
        client = (
            f"token:{scope.token_id}" if scope.token_id else f"address:{request.client.host if request.client else ''}"
        )
        return RequestContext(
            graph=self.graph,
            scope=scope,
            budget=budget,
            lanes=self.lanes,
            client=client,
            settings=self.settings,
            response=response,
            transport=self.transport,
        )


class BodyLimit:
    """ASGI middleware: 413 for request bodies larger than `max_bytes` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await JSONResponse({"error": f"request body larger than {self.max_bytes} bytes"}, 413)(
                    scope, receive, send
                )
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Starlette's exception middleware turns this into the response.
                    raise HTTPException(413, f"request body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _ingest(settings: Settings, transport: Transport, graph: StoreHandle) -> IngestEndpoint:
    """Ingest checking run owners where events land first: the embedded log itself, else the graph."""
    from provgraph.events.artifacts import ArtifactStore
    from provgraph.events.transport.sqlite import SqliteTransport

    owners = transport.log.owners if isinstance(transport, SqliteTransport) else graph.store.run_owners
    objects = KnownObjects(ArtifactStore(settings.artifact_url, settings.s3_endpoint_url))
    return IngestEndpoint(transport, owners, objects)


def create_app(
    settings: Settings,
    *,
    insecure_local: bool = False,
    graph: StoreHandle | None = None,
    transport: Transport | None = None,
    tokens: TokenStore | None = None,
) -> Starlette:
    """The API for `settings`: the store `settings.store`, ingest to `settings.transport`.

    `insecure_local=True` serves without tokens; the caller must bind to loopback only
    (`server.serve` checks), and the app itself refuses non-loopback clients.
    """
    graph = graph or open_graph_service(settings)
    if transport is None and settings.transport == "sqlite" and graph.event_log is not None:
        from provgraph.events.transport.sqlite import SqliteTransport

        # One connection to events.db per process: the log the graph reads is the one ingest writes.
        transport = SqliteTransport(graph.event_log)
    if transport is None:
        from provgraph.events.transport.factory import create_transport

        transport = create_transport(settings)
    if tokens is None and not insecure_local:
        tokens = TokenStore(settings.tokens_db)
    token_store = None if insecure_local else tokens

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(graph.sync)  # embedded: catch up with the log before serving
        try:
            yield
        finally:
            await graphql.watcher.close()
            graphql.lanes.lane.close()
            await anyio.to_thread.run_sync(transport.close)
            graph.close()
            if tokens is not None:
                tokens.close()

    graphql = GraphQLApp(graph, settings, transport)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return JSONResponse({"error": detail}, status_code=status)

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/api/v1/lineage", _ingest(settings, transport, graph).handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *ui_routes(graphql.graphql_schema),
        ],
        middleware=[Middleware(Authenticate, tokens=token_store), Middleware(BodyLimit)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
