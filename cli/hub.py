"""`provgraph hub`: function hubs in MLRun's format (sources, list, show, publish); see docs/HUB.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from provgraph._hub import (
    DEFAULT_CHANNEL,
    HubSource,
    add_source,
    get_source,
    list_sources,
    parse_hub_uri,
    publish,
    remove_source,
    resolve,
    signature,
)
from provgraph.cli._app import app, console, settings
from provgraph.events.errors import ConfigError

hub_app = typer.Typer(help="Function hubs in MLRun's format: hub://\\[source/]name\\[:version].", no_args_is_help=True)
app.add_typer(hub_app, name="hub")
sources_app = typer.Typer(help="Where hub:// looks, in order.", no_args_is_help=True)
hub_app.add_typer(sources_app, name="sources")


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="Source name (hub://NAME/item)")],
    url: Annotated[str, typer.Argument(help="Folder or fsspec URL (s3://, https://, github://…)")],
    channel: Annotated[str, typer.Option(help="Channel of the published layout")] = DEFAULT_CHANNEL,
) -> None:
    """Add a hub source; `hub://item` searches sources in the order they were added."""
    source = add_source(settings(), name, url, channel)
    console.print(f"hub source [bold]{source.name}[/] -> {escape(source.url)} (channel {source.channel})")


@sources_app.command("list")
def sources_list() -> None:
    """The configured hub sources, in search order."""
    sources = list_sources(settings())
    if not sources:
        console.print("no hub sources: provgraph hub sources add NAME URL")
    for s in sources:
        console.print(f"{s.name}  {escape(s.url)}  (channel {s.channel})")


@sources_app.command("remove")
def sources_remove(name: Annotated[str, typer.Argument(help="Source name")]) -> None:
    """Forget a hub source (runs that used it keep their record and their code snapshot)."""
    remove_source(settings(), name)
    console.print(f"removed hub source {name}")


def _sources(source: str | None) -> list[HubSource]:
    cfg = settings()
    return [get_source(cfg, source)] if source else list_sources(cfg)


@hub_app.command("list")
def hub_list(
    category: Annotated[str | None, typer.Option(help="Only items of this category")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per item")] = False,
) -> None:
    """The items of every source (latest versions)."""
    table = Table("source", "name", "version", "kind", "categories", "description")
    count = 0
    for s in _sources(source):
        for name, versions in sorted(s.catalog().items()):
            item = versions.get("latest") or next(iter(versions.values()))
            listed = item.get("categories")
            categories = [str(c) for c in listed] if isinstance(listed, list) else []
            if category and category not in categories:
                continue
            count += 1
            spec = item.get("spec") or {}
            row = {
                "source": s.name,
                "name": str(item.get("name") or name),
                "version": str(item.get("version", "")),
                "versions": sorted(v for v in versions if v != "latest"),
                "kind": str(spec.get("kind", "")),
                "categories": categories,
                "description": str(item.get("description") or ""),
            }
            if as_json:
                print(json.dumps(row))
            else:
                cells = [str(row[k]) for k in ("source", "name", "version", "kind")]
                table.add_row(*map(escape, [*cells, ", ".join(categories), str(row["description"])]))
    if not as_json:
        console.print(table if count else "no hub items match")


@hub_app.command("show")
def hub_show(
    name: Annotated[str, typer.Argument(help="\\[source/]name\\[:version] or hub://…")],
) -> None:
    """An item: description, requirements, and its handler's parameters (read, never imported)."""
    uri = name if name.startswith("hub://") else f"hub://{name}"
    resolved = resolve(uri, settings(), runnable=False)
    item = resolved.item
    summary, params = signature(resolved.code, item.handler)
    where = f"{resolved.source.name}: {item.folder}"
    console.print(f"[bold]{escape(item.name)}[/] {escape(item.version)}  ({escape(where)})")
    if item.description:
        console.print(f"  {escape(item.description)}")
    handler = f"{item.filename}:{item.handler}"
    console.print(f"  handler       {escape(handler)}  kind {escape(item.kind or 'job')}")
    console.print(f"  categories    {escape(', '.join(item.categories)) or '-'}")
    console.print(f"  requirements  {escape(', '.join(item.requirements)) or '-'}")
    console.print(f"  image         {escape(item.image or '-')}")
    console.print(f"  code          {resolved.code_hash}")
    if summary:
        console.print(f"  doc           {escape(summary)}")
    console.print("  params")
    for p in params:
        typed = f": {p.annotation}" if p.annotation else ""
        default = f" = {p.default}" if p.default is not None else ""
        console.print(f"    {escape(p.name + typed + default)}" + (f"  - {escape(p.doc)}" if p.doc else ""))


@hub_app.command("publish")
def hub_publish(
    handler: Annotated[str, typer.Argument(help="path/to/file.py:function")],
    name: Annotated[str, typer.Option(help="Item name")],
    version: Annotated[str, typer.Option(help="Item version (immutable once published)")],
    source: Annotated[str | None, typer.Option(help="Hub source to publish into")] = None,
    to: Annotated[str | None, typer.Option(help="Or a folder / fsspec URL")] = None,
    description: Annotated[str, typer.Option(help="One-line description")] = "",
    category: Annotated[list[str] | None, typer.Option(help="Category (repeatable)")] = None,
    requirement: Annotated[list[str] | None, typer.Option(help="PEP 508 requirement (repeatable)")] = None,
    image: Annotated[str | None, typer.Option(help="Container image")] = None,
    channel: Annotated[str, typer.Option(help="Channel (with --to)")] = DEFAULT_CHANNEL,
) -> None:
    """Write FILE:FUNC as a hub item in MLRun's format (item.yaml, source, function.yaml, catalog.json)."""
    path_text, sep, func = handler.rpartition(":")
    if not sep or not path_text or not func:
        raise ConfigError(f"handler {handler!r} must look like path/to/file.py:function")
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"handler file not found: {path_text}")
    cfg = settings()
    if (source is None) == (to is None):
        raise ConfigError("name the target: --source NAME or --to URL")
    if to is not None and "://" not in to:
        to = str(Path(to).expanduser().resolve())
    target = get_source(cfg, source) if source else HubSource("target", to or "", channel, cfg.s3_endpoint_url)
    item = publish(
        path,
        func,
        target,
        name=name,
        version=version,
        description=description,
        categories=category,
        requirements=requirement,
        image=image,
    )
    uri = parse_hub_uri(f"hub://{source + '/' if source else ''}{item.name}:{item.version}")
    console.print(f"published {uri} -> {escape(item.folder)}")
