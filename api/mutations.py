"""The Mutation root: every write the API offers. Empty until `reproduce(runId)` (issue 6) lands.

GraphQL forbids an object type without fields, so while `MUTATIONS` is empty the schema has no
mutation root at all. To add a mutation:

    @strawberry.mutation(description="Re-run a run from the graph alone …")
    async def reproduce(info: Info[RequestContext, None], run_id: strawberry.ID) -> Reproduction:
        ctx = info.context
        run = await ctx.run_detail(str(run_id))
        if not ctx.scope.run_visible(run):          # another project's run is "not found"
            raise NotFound(f"no such run: {run_id}")
        ...                                         # blocking work via `await ctx.call(fn, ...)`

    MUTATIONS.append(reproduce)

then give it a cost in `guards.FIELD_COST[("Mutation", "reproduce")]` and a test in
tests/test_api.py; the fuzz test (tests/test_api_fuzz.py) picks it up from the schema by itself.
"""

from __future__ import annotations

from strawberry.tools import create_type
from strawberry.types.field import StrawberryField

MUTATIONS: list[StrawberryField] = []


def mutation_root() -> type | None:
    """The `Mutation` type built from `MUTATIONS`, or None while there are none."""
    if not MUTATIONS:
        return None
    return create_type("Mutation", MUTATIONS, description="Writes: each one is scoped to the token's projects.")
