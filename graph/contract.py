"""The lineage query contract every store implements (SQLite embedded, Neo4j in production).

`tests/contract/` is the shared suite: any new store must pass it unchanged. Writes are
`apply(events)`: idempotent and order-independent, so replaying or redelivering events never
changes the graph. Lineage walks are bounded breadth-first searches; `LineageBounds` caps them and
`LineageGraph.partial` says when a bound cut the walk.

The semantics every store answers with (docs/API.md has examples):
- an output of a run that has not COMPLETEd is *attempted*: listed with `attempted=True` among the
  run's outputs, never its dataset's producer, and walked (as an ATTEMPTED edge) only when a walk
  asks `include_failed`;
- an output without a dataset version gets one per writing run (`projection.minted_version`); an
  input without one resolves, when walking, to the version whose producer COMPLETEd last at or
  before the reading run's first event declaring it (else it stays `@unversioned`);
- `depth` counts dataset hops (`walk.py`);
- `as_of` (event time) and `known_at` (ingestion time) answer with the facts that had happened by
  `as_of` and that provgraph had received by `known_at`: a run's outputs count as written once its
  final (COMPLETE) event is within both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from provgraph.events.errors import ConfigError
from provgraph.events.states import RunState
from provgraph.graph.ids import NodeId

if TYPE_CHECKING:
    from provgraph.events.model import RunEvent
    from provgraph.graph.facets import ColumnLineageGraph, Facets
from provgraph.graph.views import (
    DatasetVersionView,
    DatasetView,
    Direction,
    JobView,
    LineageGraph,
    LogChunkView,
    MetricSeries,
    RunView,
)

DEFAULT_DEPTH = 5
"""Dataset hops a lineage walk follows unless asked otherwise (the API's and the CLI's default)."""

_END_OF_TIME = "~"
"""Sorts after every ISO time text: "no bound"."""


@dataclass(frozen=True)
class AsOf:
    """A point of view in time: `as_of` bounds event times, `known_at` ingestion times (None: now)."""

    as_of: datetime | None = None
    known_at: datetime | None = None

    @property
    def now(self) -> bool:
        return self.as_of is None and self.known_at is None

    def texts(self) -> tuple[str, str]:
        """The bounds as the stores compare them (ISO text in UTC)."""
        return tuple(  # type: ignore[return-value]
            _END_OF_TIME if t is None else t.astimezone(UTC).isoformat() for t in (self.as_of, self.known_at)
        )


NOW = AsOf()


@dataclass(frozen=True)
class LineageBounds:
    """Server-side caps on a walk; clients may ask for less, never for more."""

    max_depth: int = 20
    max_fan_out: int = 1000
    max_nodes: int = 10_000
    time_budget_s: float = 5.0

    def clamp(self, depth: int, fan_out: int) -> tuple[int, int]:
        return max(0, min(depth, self.max_depth)), max(1, min(fan_out, self.max_fan_out))


MAX_SEARCH_TEXT = 1000
"""Characters in a `search` text (SQLite refuses LIKE patterns over 50,000 bytes; nobody types more)."""


def search_needle(text: str) -> str:
    """The lower-cased text a store looks for, or `ConfigError` when it is too long."""
    if len(text) > MAX_SEARCH_TEXT:
        raise ConfigError(f"search text is {len(text)} characters long; the limit is {MAX_SEARCH_TEXT}")
    return text.lower()


Op = Literal["=", "!=", "<", "<=", ">", ">="]
Value = float | str


@dataclass(frozen=True)
class Condition:
    """One condition of a run query (`graph/run_query.py`): a param, a label (text) or a metric's latest
    value by `key`, or the run's `started`/`ended` time (an ISO string in UTC), compared with `value`."""

    kind: Literal["param", "metric", "label", "started", "ended"]
    key: str
    op: Op
    value: Value


@dataclass(frozen=True)
class RunFilter:
    project: str | None = None
    job: str | None = None
    state: RunState | None = None
    since: datetime | None = None
    until: datetime | None = None
    conditions: tuple[Condition, ...] = ()
    """All must hold (`run_query.parse` builds them; the stores answer them from indexes)."""

    def __post_init__(self) -> None:
        """`since` and `until` in UTC (a naive time is UTC), as the stores keep times: they compare
        ISO strings, and `10:00+05:00` must not read as 10:00 UTC."""
        for what in ("since", "until"):
            value: datetime | None = getattr(self, what)
            if value is not None:
                object.__setattr__(self, what, utc(value, what))


