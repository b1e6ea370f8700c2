"""`columnLineage`: column-level lineage over `columnLineage` facets (types in `facets.py`).

Starts only where the caller may look (another project's artifact is "no such column"), runs in
the server's walk slots like `lineage` when the operation is costly, and answers the part of the
walk the caller's scope keeps (`facets.prune`).
"""

from __future__ import annotations

import strawberry

from provgraph.api.facets import ColumnLineage, prune
from provgraph.api.guards import LINEAGE_BOUNDS
from provgraph.api.schema import Ctx, LineageDirection, resolver
from provgraph.events.errors import NotFound
from provgraph.graph.columns import DEFAULT_COLUMN_DEPTH, column_root
from provgraph.graph.ids import as_recorded, parse_node_id
from provgraph.graph.views import Direction


@strawberry.type
class ColumnLineageQuery:
    @resolver(
        "Walk column-level lineage from `field` of a dataset (dataset:<ns>:<name>, a version's id names"
        f" its dataset) over `columnLineage` facets; depth counts column hops (capped at {LINEAGE_BOUNDS.max_depth})."
    )
    async def column_lineage(
        self,
        info: Ctx,
        dataset: strawberry.ID,
        field: str,
        direction: LineageDirection = LineageDirection.UPSTREAM,
        depth: int = DEFAULT_COLUMN_DEPTH,
        fan_out_limit: int = 100,
    ) -> ColumnLineage:
        ctx = info.context
        node = await ctx.call(as_recorded, parse_node_id(str(dataset)), ctx.store, versioned=False)
        root = column_root(node, field)
        if not ctx.scope.dataset_visible(node.key[0]):
            raise NotFound(f"no such column: {root[1]!r} of {root[0]}")
        walk = Direction(direction.value)
        depth, fan_out = LINEAGE_BOUNDS.clamp(depth, fan_out_limit)
        slots = ctx.lanes.store_slots if ctx.costly else None
        graph = await ctx.budget.call(ctx.store.column_lineage, node, field, walk, depth, fan_out, slots=slots)
        return ColumnLineage.of(prune(ctx, graph))
