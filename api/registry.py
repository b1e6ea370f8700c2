"""Registry queries (issue 14): runs side by side. Listed in `root.TOPIC_QUERIES`."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from provgraph.api.context import RequestContext
from provgraph.api.schema import resolver
from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph.compare import MAX_COMPARED, Comparison, compare
from provgraph.graph.ids import as_run_id
from provgraph.graph.views import RunView


@strawberry.type(
    description="One fact of the compared runs: a value per run (in the order asked), and whether they differ."
)
class ComparisonRow:
    section: str = strawberry.field(description="run, code, params, metrics, results, inputs, outputs or environment")
    key: str
    values: JSON = strawberry.field(description="A list: one value per run, null where a run has none")
    differs: bool


@strawberry.type(description="Runs side by side: params, metrics, results, input and output hashes, code, environment.")
class RunComparison:
    run_ids: list[str]
    rows: list[ComparisonRow]

    @resolver("Only the rows whose values differ.")
    def differences(self) -> list[ComparisonRow]:
        return [r for r in self.rows if r.differs]

    @staticmethod
    def of(c: Comparison) -> RunComparison:
        rows = [ComparisonRow(section=r.section, key=r.key, values=JSON(r.values), differs=r.differs) for r in c.rows]
        return RunComparison(run_ids=c.run_ids, rows=rows)


async def visible_runs(ctx: RequestContext, ids: list[strawberry.ID]) -> list[RunView]:
    """The runs, each one the caller may see; another project's run is 'no such run', as a missing one."""
    runs: list[RunView] = []
    for raw in ids:
        view = await ctx.run_detail(as_run_id(str(raw)))
        if view is None or not ctx.scope.run_visible(view):
            raise NotFound(f"no such run: {raw}")
        runs.append(view)
    return runs


@strawberry.type
class RegistryQuery:
    @resolver(f"Compare 2 to {MAX_COMPARED} runs you may see, side by side.")
    async def compare_runs(self, info: Info[RequestContext, None], ids: list[strawberry.ID]) -> RunComparison:
        if not 2 <= len(ids) <= MAX_COMPARED:
            raise ConfigError(f"compare 2 to {MAX_COMPARED} runs (got {len(ids)})")
        return RunComparison.of(compare(await visible_runs(info.context, ids)))
