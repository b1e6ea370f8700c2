"""The Mutation root: every write the API offers, each scoped to the token's projects.

GraphQL forbids an object type without fields, so the root is built from `MUTATIONS`. To add a
mutation: define it here with `@strawberry.mutation`, check `ctx.scope` (another project's run is
"not found"), append it to `MUTATIONS`, give it a cost in `guards.FIELD_COST` and a test in
tests/test_api.py; the fuzz test (tests/test_api_fuzz.py) picks it up from the schema by itself.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import strawberry
from strawberry.scalars import JSON
from strawberry.tools import create_type
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from provgraph.api.context import RequestContext
from provgraph.events.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from provgraph._execute import RunResult
    from provgraph.events.settings import Settings


@strawberry.type(description="A reproduction: the new run, and its verdict once the run has completed.")
class ReproduceResult:
    run_id: strawberry.ID
    original_run_id: strawberry.ID
    state: str = strawberry.field(description="COMPLETE or FAIL on the local runtime; REQUESTED on kubernetes.")
    verdict: str | None = strawberry.field(
        description="REPRODUCED or DIVERGED; null until the run completes (then `run(id).reproduces` has it)."
    )
    differences: JSON = strawberry.field(description="Outputs, results and metrics that differ from the original.")


async def reproduce(
    info: Info[RequestContext, None], run_id: strawberry.ID, runtime: str | None = None
) -> ReproduceResult:
    ctx = info.context
    original = str(run_id).removeprefix("run:")
    run = await ctx.run_detail(original)
    if run is None or not ctx.scope.run_visible(run):
        raise NotFound(f"no such run: {run_id}")
    if ctx.settings is None:
        raise ConfigError("this server was started without settings; it cannot start runs")
    # Not within the query budget: a local reproduction runs the handler, which takes what it takes.
    result = await asyncio.to_thread(_reproduce, ctx.settings, original, runtime)
    verdict = result.verdict
    return ReproduceResult(
        run_id=strawberry.ID(result.run_id),
        original_run_id=strawberry.ID(original),
        state=result.state,
        verdict=verdict.verdict if verdict else None,
        differences=JSON(verdict.differences if verdict else []),
    )


def _reproduce(settings: Settings, run_id: str, runtime: str | None) -> RunResult:
    from provgraph._backend import Backend
    from provgraph._reproduce import reproduce as reproduce_run

    backend = Backend(settings)
    try:
        return reproduce_run(run_id, runtime=runtime, backend=backend)
    finally:
        backend.close()


MUTATIONS: list[StrawberryField] = [
    strawberry.mutation(
        reproduce,
        description="Re-run a run from the graph alone (its code snapshot, params and inputs pinned by content"
        " hash) and compare the outputs with the original's.",
    )
]


def mutation_root() -> type | None:
    """The `Mutation` type built from `MUTATIONS`, or None while there are none."""
    if not MUTATIONS:
        return None
    return create_type("Mutation", MUTATIONS, description="Writes: each one is scoped to the token's projects.")
