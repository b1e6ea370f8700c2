"""Facets as answers (schema, SQL, data quality, errors, source location, job type) and column lineage.

Types here are attached to `Run`, `Job` and `DatasetVersion` in `schema.py`; the `columnLineage`
query that answers with `ColumnLineage` is in `column_lineage.py`. Facets of every owner a
request asks about are loaded with one store call per batch (`facets_of`). Visibility follows
`scope.py`: owners reach these resolvers only when visible; an assertion or a column whose dataset
the caller may not see is left out, and a column walk keeps only what stays reachable.
"""

from __future__ import annotations

import strawberry
from strawberry.dataloader import DataLoader

from provgraph.api.context import RequestContext
from provgraph.events.model import RunState
from provgraph.graph.facets import ColumnLineageGraph, Facets, column_namespace
from provgraph.graph.views import Direction, RunView

_LOADER = "facets"


@strawberry.type(description="One field of a dataset version's schema (nested fields are named `parent.child`).")
class SchemaField:
    name: str
    type: str | None
    description: str | None


@strawberry.type(description="Where a job's code lives (OpenLineage `sourceCodeLocation`).")
class SourceCodeLocation:
    type: str | None
    url: str | None
    repo_url: str | None
    path: str | None
    version: str | None
    tag: str | None
    branch: str | None


@strawberry.type(description="What kind of job this is (OpenLineage `jobType`).")
class JobType:
    processing_type: str | None
    integration: str | None
    job_type: str | None


@strawberry.type(description="Why a run failed (OpenLineage `errorMessage`; a LOST run's reason has no stack trace).")
class RunError:
    message: str | None
    programming_language: str | None
    stack_trace: str | None


@strawberry.type(description="One data-quality assertion a run reported about a dataset (`dataQualityAssertions`).")
class Assertion:
    dataset: strawberry.ID = strawberry.field(description="The dataset's id, dataset:<namespace>:<name>.")
    assertion: str
    column: str | None
    success: bool


@strawberry.type(description="One column of a dataset.")
class ColumnNode:
    id: strawberry.ID
    dataset: strawberry.ID = strawberry.field(description="The dataset's id, dataset:<namespace>:<name>.")
    field: str
    hop: int = strawberry.field(description="Column hops from the start column (0 = the start).")


@strawberry.type(description="How an output column is derived from an input column (OpenLineage transformation).")
class Transformation:
    type: str | None
    subtype: str | None
    description: str | None
    masking: bool | None


@strawberry.type(description="Always from the input column to the output column derived from it.")
class ColumnEdge:
    from_: strawberry.ID = strawberry.field(name="from")
    to: strawberry.ID
    transformations: list[Transformation]


@strawberry.type(description="A bounded column walk; `partial` says something reachable was cut, `partialReasons` why.")
class ColumnLineage:
    root: strawberry.ID
    depth: int
    nodes: list[ColumnNode]
    edges: list[ColumnEdge]
    partial: bool
    partial_reasons: list[str]

    @staticmethod
    def of(g: ColumnLineageGraph) -> ColumnLineage:
        return ColumnLineage(
            root=strawberry.ID(g.root),
            depth=g.depth,
            nodes=[
                ColumnNode(id=strawberry.ID(n.id), dataset=strawberry.ID(n.dataset), field=n.field, hop=n.hop)
                for n in g.nodes
            ],
            edges=[
                ColumnEdge(
                    from_=strawberry.ID(e.source),
                    to=strawberry.ID(e.target),
                    transformations=[Transformation(**t.model_dump()) for t in e.transformations],
                )
                for e in g.edges
            ],
            partial=g.partial,
            partial_reasons=list(g.partial_reasons),
        )


async def facets_of(ctx: RequestContext, owner: str) -> Facets:
    """The facets of one node id, loaded with every other owner this request asks about."""
    loader = ctx.extras.get(_LOADER)
    if loader is None:
        store = ctx.store

        async def load(owners: list[str]) -> list[Facets]:
            found = await ctx.call(store.facets, owners)
            return [found.get(o, Facets()) for o in owners]

        loader = ctx.extras[_LOADER] = DataLoader(load_fn=load)
    facets: Facets = await loader.load(owner)
    return facets


def schema_fields(f: Facets) -> list[SchemaField] | None:
    if f.schema_fields is None:
        return None
    return [SchemaField(name=s.name, type=s.type, description=s.description) for s in f.schema_fields]


def source_code_location(f: Facets) -> SourceCodeLocation | None:
    return SourceCodeLocation(**f.source_code_location.model_dump()) if f.source_code_location else None


def job_type(f: Facets) -> JobType | None:
    return JobType(**f.job_type.model_dump()) if f.job_type else None


def data_quality(ctx: RequestContext, f: Facets) -> list[Assertion]:
    return [
        Assertion(dataset=strawberry.ID(a.dataset), assertion=a.assertion, column=a.column, success=a.success)
        for a in f.data_quality
        if ctx.scope.dataset_visible(column_namespace(a.dataset))
    ]


def run_error(run: RunView, f: Facets) -> RunError | None:
    """The run's error with the `errorMessage` facet's details; a LOST run's reason (shown instead of
    anything stored) has none."""
    if run.error is None:
        return None
    if f.error is None or run.state == RunState.LOST:
        return RunError(message=run.error, programming_language=None, stack_trace=None)
    return RunError(
        message=run.error, programming_language=f.error.programming_language, stack_trace=f.error.stack_trace
    )


def prune(ctx: RequestContext, graph: ColumnLineageGraph) -> ColumnLineageGraph:
    """The part of a column walk the caller may see: hidden columns go, with whatever only they reached."""
    if ctx.scope.unrestricted:
        return graph
    visible = {n.id for n in graph.nodes if ctx.scope.dataset_visible(column_namespace(n.dataset))}
    edges = [e for e in graph.edges if e.source in visible and e.target in visible]
    upstream = graph.direction == Direction.UPSTREAM.value
    nxt: dict[str, list[str]] = {}
    for e in edges:
        a, b = (e.target, e.source) if upstream else (e.source, e.target)
        nxt.setdefault(a, []).append(b)
    hops = {graph.root: 0}
    frontier = [graph.root]
    level = 0
    while frontier:
        level += 1
        frontier = list(dict.fromkeys(m for n in frontier for m in nxt.get(n, []) if m not in hops))
        hops.update(dict.fromkeys(frontier, level))
    hidden = [n.id for n in graph.nodes if n.id not in hops]
    reasons = [r for r in graph.partial_reasons if not any(h in r for h in hidden)]
    return graph.model_copy(
        update={
            "nodes": sorted(
                (n.model_copy(update={"hop": hops[n.id]}) for n in graph.nodes if n.id in hops),
                key=lambda n: (n.hop, n.id),
            ),
            "edges": [e for e in edges if e.source in hops and e.target in hops],
            "partial": bool(reasons),
            "partial_reasons": reasons,
        }
    )