def utc(value: datetime, what: str) -> datetime:
    """`value` in UTC (naive: taken as UTC); `ConfigError` when UTC takes it out of years 1..9999."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ConfigError(f"{what} {value.isoformat()} is out of range once converted to UTC") from None


@runtime_checkable
class LineageStore(Protocol):
    bounds: LineageBounds

    def apply(self, events: Sequence[RunEvent], *, known_at: Sequence[datetime] | None = None) -> None:
        """Project events into the graph; idempotent and independent of order. A batch with an event
        the write rules refuse (`projection.admit`) raises `Inadmissible` and writes nothing.
        `known_at`: each event's ingestion time, from the log that delivered it (so a replay of the
        log gives the same graph); without it, each event's own time."""

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The project (namespace) of each of these runs the graph holds; unknown ids are left out."""

    def prepare(self, events: Sequence[RunEvent], *, known_at: Sequence[datetime] | None = None) -> Any:
        """Fold events into what `apply_prepared` writes: CPU only, no I/O, so a projector may
        prepare one batch while the previous one is written. `apply` = `apply_prepared(prepare(…))`."""

    def apply_prepared(self, batch: Any) -> None:
        """Write a batch made by `prepare`; raises `StoreUnavailable` when retrying later may succeed."""

    def reset(self) -> None:
        """Drop the whole projection (before a replay)."""

    def run(self, run_id: str) -> RunView | None: ...

    def runs(self, where: RunFilter | None = None, *, first: int = 50, after: str | None = None) -> list[RunView]:
        """Runs newest first (started_at, run_id); `after` is the run id of the previous page's last run."""

    def children(self, run_id: str, first: int = 1000) -> list[RunView]:
        """Runs of `run_id`'s project whose OpenLineage `parent` is `run_id` (CHILD_OF), oldest first: a
        pipeline's steps. A run of another project naming it as parent is not its child: no project
        adds steps to another's pipeline (its status, plan, controller and reproduction read these)."""

    def metric_history(self, run_id: str, keys: Sequence[str] | None = None, limit: int = 10_000) -> list[MetricSeries]:
        """Every step of the run's metrics (only `keys` when given), by key then step; at most
        `limit` steps per metric, the series marked `truncated` when there were more."""

    def log_chunks(self, run_id: str) -> list[LogChunkView]:
        """The chunks of the run's captured output the graph knows, by offset (gaps possible while
        events are on their way)."""

    def job(self, namespace: str, name: str) -> JobView | None: ...

    def dataset(self, namespace: str, name: str, at: AsOf = NOW) -> DatasetView | None:
        """The dataset with the versions that existed at `at` (read, or written by a COMPLETE run),
        oldest first; versions only attempted are left out."""

    def dataset_version(self, namespace: str, name: str, version: str) -> DatasetVersionView | None: ...

    def dataset_names(self, namespace: str, kind: str | None = None, first: int = 100) -> list[str]:
        """Names of the datasets in `namespace` (of that artifact `kind`), in name order."""
        ...

    def latest_version(self, namespace: str, name: str) -> DatasetVersionView | None: ...

    def produced_by(self, namespace: str, name: str, version: str | None = None, at: AsOf = NOW) -> RunView | None:
        """The COMPLETE run that wrote this dataset version (the earliest started, if several wrote
        identical bytes); with no version, the latest successful writer: the COMPLETE writer of any
        version of the dataset that ended last."""

    def lineage(
        self,
        node: NodeId,
        direction: Direction,
        depth: int = DEFAULT_DEPTH,
        fan_out: int = 100,
        *,
        include_failed: bool = False,
        at: AsOf = NOW,
    ) -> LineageGraph: ...

    def incomplete_runs(self, project: str | None = None, first: int = 50) -> list[RunView]:
        """Runs whose events are not all in the graph (`completeness.py`), newest first."""

    def search(self, text: str, kinds: Sequence[str] = ("job", "run", "dataset"), limit: int = 20) -> list[str]:
        """Node ids whose names contain `text` literally (case-insensitive; `%` and `_` are plain
        characters); a text longer than `MAX_SEARCH_TEXT` is refused with `ConfigError`."""

    def run_ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        """Run ids starting with `prefix` (case-sensitive), in order, at most `limit`."""

    def facets(self, owners: Sequence[str]) -> dict[str, Facets]:
        """The standard facets (`graph/facets.py`) of these node ids; owners without any are left out."""

    def column_lineage(
        self, dataset: NodeId, field: str, direction: Direction, depth: int = 5, fan_out: int = 100
    ) -> ColumnLineageGraph:
        """A bounded walk over column edges from `field` of `dataset` (`graph/columns.py`)."""

    def dump(self) -> dict[str, Any]:
        """A canonical, sorted dump of every node and edge: equal dumps mean equal graphs."""

    def close(self) -> None: ...
