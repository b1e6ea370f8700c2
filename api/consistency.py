"""`query Q @consistentWith(token: "...") { ... }`: read your own writes.

A client that wrote (a run's `position`, from `provgraph.run` or `provgraph run --json`) passes
the token with its query; before anything executes, the server waits until the graph has
projected that position (graph/progress.py), at most `consistency_timeout_s`:
- malformed token, or one about another log: HTTP 400, one line, nothing executed;
- not reached in time: one GraphQL error with `extensions.code` NOT_CONSISTENT, nothing executed.

Waiting costs the graph one small read per tick, however many requests wait: one `Watcher` per
server reads the progress (a node per Kafka partition; embedded: a sync and one row) only while
someone waits, 5 ms after the last read, doubling to 50 ms while it does not move.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import strawberry
from cross_web import HTTPException
from graphql import DirectiveLocation, GraphQLError, OperationDefinitionNode, StringValueNode, VariableNode
from strawberry.types import ExecutionResult

from provgraph.api.limits import _document
from provgraph.events.consistency import Position, parse
from provgraph.events.errors import ConfigError, ProvgraphError
from provgraph.graph import progress
from provgraph.graph.progress import FIRST_INTERVAL_S, MAX_INTERVAL_S, NotConsistent, Progress

if TYPE_CHECKING:
    from strawberry.http import GraphQLRequestData

    from provgraph.graph.factory import StoreHandle

log = logging.getLogger(__name__)

NOT_CONSISTENT = "NOT_CONSISTENT"


@strawberry.directive(
    locations=[DirectiveLocation.QUERY],
    name="consistentWith",
    description="Wait until the graph holds the write this token names (a run's `position`), then run the query",
)
def consistent_with(token: str) -> None:
    """Declared for validation; `Watcher` acts on it before execution."""


def requested(request: GraphQLRequestData) -> Position | None:
    """The position the request's operation asks for with `@consistentWith`; 400 when malformed."""
    document = _document(request.query) if request.query else None
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if request.operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == request.operation_name]
    if len(operations) != 1:
        return None  # execution reports the missing or ambiguous operation
    for directive in operations[0].directives or ():
        if directive.name.value != "consistentWith":
            continue
        value: Any = None
        for arg in directive.arguments or ():
            if isinstance(arg.value, StringValueNode):
                value = arg.value.value
            elif isinstance(arg.value, VariableNode):
                value = (request.variables or {}).get(arg.value.name.value)
        if not isinstance(value, str):
            raise HTTPException(400, "@consistentWith needs token: a String")
        try:
            return parse(value)
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from exc
    return None


class Watcher:
    """The server's one reader of the projection progress, shared by every waiting request."""

    def __init__(self, graph: StoreHandle, timeout_s: float) -> None:
        self.graph = graph
        self.timeout_s = timeout_s
        self._seen: Progress = {}
        self._poll: asyncio.Task[None] | None = None
        self._interval = FIRST_INTERVAL_S
        self._last_read = 0.0
        self._thread: anyio.CapacityLimiter | None = None

    def _limiter(self) -> anyio.CapacityLimiter:
        """The watcher's own worker-thread slot (its reads are small and one at a time): they never
        queue behind the queries' threads (anyio's shared 40), which a loaded server keeps busy."""
        if self._thread is None:  # made in the loop that serves the requests
            self._thread = anyio.CapacityLimiter(1)
        return self._thread

    async def wait(self, position: Position) -> None:
        """Return once the graph holds `position`; `NotConsistent` after the timeout, 400 if it cannot."""
        try:
            await anyio.to_thread.run_sync(progress.check, self.graph, position, limiter=self._limiter())
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from exc
        deadline = time.monotonic() + self.timeout_s
        while not position.reached_by(progress.seen(self._seen, position)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotConsistent(progress.not_reached(position, progress.seen(self._seen, position), self.timeout_s))
            if self._poll is None or self._poll.done():
                self._poll = asyncio.create_task(self._read())
            try:  # shielded: a waiter timing out does not cancel the read the others wait for
                await asyncio.wait_for(asyncio.shield(self._poll), left)
            except TimeoutError:
                continue

    async def _read(self) -> None:
        since = time.monotonic() - self._last_read
        if since > MAX_INTERVAL_S:  # idle until now: read at once
            self._interval = FIRST_INTERVAL_S
        else:
            await asyncio.sleep(max(0.0, self._interval - since))
        now = await anyio.to_thread.run_sync(progress.read, self.graph, limiter=self._limiter())
        self._last_read = time.monotonic()
        moved = now != self._seen
        self._seen = now
        if moved and log.isEnabledFor(logging.DEBUG):  # bench_latency splits emit -> visible with it
            log.debug(
                "progress at %.6f: %s", time.time(), " ".join(f"{t}:{p}={n}" for (_, t, p), n in sorted(now.items()))
            )
        self._interval = FIRST_INTERVAL_S if moved else min(self._interval * 2, MAX_INTERVAL_S)


def unanswered(exc: ProvgraphError) -> ExecutionResult:
    """The answer to a request whose token was not reached (or the progress not read): one error, no data."""
    code = NOT_CONSISTENT if isinstance(exc, NotConsistent) else "INTERNAL_SERVER_ERROR"
    return ExecutionResult(data=None, errors=[GraphQLError(str(exc), extensions={"code": code})])
