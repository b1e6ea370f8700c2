"""`provgraph function register|list|show`: first-class functions, versioned by content hash."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from provgraph._backend import Backend
from provgraph._function import list_functions, register, show
from provgraph.cli._app import app, console, parse_pairs, settings

function_app = typer.Typer(help="Registered functions: run them as function://NAME.", no_args_is_help=True)
app.add_typer(function_app, name="function")


@function_app.command("register")
def register_cmd(
    handler: Annotated[str, typer.Argument(help="path/to/file.py:function")],
    name: Annotated[str | None, typer.Option(help="Function name; default the function's")] = None,
    project: Annotated[str | None, typer.Option(help="Project; default from settings")] = None,
    description: Annotated[str, typer.Option(help="Default: the docstring's first paragraph")] = "",
    requirement: Annotated[list[str] | None, typer.Option(help="PEP 508 requirement (repeatable)")] = None,
    image: Annotated[str | None, typer.Option(help="Container image (kubernetes runtime)")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Default param key=value (JSON)")] = None,
) -> None:
    """Register FILE:FUNC; its version is the hash of its definition (source, handler, requirements …)."""
    backend = Backend(settings())
    try:
        done = register(
            handler,
            backend,
            name=name,
            project=project,
            description=description,
            requirements=requirement,
            image=image,
            params=parse_pairs(param, "param", json_values=True),
        )
    finally:
        backend.close()
    how = f"registered (run {done.run_id})" if done.run_id else "unchanged"
    console.print(f"function [bold]{done.name}[/] {done.function_hash} {how}")


@function_app.command("list")
def list_cmd(
    project: Annotated[str | None, typer.Option(help="Project; default from settings")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per function")] = False,
) -> None:
    """Registered functions, newest version of each."""
    backend = Backend(settings())
    try:
        found = list_functions(backend, project)
    finally:
        backend.close()
    for f in found:
        row = {"name": f.name, "version": f.function_hash, "registered_at": f.registered_at, "run_id": f.run_id}
        if as_json:
            print(json.dumps(row))
        else:
            console.print(f"{f.name}  {f.function_hash}  {f.registered_at}")
    if not found and not as_json:
        console.print("no functions registered: provgraph function register FILE:FUNC")


@function_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Function name")],
    version: Annotated[str | None, typer.Option(help="A version (sha256:…); default the newest")] = None,
    project: Annotated[str | None, typer.Option(help="Project; default from settings")] = None,
) -> None:
    """A function's definition, as JSON."""
    backend = Backend(settings())
    try:
        found = show(name, backend, project, version)
    finally:
        backend.close()
    print(json.dumps({"version": found.function_hash, **found.definition}, indent=2))
