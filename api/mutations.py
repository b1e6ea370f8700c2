"""The Mutation root: every write the API offers, each scoped to the token's projects.

GraphQL forbids an object type without fields, so the root is built from `MUTATIONS`. To add a
mutation: define it here with `@strawberry.mutation`, check `ctx.scope` (another project's run is
"not found"), append it to `MUTATIONS`, give it a cost in `guards.FIELD_COST` and a test in
tests/test_api.py; the fuzz test (tests/test_api_fuzz.py) picks it up from the schema by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import strawberry
from strawberry.scalars import JSON
from strawberry.tools import create_type
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from provgraph.api.context import RequestContext
from provgraph.api.delete import delete_object
from provgraph.api.tags import tag_artifact
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.model import RunState
from provgraph.graph.ids import as_run_id

if TYPE_CHECKING:
    from provgraph.events.settings import Settings
    from provgraph.events.transport.base import Transport
    from provgraph.graph.contract import LineageStore


@strawberry.type(
    description="A reproduction just requested: the new run's id. It runs in its own process (local) or"
    " pod (kubernetes), never in the API server; its state and verdict appear on `run(id)`."
)
class ReproduceResult:
    run_id: strawberry.ID
    original_run_id: strawberry.ID
    state: str = strawberry.field(description="REQUESTED: the run has been recorded and is starting.")
    verdict: str | None = strawberry.field(
        description="Always null here; `run(id).reproduces.verdict` says REPRODUCED, DIVERGED or FAILED once"
        " the run has ended (PENDING until then)."
    )
    differences: JSON = strawberry.field(description="Always empty here; see `run(id).reproduces.differences`.")


async def reproduce(
    info: Info[RequestContext, None], run_id: strawberry.ID, runtime: str | None = None
) -> ReproduceResult:
    ctx = info.context
    original = as_run_id(str(run_id))
    run = await ctx.run_detail(original)
    if run is None or not ctx.scope.run_visible(run):
        raise NotFound(f"no such run: {run_id}")
    if ctx.settings is None or ctx.transport is None:
        raise ConfigError("this server was started without settings; it cannot start runs")
    on_host = ctx.scope.unrestricted or ctx.settings.api_reproduce_on_host
    new_run_id = await ctx.call(
        _start, ctx.settings, ctx.store, ctx.transport, original, runtime, on_host, ctx.scope.allows
    )
    return ReproduceResult(
        run_id=strawberry.ID(new_run_id),
        original_run_id=strawberry.ID(original),
        state=RunState.REQUESTED,
        verdict=None,
        differences=JSON([]),
    )


def _start(
    settings: Settings,
    store: LineageStore,
    transport: Transport,
    run_id: str,
    runtime: str | None,
    on_host: bool,
    may_use: Callable[[str], bool],
) -> str:
    """The server's own transport and store are lent to the SDK: no second connection to its files."""
    import provgraph

    backend = provgraph.Backend(settings, transport=transport, graph=store)  # not closed: it owns neither
    return provgraph.request_reproduction(run_id, backend, runtime=runtime, on_host=on_host, may_use=may_use)


MUTATIONS: list[StrawberryField] = [
    strawberry.mutation(
        reproduce,
        description="Re-run a run from the graph alone (its code snapshot, params and inputs pinned by content"
        " hash) in a fresh process or pod, and compare its outputs with the original's. Returns at once with"
        " the new run (REQUESTED); the verdict appears on `run(id).reproduces` when it ends.",
    ),
    strawberry.mutation(
        tag_artifact,
        name="tag",
        description="Point `alias` of an artifact of one of your projects (`store://p/key`, optionally pinned by"
        " `version` or `:alias`; else the latest) at that version. Recorded as a tag run (who, when).",
    ),
    strawberry.mutation(
        delete_object,
        name="delete",
        description="Delete a run (`kind: run`, its id), an artifact (`artifact`, `store://p/key`, or one version"
        " with `@sha256:…` or `:alias`) or a project (`project`) of one of your projects: recorded as a tombstone"
        " run in the object's project; hidden from queries from then on (bytes go with `provgraph gc`).",
    ),
]


def mutation_root() -> type | None:
    """The `Mutation` type built from `MUTATIONS`, or None while there are none."""
    if not MUTATIONS:
        return None
    return create_type("Mutation", MUTATIONS, description="Writes: each one is scoped to the token's projects.")
