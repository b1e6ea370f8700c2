"""The artifact registry in GraphQL (issue 14): artifacts with versions, aliases, producers and
consumers, alias history as of any time, and the `tag` mutation. Listed in `root.TOPIC_QUERIES`
and `mutations.MUTATIONS`. Another project's artifact is "not found", like a missing one."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from provgraph._backend import Backend
from provgraph._naming import StoreRef, is_store_uri, parse_store_uri
from provgraph._tags import check_alias, tag
from provgraph.api.context import RequestContext
from provgraph.api.schema import DatasetVersion, resolver
from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph import artifacts as registry
from provgraph.graph.tags import TagMove

MAX_FIRST = 200


@strawberry.type(description="An alias move: `alias` of `dataset` pointed at `version` from `at`, by `by`.")
class AliasMove:
    dataset: str
    alias: str
    version: str
    at: datetime
    by: str = strawberry.field(description="Who moved it: `token:<id>` through the API, user@host from the CLI/SDK")
    run_id: strawberry.ID = strawberry.field(description="The tag run that recorded the move")

    @staticmethod
    def of(m: TagMove) -> AliasMove:
        return AliasMove(
            dataset=f"{m.namespace}/{m.name}",
            alias=m.alias,
            version=m.version,
            at=m.at,
            by=m.by,
            run_id=strawberry.ID(m.run_id),
        )


@strawberry.type(description="An alias and the version it points at.")
class AliasPointer:
    alias: str
    version: str


@strawberry.type(description="One version of an artifact: who wrote it, who read it, which aliases point at it.")
class ArtifactVersion:
    version: DatasetVersion
    produced_by: strawberry.ID | None
    consumers: list[strawberry.ID]
    aliases: list[str]
    format: str | None
    framework: str | None
    meta: JSON | None = strawberry.field(
        description="Metadata as logged: schema, preview, stats (datasets); metrics, parameters, framework (models). "
        "Over 64 KiB, the smallest values are kept and `$truncated` says how much was dropped."
    )


@strawberry.type(description="A logged artifact or model (`store://<project>/<key>`).")
class Artifact:
    uri: str
    namespace: str
    name: str
    kind: str | None
    version_count: int
    latest: DatasetVersion | None
    aliases: list[AliasPointer]
    versions: list[ArtifactVersion] = strawberry.field(description="Oldest first; only from `artifact(uri)`")
    tag_history: list[AliasMove] = strawberry.field(
        description="Every alias move, oldest first; only from `artifact(uri)`"
    )

    @staticmethod
    def of(s: registry.ArtifactSummary, d: registry.ArtifactDetail | None = None) -> Artifact:
        versions = [
            ArtifactVersion(
                version=DatasetVersion.of(v.version),
                produced_by=strawberry.ID(v.produced_by) if v.produced_by else None,
                consumers=[strawberry.ID(c) for c in v.consumers],
                aliases=v.aliases,
                format=v.version.format,
                framework=v.version.framework,
                meta=JSON(v.version.meta) if v.version.meta is not None else None,
            )
            for v in (d.versions if d else [])
        ]
        return Artifact(
            uri=s.uri,
            namespace=s.namespace,
            name=s.name,
            kind=s.kind,
            version_count=s.version_count,
            latest=DatasetVersion.of(s.latest) if s.latest else None,
            aliases=[AliasPointer(alias=a, version=v) for a, v in sorted(s.aliases.items())],
            versions=versions,
            tag_history=[AliasMove.of(m) for m in (d.tag_history if d else [])],
        )


def _visible_ref(ctx: RequestContext, uri: str) -> StoreRef:
    """The artifact a URI names, if the caller may see its project; else 'no such artifact'."""
    if not is_store_uri(uri):
        raise ConfigError(f"not an artifact URI: {uri!r} (expected store://<project>/<key>)")
    ref = parse_store_uri(uri)
    if not ctx.scope.allows(ref.project):
        raise NotFound(f"no such artifact: {ref.namespace}/{ref.key}")
    return ref


@strawberry.type
class TagsQuery:
    @resolver(f"A project's artifacts and models in name order (of one kind; with an alias), at most {MAX_FIRST}.")
    async def artifacts(
        self,
        info: Info[RequestContext, None],
        project: str,
        kind: str | None = None,
        tag: str | None = None,
        first: int = 50,
    ) -> list[Artifact]:
        ctx = info.context
        if not ctx.scope.allows(project):
            return []
        found = await ctx.call(registry.artifacts, ctx.store, project, kind, tag, min(first, MAX_FIRST))
        return [Artifact.of(s) for s in found]

    @resolver("One artifact: versions with producer, consumers and aliases, and its alias history, as of `asOf`.")
    async def artifact(
        self, info: Info[RequestContext, None], uri: str, as_of: datetime | None = None
    ) -> Artifact | None:
        ctx = info.context
        ref = _visible_ref(ctx, uri)
        found = await ctx.call(registry.detail, ctx.store, ref.namespace, ref.key, as_of)
        return Artifact.of(found.summary, found) if found else None


async def tag_artifact(
    info: Info[RequestContext, None], dataset: str, alias: str, version: str | None = None
) -> AliasMove:
    ctx = info.context
    ref = _visible_ref(ctx, dataset)
    check_alias(alias)
    if version is not None:
        ref = StoreRef(ref.project, ref.key, version)
    if ctx.settings is None or ctx.transport is None:
        raise ConfigError("this server was started without settings; it cannot record tags")
    by = f"token:{ctx.scope.token_id}" if ctx.scope.token_id else "unsecured server"
    backend = Backend(ctx.settings, transport=ctx.transport, graph=ctx.store)  # not closed: it owns neither
    uri = dataset if version is None else str(ref)  # as given: MLRun's `@<uid>` reads back only in its own form
    return AliasMove.of(await ctx.call(tag, uri, alias, backend, by=by))
