"""`query Q @consistentWith(token: "...") { ... }`: read your own writes.

A client that wrote (a run's `position`, from `provgraph.run` or `provgraph run --json`) passes
the token with its query; before anything executes, the server waits until the graph has
projected that position (graph/progress.py), at most `consistency_timeout_s`:
- malformed token, or one about another log: HTTP 400, one line, nothing executed;
- not reached in time: one GraphQL error with `extensions.code` NOT_CONSISTENT, nothing executed.

One `Watcher` per server reads the progress (a node per Kafka partition; embedded: a sync and one
row) for every waiting request, only while someone waits. Fed by Kafka, it reads when the projector's
notice (`topics.PROGRESS`, sent once a batch's transaction committed) names an offset a waiter needs,
and at least every `SAFETY_READ_S` while someone waits (a lost notice only delays); a waiter is
released by the graph's progress only, never by a notice. Embedded, or without Kafka settings, it
polls: 5 ms after the last read, doubling to 50 ms while the progress does not move.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
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
from provgraph.events import topics
from provgraph.events.consistency import Position, parse
from provgraph.events.errors import ConfigError, ProvgraphError
from provgraph.graph import progress
from provgraph.graph.progress import FIRST_INTERVAL_S, MAX_INTERVAL_S, NotConsistent, Progress

if TYPE_CHECKING:
    from strawberry.http import GraphQLRequestData

    from provgraph.events.settings import Settings
    from provgraph.graph.factory import StoreHandle

log = logging.getLogger(__name__)

NOT_CONSISTENT = "NOT_CONSISTENT"
SAFETY_READ_S = 1.0
"""With notices, the longest a waiter goes without a progress read (a lost notice delays it this much)."""
TOPIC_RETRY_S = 5.0
"""How often the watcher looks again for an absent notice topic."""


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
    """The server's one reader of the projection progress, shared by every waiting request.

    One task reads the progress, only while someone waits: at once for a new waiter after a pause,
    then when a notice (`notices`: Kafka, Neo4j) names an offset a waiter needs or after
    `SAFETY_READ_S` without a read; without notices, 5 ms after its last read, doubling to 50 ms while
    the progress does not move. Each read wakes every waiter; a waiter leaves once the progress read
    from the graph reaches its position (never on a notice alone: a notice may be stale).
    """

    def __init__(self, graph: StoreHandle, timeout_s: float, notices: Notices | None = None) -> None:
        self.graph = graph
        self.timeout_s = timeout_s
        self.notices = notices
        self._seen: Progress = {}
        self._interval = SAFETY_READ_S if notices is not None else FIRST_INTERVAL_S
        self._last_read = 0.0
        self._thread: anyio.CapacityLimiter | None = None
        self._waiting: list[Position] = []
        self._wake = asyncio.Event()
        self._read_done = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._failed: Exception | None = None

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
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_while_waited())
        self._waiting.append(position)
        try:
            self._wake.set()
            while not position.reached_by(progress.seen(self._seen, position)):
                left = deadline - time.monotonic()
                if left <= 0:
                    now = progress.seen(self._seen, position)
                    raise NotConsistent(progress.not_reached(position, now, self.timeout_s))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._read_done.wait(), left)
                if self._failed is not None:  # the read this waiter waited for failed
                    raise self._failed
        finally:
            self._waiting.remove(position)

    async def _read_while_waited(self) -> None:
        """The reader. With notices it subscribes first, then reads, so no batch falls in between."""
        if self.notices is not None:
            with contextlib.suppress(TimeoutError):  # Kafka slow or down: the timed reads still answer
                await asyncio.wait_for(self.notices.start(self._wake), SAFETY_READ_S)
        while True:  # one read at most per wake-up (a notice, a new waiter) or interval: a stale hint cannot loop
            if self._waiting and (self._last_read + self._interval <= time.monotonic() or self._noticed()):
                await self._read()
            due = self._last_read + self._interval - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), due if self._waiting else None)
            self._wake.clear()

    def _noticed(self) -> bool:
        """A notice names an offset a waiter needs that the last read did not reach."""
        hint = self.notices.hint if self.notices is not None else {}
        return any(
            p.reached_by(progress.seen(hint, p)) and not p.reached_by(progress.seen(self._seen, p))
            for p in self._waiting
        )

    async def _read(self) -> None:
        """Read the progress from the graph and wake every waiter (a failure is theirs to raise)."""
        self._failed = None
        idle = time.monotonic() - self._last_read > MAX_INTERVAL_S
        try:
            now = await anyio.to_thread.run_sync(progress.read, self.graph, limiter=self._limiter())
        except Exception as exc:  # noqa: BLE001 - answered to the waiters; the next read comes after the interval
            self._failed = exc
            now = self._seen
        self._last_read = time.monotonic()
        moved = now != self._seen
        self._seen = now
        if self.notices is None:
            self._interval = FIRST_INTERVAL_S if moved or idle else min(self._interval * 2, MAX_INTERVAL_S)
        if moved and log.isEnabledFor(logging.DEBUG):  # bench_latency splits emit -> visible with it
            log.debug(
                "progress at %.6f: %s", time.time(), " ".join(f"{t}:{p}={n}" for (_, t, p), n in sorted(now.items()))
            )
        self._read_done.set()
        self._read_done = asyncio.Event()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.notices is not None:
            await self.notices.close()


class Notices:
    """The projector's notices that a batch is in the graph (`topics.PROGRESS`), read from their end
    by one consumer of no group; `hint` holds the furthest offsets they named: a hint, never the truth
    (a notice may be stale after a reset or replay, or lost)."""

    def __init__(self, servers: str, topic: str) -> None:
        self.servers = servers
        self.topic = topic
        self.hint: Progress = {}
        self._consumer: Any = None
        self._listening: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, graph: StoreHandle) -> Notices | None:
        """Notices for a graph fed by Kafka; None (the watcher polls) when embedded, without Kafka or aiokafka."""
        if graph.embedded or not settings.kafka_bootstrap_servers or importlib.util.find_spec("aiokafka") is None:
            return None
        return cls(settings.kafka_bootstrap_servers, topics.topic(topics.PROGRESS, settings.kafka_topic_prefix))

    async def start(self, wake: asyncio.Event) -> None:
        """Subscribe at the topic's end; returns once positioned there (or the topic is found absent),
        then notes each notice in `hint` and sets `wake`, in the background."""
        from aiokafka import AIOKafkaConsumer

        if self._listening is not None:  # once per server; a restarted reader finds it listening
            return
        subscribed = asyncio.get_running_loop().create_future()
        consumer = self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.servers, group_id=None, enable_auto_commit=False, client_id="provgraph-api-watcher"
        )
        self._listening = asyncio.create_task(self._listen(consumer, wake, subscribed))
        await asyncio.shield(subscribed)

    async def _listen(self, consumer: Any, wake: asyncio.Event, subscribed: asyncio.Future[None]) -> None:
        try:
            await consumer.start()
            while self.topic not in await consumer.topics():  # absent: the watcher's safety reads only
                if not subscribed.done():
                    log.warning("no progress notices yet (topic %s absent)", self.topic)
                    subscribed.set_result(None)
                await asyncio.sleep(TOPIC_RETRY_S)
            consumer.subscribe([self.topic])
            while not consumer.assignment():
                await asyncio.sleep(0.01)
            for tp in consumer.assignment():  # positioned at the end before the watcher's first read
                await consumer.position(tp)
            if not subscribed.done():
                subscribed.set_result(None)
            while True:
                fetched = await consumer.getmany(timeout_ms=1000)
                for records in fetched.values():
                    for record in records:
                        self._note(record.value)
                if fetched:
                    wake.set()
        except Exception as exc:  # noqa: BLE001 - no notices: the safety reads still release every waiter
            log.warning("progress notices stopped: %s", exc)
            if not subscribed.done():
                subscribed.set_result(None)

    def _note(self, value: bytes | None) -> None:
        try:
            for t, p, n in json.loads(value or b"[]"):
                key = ("kafka", str(t), int(p))
                self.hint[key] = max(self.hint.get(key, 0), int(n))
        except (ValueError, TypeError):
            log.warning("progress notice not understood: %r", value)

    async def close(self) -> None:
        await _cancel(self._listening)
        if self._consumer is not None:
            await self._consumer.stop()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def unanswered(exc: ProvgraphError) -> ExecutionResult:
    """The answer to a request whose token was not reached (or the progress not read): one error, no data."""
    code = NOT_CONSISTENT if isinstance(exc, NotConsistent) else "INTERNAL_SERVER_ERROR"
    return ExecutionResult(data=None, errors=[GraphQLError(str(exc), extensions={"code": code})])
