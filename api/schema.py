"""The GraphQL schema: types mirror `graph/views.py`, resolvers speak only the `LineageStore` contract.

So the same schema serves the embedded SQLite graph and Neo4j. Every resolver:
- calls the store through `ctx.call` (worker thread, request time budget);
- applies the caller's `Scope` (see `scope.py`) before returning anything;
- raises `ProvgraphError`s for what the client got wrong; their messages reach the client.

Node ids are those of `graph/ids.py` (`run:<id>`, `job:<ns>:<name>`, `dataset:<ns>:<name>[@<version>]`).
To add a query: a resolver on `Query` (or on a topic's query type, listed in `root.py`), its cost
in `guards.FIELD_COST` when it calls the store, and a test in tests/test_api.py. Mutations live in `mutations.py`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, TypeVar, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from provgraph.api import facets as facet_types
from provgraph.api.context import RequestContext
from provgraph.api.delete import DeletedMark, run_deleted, version_deleted
from provgraph.api.guards import (
    LINEAGE_BOUNDS,
    MAX_PAGE,
    MAX_REFS,
    page_size,
)
from provgraph.api.run_records import (
    MAX_LOG_BYTES,
    MAX_METRIC_STEPS,
    MetricHistory,
    RunLogs,
    metric_history,
    run_logs,
)
from provgraph.api.scalars import Long
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets.values import encode_float
from provgraph.events.model import RunState
from provgraph.graph import run_query
from provgraph.graph.contract import DEFAULT_DEPTH, AsOf, RunFilter, utc
from provgraph.graph.ids import (
    NodeId,
    as_recorded,
    as_run_id,
    dataset_node_id,
    job_node_id,
    parse_node_id,
    run_node_id,
)
from provgraph.graph.views import (
    Completeness as CompletenessView,
)
from provgraph.graph.views import (
    DatasetRef as DatasetRefView,
)
from provgraph.graph.views import (
    DatasetVersionView,
    DatasetView,
    Direction,
    JobVersionView,
    JobView,
    LineageGraph,
    RunView,
)

Ctx = Info[RequestContext, None]
F = TypeVar("F", bound=Callable[..., Any])


def resolver(description: str) -> Callable[[F], F]:
    """`@strawberry.field(description=…)` that keeps the resolver's type for mypy."""

    def wrap(fn: F) -> F:
        return cast(F, strawberry.field(fn, description=description))

    return wrap


@strawberry.enum(name="Direction", description="Where a lineage walk goes from its start node.")
class LineageDirection(Enum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"


strawberry.enum(
    RunState,
    description="A run's state: the latest of its events (terminal events win); REQUESTED = launched, not started;"
    " LOST = START/RUNNING but its process is gone or silent (the run's error says why).",
)


@strawberry.enum(description="What a node id names.")
class NodeKind(Enum):
    RUN = "run"
    JOB = "job"
    DATASET = "dataset"
    DATASET_VERSION = "datasetVersion"


@strawberry.enum(description="What `search` looks through.")
class SearchKind(Enum):
    JOB = "job"
    RUN = "run"
    DATASET = "dataset"


@strawberry.enum(
    description="READ: the run used the dataset version; WROTE: the run generated it (and COMPLETEd);"
    " ATTEMPTED: the run declared it as an output but has not COMPLETEd (failed, aborted or still going)."
)
class EdgeKind(Enum):
    READ = "READ"
    WROTE = "WROTE"
    ATTEMPTED = "ATTEMPTED"


# -- object types ------------------------------------------------------------------------------


@strawberry.type(description="A version of a job: the code that ran, by content hash.")
class JobVersion:
    namespace: str
    name: str
    code_hash: str
    entrypoint: str | None
    source_uri: str | None
    git_commit: str | None
    git_dirty: bool | None

    @staticmethod
    def of(v: JobVersionView) -> JobVersion:
        return JobVersion(
            namespace=v.namespace,
            name=v.name,
            code_hash=v.code_hash,
            entrypoint=v.entrypoint,
            source_uri=v.source_uri,
            git_commit=v.git_commit,
            git_dirty=v.git_dirty,
        )


@strawberry.type(description="A job (namespace = project, name = function) and its code versions.")
class Job:
    namespace: str
    name: str
    run_count: int
    versions: list[JobVersion]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(NodeId.job(self.namespace, self.name)))

    @resolver("The query text of the job's latest `sql` facet.")
    async def sql(self, info: Ctx) -> str | None:
        found = (await facet_types.facets_of(info.context, job_node_id(self.namespace, self.name))).sql
        return found.query if found else None

    @resolver("The SQL dialect of the job's latest `sql` facet.")
    async def sql_dialect(self, info: Ctx) -> str | None:
        found = (await facet_types.facets_of(info.context, job_node_id(self.namespace, self.name))).sql
        return found.dialect if found else None

    @resolver("Where the job's code lives (latest `sourceCodeLocation` facet).")
    async def source_code_location(self, info: Ctx) -> facet_types.SourceCodeLocation | None:
        return facet_types.source_code_location(
            await facet_types.facets_of(info.context, job_node_id(self.namespace, self.name))
        )

    @resolver("What kind of job this is (latest `jobType` facet).")
    async def job_type(self, info: Ctx) -> facet_types.JobType | None:
        return facet_types.job_type(await facet_types.facets_of(info.context, job_node_id(self.namespace, self.name)))

    @staticmethod
    def of(v: JobView) -> Job:
        return Job(
            namespace=v.namespace, name=v.name, run_count=v.run_count, versions=[JobVersion.of(x) for x in v.versions]
        )


