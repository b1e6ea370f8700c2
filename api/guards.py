"""Guardrails: what a single request may cost, and which errors a client may read.

Checked before execution (validation rules, so a refused query touches no store):
    MAX_QUERY_DEPTH    nesting depth of selections (fragments followed)
    MAX_ALIASES        aliased fields per document (no "ask the same thing 1,000 times")
    MAX_TOKENS         lexical tokens per document (bounds parsing and validation work)
    MAX_COMPLEXITY     estimated cost, see `ComplexityRule`
While executing:
    Budget             one deadline per request; every store call waits at most until then
    LINEAGE_BOUNDS     depth, fan-out, nodes and time of a walk, whatever the client asks
    MAX_PAGE           `runs(first:)` and `search(limit:)` are capped here
Errors: `ProvgraphError`s (bad id, unknown node, timeout …) and GraphQL's own validation messages
reach the client as they are; anything else raised while resolving a field is logged with its
traceback and shown as "internal error" (see `should_mask`). Every error carries
`extensions.code`: BAD_USER_INPUT, QUERY_TIMEOUT, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED
or INTERNAL_SERVER_ERROR (see `MaskAndLabelErrors`); RATE_LIMITED comes from limits.py.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio.to_thread
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TypeInfo,
    ValidationContext,
    ValidationRule,
    get_named_type,
)
from strawberry.extensions import MaskErrors

from provgraph.events.errors import ProvgraphError
from provgraph.graph.contract import LineageBounds

log = logging.getLogger("provgraph.api")

T = TypeVar("T")

MAX_QUERY_DEPTH = 10
MAX_ALIASES = 20
MAX_TOKENS = 2_000
MAX_COMPLEXITY = 5_000
MAX_PAGE = 500
DEFAULT_PAGE = 50
LINEAGE_BOUNDS = LineageBounds(max_depth=10, max_fan_out=500, max_nodes=10_000, time_budget_s=5.0)
MASKED_MESSAGE = "internal error (logged on the server)"


class QueryTimeout(ProvgraphError):
    """A request ran past its time budget."""


class Budget:
    """The deadline of one request; `call` runs blocking store code in a worker thread until then."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def call(self, fn: Callable[..., T], *args: Any, slots: StoreSlots | None = None, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` in a thread; `QueryTimeout` if the budget ends first.

        The thread is abandoned, not killed: stores bound their own work (the lineage walk has a
        time budget of its own), so an abandoned call still ends soon after. With `slots` the call
        first waits (within the budget) for one of them, and holds it until the thread really ends.
        """
        call = functools.partial(fn, *args, **kwargs)
        try:
            if slots is None:
                return await asyncio.wait_for(self._thread(call), self._left())
            async with asyncio.timeout(self._left()):
                return await slots.run(call)
        except TimeoutError:
            raise self._timeout() from None

    def _left(self) -> float:
        remaining = self.remaining()
        if remaining <= 0:
            raise self._timeout()
        return remaining

    @staticmethod
    async def _thread(call: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    def _timeout(self) -> QueryTimeout:
        return QueryTimeout(
            f"query exceeded its time budget of {self.seconds:g} s; ask for less"
            " (smaller depth, fanOutLimit, first or fewer fields)"
        )


class StoreSlots:
    """At most `n` costly store calls (lineage walks) run at once in the whole server.

    Walks are CPU-bound Python in worker threads; with the GIL, every extra concurrent walk slows
    every other request, cheap ones included. A slot is held until the thread ends, not until its
    request gives up, so abandoned calls count too.
    """

    def __init__(self, n: int) -> None:
        self._free = asyncio.Semaphore(n)

    async def run(self, call: Callable[[], T]) -> T:
        await self._free.acquire()
        loop = asyncio.get_running_loop()
        lock = threading.Lock()
        state = "waiting"  # -> "running" in the thread, or -> "dropped" if cancelled before it starts

        def in_thread() -> T:
            nonlocal state
            with lock:
                if state == "dropped":
                    raise asyncio.CancelledError
                state = "running"
            try:
                return call()
            finally:
                loop.call_soon_threadsafe(self._free.release)

        try:
            return await Budget._thread(in_thread)
        except BaseException:
            with lock:
                if state == "waiting":  # the thread never ran and never will: the slot is ours to free
                    state = "dropped"
                    self._free.release()
            raise


def should_mask(error: GraphQLError) -> bool:
    """Hide unexpected exceptions raised while resolving a field; keep every message meant for users.

    Errors without a path (syntax, validation, variable coercion) are GraphQL's own and precise.
    """
    original = error.original_error
    return not (error.path is None or original is None or isinstance(original, ProvgraphError | GraphQLError))


def error_code(error: GraphQLError) -> str:
    """The `extensions.code` a client can branch on (Apollo's names where one exists)."""
    original = error.original_error
    if isinstance(original, QueryTimeout):
        return "QUERY_TIMEOUT"
    if isinstance(original, ProvgraphError):
        return "BAD_USER_INPUT"
    if error.path is None:
        return "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
    return "INTERNAL_SERVER_ERROR"


class MaskAndLabelErrors(MaskErrors):
    """strawberry's `MaskErrors` with `should_mask`, and every error labelled in `extensions`:
    `code` (see `error_code`) and, for provgraph's own errors, `type` (e.g. NotFound, ConfigError)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked

    def on_operation(self) -> Iterator[None]:
        yield from super().on_operation()
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or ():
            if not (error.extensions or {}).get("code"):
                labels: dict[str, Any] = {"code": error_code(error)}
                if isinstance(error.original_error, ProvgraphError):
                    labels["type"] = type(error.original_error).__name__
                error.extensions = {**(error.extensions or {}), **labels}


def log_errors(errors: list[GraphQLError]) -> None:
    """Unexpected errors with their traceback; the client's own mistakes at debug level, one line each."""
    for error in errors:
        if should_mask(error):
            where = ".".join(map(str, error.path or ()))
            log.error("unexpected error resolving %s", where, exc_info=error.original_error)
        else:
            log.debug("query error: %s", error.message)


MAX_REFS = 1_000
"""Inputs or outputs one `Run` lists: an event names at most 2,000 datasets, but a run's events
together are unbounded, and 20,000 inputs of a few runs made one cheap-looking query take 40 s."""
REFS_ESTIMATE = 10
"""Inputs or outputs a run is costed with when the query does not say `first`: what most have."""


def page_size(first: int | None, what: str = "first", cap: int = MAX_PAGE) -> int:
    """A client's page size, capped at `cap`; negative sizes are an error."""
    if first is None:
        return DEFAULT_PAGE
    if first < 0:
        from provgraph.events.errors import ConfigError

        raise ConfigError(f"{what} must be >= 0 (got {first})")
    return min(first, cap)


# -- complexity --------------------------------------------------------------------------------

# Extra cost of fields that call the store, by (parent type, field); every field costs 1 more.
FIELD_COST: dict[tuple[str, str], int] = {
    ("Query", "run"): 10,
    ("Query", "runs"): 10,
    ("Query", "job"): 10,
    ("Query", "dataset"): 10,
    ("Query", "datasetVersion"): 10,
    ("Query", "producedBy"): 10,
    ("Query", "search"): 20,
    ("Query", "lineage"): 200,
    ("Query", "incompleteRuns"): 10,
    ("Run", "completeness"): 2,
    ("Query", "compareRuns"): 50,
    ("Query", "diff"): 400,
    ("Run", "inputs"): 2,
    ("Run", "outputs"): 2,
    ("Run", "jobVersion"): 2,
    ("Run", "parent"): 10,
    ("Run", "children"): 10,
    ("Query", "pipeline"): 20,
    ("Run", "logs"): 20,
    ("Run", "metricHistory"): 20,
    ("Mutation", "reproduce"): 500,
    ("Run", "job"): 10,
    ("DatasetVersion", "producedBy"): 10,
    ("DatasetRef", "producedBy"): 10,
    ("Dataset", "latest"): 0,
    ("Query", "columnLineage"): 200,
    ("DatasetVersion", "schema"): 2,
    ("DatasetRef", "schema"): 2,
    ("Job", "sql"): 2,
    ("Job", "sqlDialect"): 2,
    ("Job", "sourceCodeLocation"): 2,
    ("Job", "jobType"): 2,
    ("Run", "error"): 2,
    ("Run", "dataQuality"): 2,
    ("Query", "codeSnapshot"): 20,
    ("Query", "artifacts"): 20,
    ("Query", "artifact"): 50,
    ("Mutation", "tag"): 50,
    ("Mutation", "delete"): 50,
}
# Fields whose children repeat once per item, and the argument that says how many items.
LIST_ARGUMENT: dict[tuple[str, str], tuple[str, int]] = {
    ("Query", "runs"): ("first", DEFAULT_PAGE),
    ("Query", "search"): ("limit", 20),
    ("Query", "incompleteRuns"): ("first", DEFAULT_PAGE),
    ("Run", "children"): ("first", 100),
    ("Query", "artifacts"): ("first", 50),
    ("Run", "inputs"): ("first", REFS_ESTIMATE),
    ("Run", "outputs"): ("first", REFS_ESTIMATE),
}


class ComplexityRule(ValidationRule):
    """Refuses operations whose estimated cost exceeds `MAX_COMPLEXITY`.

    cost(field) = 1 + FIELD_COST + n * cost(children), n = the page size for list fields in
    `LIST_ARGUMENT` (the literal argument, the capped maximum when given by a variable), else 1.
    Fragments are costed once and reused, so nested spreads cannot explode the estimate's own work.
    """

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._fragments = {
            d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._fragment_cost: dict[str, int] = {}

    def operation_cost(self, node: OperationDefinitionNode) -> int:
        schema = self.context.schema
        root = {
            OperationType.QUERY: schema.query_type,
            OperationType.MUTATION: schema.mutation_type,
            OperationType.SUBSCRIPTION: schema.subscription_type,
        }[node.operation]
        return 0 if root is None else self._selection_cost(root, node.selection_set, set())

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        cost = self.operation_cost(node)
        if cost > MAX_COMPLEXITY:
            name = f" {node.name.value}" if node.name else ""
            self.report_error(
                GraphQLError(
                    f"operation{name} is too complex: estimated cost {cost} > {MAX_COMPLEXITY};"
                    " ask for fewer items (first, limit) or fewer nested fields",
                    node,
                )
            )

    def _selection_cost(self, parent: GraphQLNamedType, selection: SelectionSetNode | None, seen: set[str]) -> int:
        if selection is None:
            return 0
        total = 0
        for sel in selection.selections:
            if isinstance(sel, FieldNode):
                total += self._field_cost(parent, sel, seen)
            elif isinstance(sel, InlineFragmentNode):
                on = self.context.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                total += self._selection_cost(on or parent, sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode):
                total += self._spread_cost(sel.name.value, seen)
        return total

    def _spread_cost(self, name: str, seen: set[str]) -> int:
        if name in self._fragment_cost:
            return self._fragment_cost[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in seen:  # unknown or cyclic: other rules report it
            return 0
        on = self.context.schema.get_type(fragment.type_condition.name.value)
        cost = 0 if on is None else self._selection_cost(on, fragment.selection_set, seen | {name})
        self._fragment_cost[name] = cost
        return cost

    def _field_cost(self, parent: GraphQLNamedType, node: FieldNode, seen: set[str]) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(parent, GraphQLObjectType):
            return 0
        field = parent.fields.get(name)
        if field is None:
            return 0
        key = (parent.name, name)
        repeat = 1
        if key in LIST_ARGUMENT:
            arg, default = LIST_ARGUMENT[key]
            repeat = default
            for a in node.arguments or ():
                if a.name.value == arg:
                    repeat = (
                        max(0, min(int(a.value.value), MAX_PAGE)) if isinstance(a.value, IntValueNode) else MAX_PAGE
                    )
        children = self._selection_cost(get_named_type(field.type), node.selection_set, seen)
        return 1 + FIELD_COST.get(key, 0) + repeat * children


def operation_cost(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> int:
    """The estimated cost (as `ComplexityRule` computes it) of the operation a request executes."""
    rule = ComplexityRule(ValidationContext(schema, document, TypeInfo(schema), lambda _: None))
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    return max((rule.operation_cost(o) for o in chosen), default=0)


def validation_rules() -> list[type[ValidationRule]]:
    """Depth, alias and complexity rules, built once: stable classes let strawberry's
    ValidationCache reuse the verdict for a query text it has seen."""
    return list(_RULES)


def _build_rules() -> tuple[type[ValidationRule], ...]:
    from strawberry.extensions.max_aliases import create_validator as alias_rule
    from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

    return (depth_rule(MAX_QUERY_DEPTH, None), alias_rule(MAX_ALIASES), ComplexityRule)


_RULES = _build_rules()
