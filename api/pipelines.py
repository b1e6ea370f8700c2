"""GraphQL for pipelines: `pipeline(runId)` gives a pipeline run's DAG with each step's state
(`Run.children` lists the step runs themselves)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from provgraph.api.scalars import Long
from provgraph.api.schema import Ctx, Run, _visible_run, resolver
from provgraph.graph.ids import as_run_id
from provgraph.pipelines.status import StepStatus, is_pipeline_run, steps_of


@strawberry.type(description="One step of a pipeline run: its state (COMPLETE, CACHED, FAIL, SKIPPED, …) and run.")
class PipelineStep:
    name: str
    state: str
    run_id: str | None
    cached_from: str | None
    attempts: Long
    reason: str | None
    duration_s: float | None
    upstream: list[str] = strawberry.field(description="Steps this one waited for (the DAG's edges).")
    outputs: JSON

    @staticmethod
    def of(s: StepStatus) -> PipelineStep:
        return PipelineStep(
            name=s.name,
            state=s.state,
            run_id=s.run_id,
            cached_from=s.cached_from,
            attempts=Long(s.attempts),
            reason=s.reason,
            duration_s=s.duration_s,
            upstream=s.upstream,
            outputs=JSON(s.outputs),
        )


@strawberry.type
class PipelineRun:
    run: Run
    steps: list[PipelineStep]


@strawberry.type
class PipelineQuery:
    @resolver("A pipeline run with its DAG and step states; null if not a visible pipeline run.")
    async def pipeline(self, info: Ctx, run_id: strawberry.ID) -> PipelineRun | None:
        ctx = info.context
        run = await _visible_run(ctx, as_run_id(str(run_id)))
        if run is None or not is_pipeline_run(run.view):
            return None
        children = [c for c in await ctx.call(ctx.store.children, run.run_id) if ctx.scope.run_visible(c)]
        visible = {c.run_id for c in children}
        steps = [s for s in steps_of(run.view, children) if s.run_id is None or s.run_id in visible]
        return PipelineRun(run=run, steps=[PipelineStep.of(s) for s in steps])
