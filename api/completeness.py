"""`incompleteRuns`: runs whose events did not all reach provgraph (see graph/completeness.py)."""

from __future__ import annotations

import strawberry

from provgraph.api.guards import page_size
from provgraph.api.schema import Ctx, Run, resolver
from provgraph.graph.views import RunView


@strawberry.type
class CompletenessQuery:
    @resolver(
        "Runs missing events (a gap in their sequence numbers, no START, no end long after their last event,"
        " fewer events than their producer declared), newest first; `first` is capped at 500."
    )
    async def incomplete_runs(self, info: Ctx, project: str | None = None, first: int | None = 50) -> list[Run]:
        ctx = info.context
        size = page_size(first)
        projects = ctx.scope.readable(project)
        found: list[RunView] = []
        for p in projects:
            found += await ctx.call(ctx.store.incomplete_runs, p, size)
        found.sort(key=lambda r: (r.started_at.isoformat() if r.started_at else "", r.run_id), reverse=True)
        return [Run.of(r, detailed=True) for r in found[:size]]
