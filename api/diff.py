"""GraphQL `diff(a, b)`: why two artifacts (or two runs) differ (`graph/causal_diff.py`), within
the token's scope. Listed in `root.TOPIC_QUERIES`."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from provgraph._naming import is_store_uri, parse_store_uri
from provgraph.api.context import RequestContext
from provgraph.api.guards import LINEAGE_BOUNDS
from provgraph.api.schema import check_start, resolver
from provgraph.graph.causal_diff import CausalDiff, Cause, causal_diff
from provgraph.graph.contract import DEFAULT_DEPTH
from provgraph.graph.ids import NodeId, parse_node_id


@strawberry.type(description="One difference between the two sides, at one job of the aligned upstream graphs.")
class DiffCause:
    kind: str = strawberry.field(description="code, param, input, environment, structure or unexplained")
    job: str = strawberry.field(description="The job's name ('' for an artifact no run produced)")
    namespace: str
    key: str = strawberry.field(description="The param, input binding or environment fact")
    a: JSON | None = strawberry.field(description="The value on side a (a dataset version id for an input)")
    b: JSON | None
    run_a: str | None
    run_b: str | None
    text: str = strawberry.field(description="The cause in a few words, digests shortened")

    @staticmethod
    def of(c: Cause) -> DiffCause:
        return DiffCause(
            kind=c.kind,
            job=c.job,
            namespace=c.namespace,
            key=c.key,
            a=JSON(c.a),
            b=JSON(c.b),
            run_a=c.run_a,
            run_b=c.run_b,
            text=c.text(),
        )


@strawberry.type(description="Why b differs from a: the earliest divergences upstream.")
class CausalDiffResult:
    a: str
    b: str
    same_content: bool
    summary: str = strawberry.field(description='"B differs from A because …", or "… same content"')
    causes: list[DiffCause]
    no_effect: list[DiffCause] = strawberry.field(
        description="Differences of upstream runs whose outputs hashed the same on both sides: not causes"
    )
    partial: bool
    partial_reasons: list[str]

    @staticmethod
    def of(d: CausalDiff) -> CausalDiffResult:
        return CausalDiffResult(
            a=d.a,
            b=d.b,
            same_content=d.same_content,
            summary=d.summary(),
            causes=[DiffCause.of(c) for c in d.causes],
            no_effect=[DiffCause.of(c) for c in d.no_effect],
            partial=d.partial,
            partial_reasons=d.partial_reasons,
        )


def diff_node(text: str) -> NodeId:
    """A node id as `lineage` takes it, or a `store://project/key[@version]` URI."""
    if is_store_uri(text):
        ref = parse_store_uri(text)
        return NodeId.dataset(ref.namespace, ref.key, ref.version)
    return parse_node_id(text)


@strawberry.type
class DiffQuery:
    @resolver(
        "Why b differs from a (two dataset versions, store:// URIs or runs): the earliest changed code,"
        " params, input content or environment upstream, aligned by job. Only what you may see is walked."
    )
    async def diff(
        self, info: Info[RequestContext, None], a: strawberry.ID, b: strawberry.ID, depth: int = DEFAULT_DEPTH
    ) -> CausalDiffResult:
        ctx = info.context
        nodes = [diff_node(str(a)), diff_node(str(b))]
        for node, text in zip(nodes, (a, b), strict=True):
            await check_start(ctx, node, str(text))
        depth, fan_out = LINEAGE_BOUNDS.clamp(depth, 100)
        store, scope = ctx.store, ctx.scope
        result = await ctx.call(
            causal_diff, store, *nodes, depth=depth, fan_out=fan_out, prune=scope.prune, visible=scope.run_visible
        )
        return CausalDiffResult.of(result)