@strawberry.type(description="One version of a dataset, identified by its content hash.")
class DatasetVersion:
    namespace: str
    name: str
    version: str
    kind: str | None
    size: Long | None
    uri: str | None
    created_at: datetime | None

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(NodeId.dataset(self.namespace, self.name, self.version)))

    @resolver("Its tombstone when `provgraph delete` deleted it, else null.")
    async def deleted(self, info: Ctx) -> DeletedMark | None:
        return await version_deleted(info.context, self.namespace, self.name, self.version, self.created_at)

    @resolver("The run that wrote this version (the earliest you may see).")
    async def produced_by(self, info: Ctx) -> Run | None:
        return await _producer(info.context, self.namespace, self.name, self.version)

    @resolver("The fields of this version (its latest `schema` facet); null when no event described them.")
    async def schema(self, info: Ctx) -> list[facet_types.SchemaField] | None:
        owner = dataset_node_id(self.namespace, self.name, self.version)
        return facet_types.schema_fields(await facet_types.facets_of(info.context, owner))

    @staticmethod
    def of(v: DatasetVersionView) -> DatasetVersion:
        return DatasetVersion(
            namespace=v.namespace,
            name=v.name,
            version=v.version,
            kind=v.kind,
            size=None if v.size is None else Long(v.size),
            uri=v.uri,
            created_at=v.created_at,
        )


@strawberry.type(description="A dataset (all its versions); external data or a logged artifact (store://project).")
class Dataset:
    namespace: str
    name: str
    kind: str | None
    versions: list[DatasetVersion]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(NodeId.dataset(self.namespace, self.name)))

    @resolver("The newest version, or null when none is known.")
    def latest(self) -> DatasetVersion | None:
        return self.versions[-1] if self.versions else None

    @staticmethod
    def of(v: DatasetView) -> Dataset:
        return Dataset(
            namespace=v.namespace, name=v.name, kind=v.kind, versions=[DatasetVersion.of(x) for x in v.versions]
        )


