"""Deletion in GraphQL (issue 14): the `delete` mutation, listed in `mutations.MUTATIONS`.

The project a tombstone goes to is always the deleted object's own (the run's owner, the artifact's
`store://` namespace, the project itself), read from the graph, never from an argument; a token may
delete only in its projects, and another project's object is "not found", like a missing one.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from provgraph._backend import Backend
from provgraph._delete import KINDS, delete
from provgraph._naming import is_store_uri, parse_store_uri
from provgraph.api.context import RequestContext
from provgraph.events.admission import store_project
from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph.tombstones import Tombstone, deleted


@strawberry.type(description="A deletion: `kind` `target` hidden from queries from `at`, by `by`.")
class TombstoneRecord:
    kind: str
    target: str
    project: str
    at: datetime
    by: str = strawberry.field(description="Who deleted it: `token:<id>` through the API, user@host from the CLI/SDK")
    reason: str
    run_id: strawberry.ID = strawberry.field(description="The deletion run that recorded it")

    @staticmethod
    def of(t: Tombstone) -> TombstoneRecord:
        return TombstoneRecord(
            kind=t.kind,
            target=t.target,
            project=t.project,
            at=t.at,
            by=t.by,
            reason=t.reason,
            run_id=strawberry.ID(t.run_id),
        )


@strawberry.type(description="The deletion of a run or dataset version: when, by whom, the deletion run.")
class DeletedMark:
    at: datetime
    by: str
    reason: str
    run_id: strawberry.ID

    @staticmethod
    def of(t: Tombstone | None) -> DeletedMark | None:
        return DeletedMark(at=t.at, by=t.by, reason=t.reason, run_id=strawberry.ID(t.run_id)) if t else None


async def run_deleted(
    ctx: RequestContext, run_id: str, project: str, started: datetime | None = None
) -> DeletedMark | None:
    return DeletedMark.of((await ctx.call(deleted, ctx.graph.store, [project])).run(run_id, project, started))


async def version_deleted(
    ctx: RequestContext, namespace: str, name: str, version: str, created: datetime | None = None
) -> DeletedMark | None:
    project = store_project(namespace)
    if project is None:  # only `store://` artifacts are ever deleted
        return None
    gone = await ctx.call(deleted, ctx.graph.store, [project])
    return DeletedMark.of(gone.version(namespace, name, version, created))


def _check_visible(ctx: RequestContext, kind: str, target: str) -> None:
    """`NotFound` unless the object is in one of the caller's projects (blocking: asks the graph)."""
    if kind == "run":
        run = ctx.store.run(target)
        if run is None or not ctx.scope.allows(run.namespace):
            raise NotFound(f"no such run: {target}")
    elif kind == "artifact":
        if not is_store_uri(target):
            raise ConfigError(f"not an artifact URI: {target!r} (expected store://<project>/<key>)")
        ref = parse_store_uri(target)
        if not ctx.scope.allows(ref.project):
            raise NotFound(f"no such artifact: {ref.namespace}/{ref.key}")
    elif kind == "project":
        if not ctx.scope.allows(target):
            raise NotFound(f"no such project: {target}")
    else:
        raise ConfigError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")


async def delete_object(info: Info[RequestContext, None], kind: str, target: str, reason: str = "") -> TombstoneRecord:
    ctx = info.context
    await ctx.call(_check_visible, ctx, kind, target)
    if ctx.settings is None or ctx.transport is None:
        raise ConfigError("this server was started without settings; it cannot record deletions")
    by = f"token:{ctx.scope.token_id}" if ctx.scope.token_id else "unsecured server"
    backend = Backend(ctx.settings, transport=ctx.transport, graph=ctx.store)  # not closed: it owns neither
    return TombstoneRecord.of(await ctx.call(delete, kind, target, backend, by=by, reason=reason))
