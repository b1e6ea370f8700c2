"""`provgraph tag URI ALIAS` and `provgraph artifacts list|show`: the artifact and model registry."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from provgraph._backend import Backend
from provgraph._naming import is_store_uri, parse_store_uri
from provgraph._tags import tag
from provgraph.cli._app import INCLUDE_DELETED, app, console, settings, short
from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph.artifacts import KINDS, ArtifactDetail, ArtifactSummary, artifacts, detail
from provgraph.graph.factory import open_store
from provgraph.graph.tags import TagMove

artifacts_app = typer.Typer(
    help="Logged artifacts and models: versions, aliases, producers, consumers.", no_args_is_help=True
)
app.add_typer(artifacts_app, name="artifacts")


@app.command("tag")
def tag_cmd(
    uri: Annotated[str, typer.Argument(help="store://project/key@sha256:… (or :alias, or no pin: the latest)")],
    alias: Annotated[str, typer.Argument(help="The alias to point there, e.g. production")],
    as_json: Annotated[bool, typer.Option("--json", help="The recorded move as JSON")] = False,
) -> None:
    """Move an alias of an artifact to a version; recorded as an event (who, when). Read it back as store://p/key:ALIAS."""
    backend = Backend(settings())
    try:
        move = tag(uri, alias, backend)
    finally:
        backend.close()
    if as_json:
        print(json.dumps(_move_json(move)))
        return
    console.print(
        escape(f"{move.namespace}/{move.name}:{move.alias} -> {move.version} (by {move.by}, run {move.run_id})")
    )


@artifacts_app.command("list")
def list_cmd(
    project: Annotated[str, typer.Option("--project", "-p", help="The project")] = "default",
    kind: Annotated[str | None, typer.Option("--kind", help=" | ".join(KINDS))] = None,
    alias: Annotated[str | None, typer.Option("--tag", help="Only artifacts that have this alias")] = None,
    first: Annotated[int, typer.Option("--first", "-n", help="At most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list")] = False,
    include_deleted: Annotated[bool, INCLUDE_DELETED] = False,
) -> None:
    """A project's artifacts and models, with their latest version and aliases."""
    handle = open_store(settings())
    try:
        found = artifacts(handle.fresh(include_deleted=include_deleted), project, kind, alias, first)
    finally:
        handle.close()
    if as_json:
        print(json.dumps([_summary_json(s) for s in found]))
        return
    if not found:
        console.print(f"no artifacts in project {escape(project)}")
        return
    table = Table("artifact", "kind", "versions", "latest", "aliases")
    for s in found:
        aliases = ", ".join(f"{a}={short(v)}" for a, v in sorted(s.aliases.items()))
        latest = short(s.latest.version) if s.latest else "-"
        table.add_row(escape(s.uri), s.kind or "-", str(s.version_count), latest, escape(aliases) or "-")
    console.print(table)


@artifacts_app.command("show")
def show_cmd(
    uri: Annotated[str, typer.Argument(help="store://project/key")],
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="Aliases as they were at this time (ISO 8601)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The artifact as JSON")] = False,
    include_deleted: Annotated[bool, INCLUDE_DELETED] = False,
) -> None:
    """Versions (oldest first) with producing run, consumers and aliases, then the alias history."""
    if not is_store_uri(uri):
        raise ConfigError(f"not an artifact URI: {uri!r} (expected store://<project>/<key>)")
    ref = parse_store_uri(uri)
    handle = open_store(settings())
    try:
        found = detail(handle.fresh(include_deleted=include_deleted), ref.namespace, ref.key, as_of)
    finally:
        handle.close()
    if found is None:
        raise NotFound(f"no artifact {ref.namespace}/{ref.key} (see `provgraph artifacts list`)")
    if as_json:
        print(json.dumps(_detail_json(found)))
        return
    s = found.summary
    console.print(f"[bold]{escape(s.uri)}[/] ({s.kind or '-'}, {s.version_count} versions)")
    table = Table("version", "created", "size", "produced by", "consumers", "aliases")
    for v in found.versions:
        table.add_row(
            v.version.version,
            v.version.created_at.isoformat() if v.version.created_at else "-",
            "-" if v.version.size is None else str(v.version.size),
            v.produced_by or "-",
            str(len(v.consumers)),
            escape(", ".join(v.aliases)) or "-",
        )
    console.print(table)
    for v in found.versions:
        described = {"format": v.version.format, "framework": v.version.framework, **(v.version.meta or {})}
        if any(x is not None for x in described.values()):
            console.print(f"[bold]metadata of {v.version.version}[/]", highlight=False)
            for line in meta_lines({k: x for k, x in described.items() if x is not None}):
                console.print(escape(line), highlight=False, soft_wrap=True)
    for m in found.tag_history:
        console.print(f"{m.at.isoformat()}  {escape(m.alias)} -> {m.version}  by {escape(m.by)}", highlight=False)


META_WIDTH = 300
"""A metadata value longer than this (as JSON) is cut in the readable output; `--json` has it whole."""


def meta_lines(meta: dict[str, Any]) -> list[str]:
    """Readable metadata: one `key: value` line each, a table's schema as `column: type` and its
    stats per column, long values cut (with their full length)."""
    lines = []
    for key, value in sorted(meta.items()):
        if key in ("schema", "stats") and isinstance(value, dict) and value:
            lines.append(f"  {key}:")
            lines += [f"    {col}: {_cut(v)}" for col, v in sorted(value.items())]
        else:
            lines.append(f"  {key}: {_cut(value)}")
    return lines


def _cut(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= META_WIDTH else f"{text[:META_WIDTH]}… ({len(text)} chars; --json has all)"


def _move_json(m: TagMove) -> dict[str, Any]:
    return {
        "dataset": f"{m.namespace}/{m.name}",
        "alias": m.alias,
        "version": m.version,
        "at": m.at.isoformat(),
        "by": m.by,
        "run_id": m.run_id,
    }


def _summary_json(s: ArtifactSummary) -> dict[str, Any]:
    return {
        "uri": s.uri,
        "kind": s.kind,
        "versions": s.version_count,
        "latest": s.latest.model_dump(mode="json") if s.latest else None,
        "aliases": s.aliases,
    }


def _detail_json(d: ArtifactDetail) -> dict[str, Any]:
    versions = [
        {**v.version.model_dump(mode="json"), "produced_by": v.produced_by, "consumers": v.consumers}
        | {"aliases": v.aliases}
        for v in d.versions
    ]
    return {**_summary_json(d.summary), "version_list": versions, "tag_history": [_move_json(m) for m in d.tag_history]}