@strawberry.type(description="A dataset version as a run saw it, with the name the run bound it to.")
class DatasetRef:
    namespace: str
    name: str
    version: str
    binding: str
    kind: str | None
    attempted: bool = strawberry.field(
        description="An output the run declared but has not written: it has not COMPLETEd (failed, aborted,"
        " still going). Never true for inputs."
    )

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(NodeId.dataset(self.namespace, self.name, self.version)))

    @resolver("The run that wrote this version (the earliest you may see).")
    async def produced_by(self, info: Ctx) -> Run | None:
        return await _producer(info.context, self.namespace, self.name, self.version)

    @resolver("The fields of this version (its latest `schema` facet); null when no event described them.")
    async def schema(self, info: Ctx) -> list[facet_types.SchemaField] | None:
        owner = dataset_node_id(self.namespace, self.name, self.version)
        return facet_types.schema_fields(await facet_types.facets_of(info.context, owner))

    @staticmethod
    def of(v: DatasetRefView) -> DatasetRef:
        return DatasetRef(
            namespace=v.namespace,
            name=v.name,
            version=v.version,
            binding=v.binding,
            kind=v.kind,
            attempted=v.attempted,
        )


@strawberry.type(description="The outcome of reproducing another run.")
class Reproduction:
    original_run_id: str
    verdict: str
    differences: JSON
    environment: JSON


@strawberry.type(description="Whether every event of a run reached provgraph.")
class Completeness:
    complete: bool
    missing: list[Long] = strawberry.field(
        description="Sequence numbers of events known to be missing (at most 100 are listed)."
    )
    reasons: list[str] = strawberry.field(
        description="sequenceGap (a sequence number below the highest is missing), countUnmet (fewer events"
        " than the producer declared), noStart (no START), noTerminal (no COMPLETE/FAIL/ABORT long after the"
        " last event; setting completeness_timeout_s)."
    )

    @staticmethod
    def of(v: CompletenessView) -> Completeness:
        return Completeness(complete=v.complete, missing=[Long(m) for m in v.missing], reasons=list(v.reasons))


