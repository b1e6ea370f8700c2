"""Fair shares: a client sending costly queries cannot slow everyone else down.

Every operation's estimated cost (`guards.operation_cost`, the same estimate the complexity rule
refuses at 5,000) picks its lane:
- cheap (below `api_costly_cost`): runs at once; `run(id)`, a page of runs, a dataset …
- costly (lineage walks, big pages): the client — its API token, or its address with
  `--insecure-local` — may have costly operations worth at most `api_client_costly_cost` in flight
  (a single operation is counted at no more than that, so it can always run alone). An operation
  that cannot start within `api_costly_wait_s` is refused: HTTP 429 with `Retry-After`, one GraphQL
  error with `extensions.code` RATE_LIMITED, nothing executed. Its lineage walks then also share
  `api_costly_store_calls` (1) worker threads with every other client's (`guards.StoreSlots`).

Costly operations also run off the server's event loop, in `CostlyLane`'s own thread and loop: from
admission to the encoded JSON answer (resolving, building thousands of lineage nodes, encoding
them), so the loop that serves cheap operations never waits behind that work, only (briefly) for
the GIL.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension

from provgraph.api.guards import MAX_TOKENS, StoreSlots, operation_cost

if TYPE_CHECKING:
    from provgraph.api.context import RequestContext
    from provgraph.events.settings import Settings

RATE_LIMITED = "RATE_LIMITED"
T = TypeVar("T")


CACHED_QUERY_CHARS = 8_192
"""Query texts up to this long keep their parsed document (256 of them: at most ~2 MiB of keys)."""


def _parse(query: str) -> DocumentNode | None:
    """The parsed query (None if it does not parse: execution reports why), bounded like execution's."""
    try:
        return parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None


_cached_parse = functools.lru_cache(maxsize=256)(_parse)


def _document(query: str) -> DocumentNode | None:
    return _cached_parse(query) if len(query) <= CACHED_QUERY_CHARS else _parse(query)


class CostlyLane:
    """A thread with its own event loop where costly operations execute, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="costly-lane", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """`await coro` on the lane's loop; cancelling the caller cancels it there too."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._running_loop()))

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()


class Lanes:
    """The server-wide state of the fair shares: what each client has in flight, and the walk slots."""

    def __init__(self, settings: Settings) -> None:
        self.costly_cost = settings.api_costly_cost
        self.client_cost = settings.api_client_costly_cost
        self.wait_s = settings.api_costly_wait_s
        self.retry_after = max(1, math.ceil(settings.api_costly_wait_s))
        self.store_slots = StoreSlots(settings.api_costly_store_calls)
        self.lane = CostlyLane()
        self._in_flight: dict[str, int] = {}
        self._changed = asyncio.Condition()

    def costly(self, schema: GraphQLSchema, query: str | None, operation_name: str | None) -> bool:
        """Whether this request's operation takes the costly lane (as `FairShare` will count it)."""
        document = _document(query) if query else None
        return document is not None and operation_cost(schema, document, operation_name) >= self.costly_cost

    async def admit(self, client: str, cost: int) -> bool:
        """Reserve `cost` of the client's share, waiting at most `wait_s`; False if it did not fit."""
        cost = min(cost, self.client_cost)

        def fits() -> bool:
            return self._in_flight.get(client, 0) + cost <= self.client_cost

        async with self._changed:
            if not fits():
                try:
                    await asyncio.wait_for(self._changed.wait_for(fits), self.wait_s)
                except TimeoutError:
                    return False
            self._in_flight[client] = self._in_flight.get(client, 0) + cost
        return True

    async def release(self, client: str, cost: int) -> None:
        cost = min(cost, self.client_cost)
        async with self._changed:
            left = self._in_flight[client] - cost
            if left:
                self._in_flight[client] = left
            else:
                del self._in_flight[client]  # idle clients leave no state behind
            self._changed.notify_all()


class FairShare(SchemaExtension):
    """Admits costly operations through `Lanes` after validation, before anything executes."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx: RequestContext = ec.context
        document = ec.graphql_document
        cost = 0 if document is None else operation_cost(ec.schema._schema, document, ec.operation_name)
        if cost < ctx.lanes.costly_cost:
            yield
            return
        if not await ctx.lanes.admit(ctx.client, cost):
            ctx.refuse(429, {"Retry-After": str(ctx.lanes.retry_after)})
            ec.result = ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        f"too many costly queries from this client at once; retry in {ctx.lanes.retry_after} s"
                        " (or ask for less: fewer aliases, smaller depth or fanOutLimit)",
                        extensions={"code": RATE_LIMITED, "retryAfter": ctx.lanes.retry_after},
                    )
                ],
            )
            yield
            return
        ctx.costly = True
        try:
            yield
        finally:
            await ctx.lanes.release(ctx.client, cost)