@strawberry.type(description="One execution of a job: code version, params, inputs, outputs, results, metrics.")
class Run:
    run_id: str
    project: str
    job_name: str
    state: RunState
    started_at: datetime | None
    ended_at: datetime | None
    code_hash: str | None
    params: JSON
    results: JSON
    labels: JSON = strawberry.field(description="The run's labels (MLRun's set_label): key -> text.")
    annotations: JSON = strawberry.field(description="The run's annotations (MLRun's set_annotation): key -> text.")
    metrics: JSON = strawberry.field(description="Latest value of each metric (by step).")
    runtime: JSON
    traceback: str | None = strawberry.field(description="The failure's stack trace, as the run reported it.")
    parent_run_id: str | None
    cached_from: str | None = strawberry.field(
        description="Run id whose outputs this run reused instead of executing (CACHED_FROM)."
    )
    reproduces: Reproduction | None
    view: strawberry.Private[RunView]
    detailed: strawberry.Private[bool]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(run_node_id(self.run_id))

    @resolver("Its tombstone when `provgraph delete` deleted it (see `run(includeDeleted)`).")
    async def deleted(self, info: Ctx) -> DeletedMark | None:
        return await run_deleted(info.context, self.run_id, self.project, self.started_at)

    async def _detail(self, info: Ctx) -> RunView:
        if self.detailed:
            return self.view
        return await info.context.run_detail(self.run_id) or self.view

    @resolver(f"Dataset versions the run read, with their content hashes; the first `first` (≤ {MAX_REFS}).")
    async def inputs(self, info: Ctx, first: int = MAX_REFS) -> list[DatasetRef]:
        return [DatasetRef.of(d) for d in (await self._detail(info)).inputs[: page_size(first, cap=MAX_REFS)]]

    @resolver(
        "Dataset versions the run declared as outputs: written once it COMPLETEs, else `attempted`;"
        f" the first `first` (≤ {MAX_REFS})."
    )
    async def outputs(self, info: Ctx, first: int = MAX_REFS) -> list[DatasetRef]:
        return [DatasetRef.of(d) for d in (await self._detail(info)).outputs[: page_size(first, cap=MAX_REFS)]]

    @resolver("How many dataset versions the run read (`inputs` lists at most its `first`).")
    async def input_count(self, info: Ctx) -> int:
        return len((await self._detail(info)).inputs)

    @resolver("How many dataset versions the run declared as outputs (`outputs` lists at most its `first`).")
    async def output_count(self, info: Ctx) -> int:
        return len((await self._detail(info)).outputs)

    @resolver("Whether every event of the run reached provgraph (gaps, no START, no end, a declared count).")
    async def completeness(self, info: Ctx) -> Completeness | None:
        found = (await self._detail(info)).completeness
        return Completeness.of(found) if found else None

    @resolver("The job version (code hash, git commit) the run executed.")
    async def job_version(self, info: Ctx) -> JobVersion | None:
        jv = (await self._detail(info)).job_version
        return JobVersion.of(jv) if jv else None

    @resolver("Why the run failed (or why a START/RUNNING run shows as LOST); null when nothing failed.")
    async def error(self, info: Ctx) -> facet_types.RunError | None:
        if self.view.error is None:
            return None
        return facet_types.run_error(self.view, await facet_types.facets_of(info.context, run_node_id(self.run_id)))

    @resolver("Data-quality assertions the run reported about its datasets (`dataQualityAssertions` facets).")
    async def data_quality(self, info: Ctx) -> list[facet_types.Assertion]:
        return facet_types.data_quality(
            info.context, await facet_types.facets_of(info.context, run_node_id(self.run_id))
        )

    @resolver(f"What the run printed and logged: the last `maxBytes` (≤ {MAX_LOG_BYTES}), or from offset `from`.")
    async def logs(
        self, info: Ctx, from_: Annotated[int | None, strawberry.argument(name="from")] = None, max_bytes: int = 65536
    ) -> RunLogs:
        return await run_logs(info.context, self.run_id, from_, max_bytes)

    @resolver(f"Every step of the run's metrics (only `keys` when given); at most `limit` (≤ {MAX_METRIC_STEPS}) each.")
    async def metric_history(
        self, info: Ctx, keys: list[str] | None = None, limit: int = MAX_METRIC_STEPS
    ) -> list[MetricHistory]:
        return await metric_history(info.context, self.run_id, keys, limit)

    @resolver("The job this run belongs to.")
    async def job(self, info: Ctx) -> Job | None:
        view = await info.context.call(info.context.store.job, self.project, self.job_name)
        return Job.of(view) if view else None

    @resolver("The pipeline run this run is a step of.")
    async def parent(self, info: Ctx) -> Run | None:
        if self.parent_run_id is None:
            return None
        return await _visible_run(info.context, self.parent_run_id)

    @resolver("Runs that are steps of this one (its OpenLineage children, CHILD_OF), oldest first.")
    async def children(self, info: Ctx, first: int | None = 100) -> list[Run]:
        ctx = info.context
        views = await ctx.call(ctx.store.children, self.run_id, first=page_size(first))
        return [Run.of(v, detailed=False) for v in views if ctx.scope.run_visible(v)]

    @staticmethod
    def of(v: RunView, *, detailed: bool) -> Run:
        repro = v.reproduces
        return Run(
            run_id=v.run_id,
            project=v.namespace,
            job_name=v.job_name,
            state=v.state,
            started_at=v.started_at,
            ended_at=v.ended_at,
            code_hash=v.code_hash,
            params=JSON(v.params),
            results=JSON(v.results),
            labels=JSON(v.labels),
            annotations=JSON(v.annotations),
            metrics=JSON({k: encode_float(x) for k, x in v.metrics.items()}),  # NaN is "NaN", as in events
            runtime=JSON(v.runtime),
            traceback=v.traceback,
            parent_run_id=v.parent_run_id,
            cached_from=v.cached_from,
            reproduces=Reproduction(
                original_run_id=repro.original_run_id,
                verdict=repro.verdict,
                differences=JSON(repro.differences),
                environment=JSON(repro.environment),
            )
            if repro
            else None,
            view=v,
            detailed=detailed,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class RunEdge:
    cursor: str
    node: Run


@strawberry.type(description="A page of runs, newest first; pass `pageInfo.endCursor` as `after` for the next.")
class RunConnection:
    edges: list[RunEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Run]:
        return [e.node for e in self.edges]


@strawberry.type(description="A run or a dataset version reached by a lineage walk.")
class LineageNode:
    id: strawberry.ID
    kind: NodeKind
    hop: int = strawberry.field(description="Hops from the start node (0 = a start node).")
    label: str
    props: JSON


@strawberry.type(description="Always points from the run to the dataset version, whatever the walk's direction.")
class LineageEdge:
    source: strawberry.ID
    target: strawberry.ID
    kind: EdgeKind
    binding: str


@strawberry.type(
    description="A bounded walk; `partial` says something reachable was cut (by the depth, the fan-out limit,"
    " the node limit or the time budget): `partialReasons` says which, `cutReasons` where."
)
class Lineage:
    root: strawberry.ID
    direction: LineageDirection
    depth: int = strawberry.field(
        description="The depth actually used, in dataset hops (requests are capped server-side)."
    )
    fan_out_limit: int = strawberry.field(description="The fan-out limit actually used.")
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    partial: bool
    partial_reasons: list[str] = strawberry.field(description="depth, fanOut, nodes, time: each bound that cut.")
    cut_reasons: list[str]

    @staticmethod
    def of(g: LineageGraph, fan_out: int) -> Lineage:
        return Lineage(
            root=strawberry.ID(g.root),
            direction=LineageDirection(g.direction.value),
            depth=g.depth,
            fan_out_limit=fan_out,
            nodes=[
                LineageNode(
                    id=strawberry.ID(n.id), kind=NodeKind(n.kind), hop=n.hop, label=n.label, props=JSON(n.props)
                )
                for n in g.nodes
            ],
            edges=[
                LineageEdge(
                    source=strawberry.ID(e.source),
                    target=strawberry.ID(e.target),
                    kind=EdgeKind(e.kind),
                    binding=e.binding,
                )
                for e in g.edges
            ],
            partial=g.partial,
            partial_reasons=g.partial_reasons,
            cut_reasons=list(g.cut_reasons),
        )


@strawberry.type
class SearchHit:
    id: strawberry.ID
    kind: NodeKind
    label: str


# -- helpers -----------------------------------------------------------------------------------

_CURSOR_PREFIX = "run:"


def encode_cursor(run_id: str) -> str:
    return base64.urlsafe_b64encode((_CURSOR_PREFIX + run_id).encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    if not text.startswith(_CURSOR_PREFIX) or len(text) == len(_CURSOR_PREFIX):
        raise ConfigError(f"invalid cursor {cursor!r}: pass a pageInfo.endCursor or an edge cursor from `runs`")
    return text[len(_CURSOR_PREFIX) :]


def _utc(value: datetime | None, what: str) -> datetime | None:
    return None if value is None else utc(value, what)


def _as_of(as_of: datetime | None, known_at: datetime | None) -> AsOf:
    return AsOf(as_of=_utc(as_of, "asOf"), known_at=_utc(known_at, "knownAt"))


def _run_key(run: RunView) -> tuple[datetime, str]:
    return (run.started_at or datetime.min.replace(tzinfo=UTC), run.run_id)


async def _visible_run(ctx: RequestContext, run_id: str) -> Run | None:
    view = await ctx.run_detail(run_id)
    return Run.of(view, detailed=True) if view is not None and ctx.scope.run_visible(view) else None


async def _producer(
    ctx: RequestContext, namespace: str, name: str, version: str | None, at: AsOf | None = None
) -> Run | None:
    """The earliest visible COMPLETE run that wrote this dataset version (with no version: the
    latest written version's writer)."""
    if not ctx.scope.dataset_visible(namespace):
        return None
    at = at or AsOf()
    run = await ctx.call(ctx.store.produced_by, namespace, name, version, at)
    if run is None or ctx.scope.run_visible(run):
        return Run.of(run, detailed=True) if run else None
    # The writer belongs to another project: look for one this caller may see.
    start = NodeId.dataset(namespace, name, version)
    graph = await ctx.walk(start, Direction.UPSTREAM, 1, LINEAGE_BOUNDS.max_fan_out, at=at)
    writers = [n for n in graph.nodes if n.hop == 1 and n.kind == "run" and ctx.scope.node_visible(n)]
    if not writers:
        return None
    key = lambda n: (str(n.props.get("started_at") or ""), n.id)  # noqa: E731
    chosen = min(writers, key=key) if version is not None else max(writers, key=key)
    return await _visible_run(ctx, as_run_id(chosen.id))


async def check_start(ctx: RequestContext, node: NodeId, text: str) -> None:
    """A lineage walk may start only where the caller may look; elsewhere it is 'no such node'."""
    if ctx.scope.unrestricted:
        return
    if node.kind == "run":
        visible = ctx.scope.run_visible(await ctx.run_detail(node.key[0]))
    elif node.kind == "job":
        visible = ctx.scope.allows(node.key[0])
    else:
        visible = ctx.scope.dataset_visible(node.key[0])
    if not visible:
        raise NotFound(f"no such node: {text}")


def _hit_label(node: NodeId) -> str:
    return node.key[0] if node.kind == "run" else node.key[1]


# -- queries -----------------------------------------------------------------------------------


@strawberry.type
class Query:
    @resolver(
        "A run by id (`<runId>` or `run:<runId>`); null when unknown, deleted (unless `includeDeleted`) or not yours."
    )
    async def run(self, info: Ctx, id: strawberry.ID, include_deleted: bool = False) -> Run | None:
        ctx = info.context
        if include_deleted:
            view = await ctx.call(ctx.graph.store.run, as_run_id(str(id)))
            return Run.of(view, detailed=True) if view is not None and ctx.scope.run_visible(view) else None
        return await _visible_run(ctx, as_run_id(str(id)))

    @resolver("Runs newest first, filtered; cursor pagination (`first` is capped at 500).")
    async def runs(
        self,
        info: Ctx,
        project: str | None = None,
        job: str | None = None,
        state: RunState | None = None,
        since: Annotated[datetime | None, strawberry.argument(description="started at or after")] = None,
        until: Annotated[datetime | None, strawberry.argument(description="started before")] = None,
        first: int | None = 50,
        after: str | None = None,
        filter: Annotated[
            str | None,
            strawberry.argument(description='A run query, e.g. "metrics.accuracy > 0.9 and params.lr = 0.01"'),
        ] = None,
        include_deleted: Annotated[bool, strawberry.argument(description="also runs `provgraph delete` hid")] = False,
    ) -> RunConnection:
        ctx = info.context
        store = ctx.graph.store if include_deleted else ctx.store
        size = page_size(first)
        after_id = decode_cursor(after) if after else None
        query, conditions = run_query.parse(filter) if filter is not None else (RunFilter(), ())
        query = run_query.merge(RunFilter(project=project, job=job, state=state), query)
        project, job, state = query.project, query.job, query.state
        projects = ctx.scope.readable(project)
        found: list[RunView] = []
        for p in projects:
            where = RunFilter(project=p, job=job, state=state, since=since, until=until, conditions=conditions)
            found += await ctx.call(store.runs, where, first=size + 1, after=after_id)
        # One page per project, each newest first from the same cursor: merging them is exact.
        found.sort(key=_run_key, reverse=True)
        page = found[:size]
        edges = [RunEdge(cursor=encode_cursor(r.run_id), node=Run.of(r, detailed=False)) for r in page]
        return RunConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=len(found) > size, end_cursor=edges[-1].cursor if edges else None),
        )

    @resolver("A job and its code versions.")
    async def job(self, info: Ctx, namespace: str, name: str) -> Job | None:
        ctx = info.context
        if not ctx.scope.allows(namespace):
            return None
        view = await ctx.call(ctx.store.job, namespace, name)
        return Job.of(view) if view else None

    @resolver(
        "A dataset and its versions (oldest first) that existed: read, or written by a COMPLETE run;"
        " as of an event time (`asOf`) and/or as provgraph knew it at an ingestion time (`knownAt`)."
    )
    async def dataset(
        self, info: Ctx, namespace: str, name: str, as_of: datetime | None = None, known_at: datetime | None = None
    ) -> Dataset | None:
        ctx = info.context
        if not ctx.scope.dataset_visible(namespace):
            return None
        view = await ctx.call(ctx.store.dataset, namespace, name, _as_of(as_of, known_at))
        return Dataset.of(view) if view else None

    @resolver("One dataset version (version = content hash, e.g. sha256:…).")
    async def dataset_version(self, info: Ctx, namespace: str, name: str, version: str) -> DatasetVersion | None:
        ctx = info.context
        if not ctx.scope.dataset_visible(namespace):
            return None
        view = await ctx.call(ctx.store.dataset_version, namespace, name, version)
        return DatasetVersion.of(view) if view else None

    @resolver(
        "What produced this dataset version: the COMPLETE run, with its job version, params and inputs."
        " Without `version`: the latest successful writer of the dataset. `asOf` (event time) and `knownAt`"
        " (ingestion time) answer as the world was, or as provgraph knew it, then."
    )
    async def produced_by(
        self,
        info: Ctx,
        namespace: str,
        name: str,
        version: str | None = None,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Run | None:
        return await _producer(info.context, namespace, name, version, _as_of(as_of, known_at))

    @resolver(
        "Walk the graph from a node id (run:…, job:…, dataset:…[@version]); depth counts dataset hops"
        " (a dataset, the run on its far side, that run's datasets); depth and fanOutLimit"
        f" are capped at {LINEAGE_BOUNDS.max_depth} and {LINEAGE_BOUNDS.max_fan_out}. Outputs of runs that"
        " did not COMPLETE are walked (as ATTEMPTED edges) only with includeFailed. asOf (event time) and"
        " knownAt (ingestion time) walk the graph as it was, or as provgraph knew it, then."
    )
    async def lineage(
        self,
        info: Ctx,
        node: strawberry.ID,
        direction: LineageDirection = LineageDirection.UPSTREAM,
        depth: int = DEFAULT_DEPTH,
        fan_out_limit: int = 100,
        include_failed: bool = False,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Lineage:
        ctx = info.context
        start = await ctx.call(as_recorded, parse_node_id(str(node)), ctx.store)
        depth, fan_out = LINEAGE_BOUNDS.clamp(depth, fan_out_limit)
        await check_start(ctx, start, str(node))
        graph = await ctx.walk(
            start, Direction(direction.value), depth, fan_out, include_failed=include_failed, at=_as_of(as_of, known_at)
        )
        return Lineage.of(ctx.scope.prune(graph), fan_out)

    @resolver(f"Jobs, runs and datasets whose names contain `text` (case-insensitive); limit ≤ {MAX_PAGE}.")
    async def search(
        self, info: Ctx, text: str, kinds: list[SearchKind] | None = None, limit: int = 20
    ) -> list[SearchHit]:
        ctx = info.context
        limit = page_size(limit, "limit")
        wanted = kinds if kinds is not None else list(SearchKind)
        # Ask for more than `limit` when some hits may be hidden, so they do not starve the page.
        ask = limit if ctx.scope.unrestricted else min(MAX_PAGE, limit * 4)
        hits: list[SearchHit] = []
        for kind in dict.fromkeys(wanted):
            ids = [parse_node_id(i) for i in await ctx.call(ctx.store.search, text, [kind.value], ask)]
            for node in ids:
                if kind == SearchKind.JOB:
                    visible = ctx.scope.allows(node.key[0])
                elif kind == SearchKind.DATASET:
                    visible = ctx.scope.dataset_visible(node.key[0])
                else:
                    visible = ctx.scope.unrestricted or ctx.scope.run_visible(await ctx.run_detail(node.key[0]))
                if visible:
                    hits.append(
                        SearchHit(id=strawberry.ID(str(node)), kind=NodeKind(node.kind), label=_hit_label(node))
                    )
        return hits[:limit]
