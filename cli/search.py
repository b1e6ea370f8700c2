"""`provgraph search`: node ids whose names contain a text, to paste into `lineage` or `show`."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from provgraph.cli._app import app, console, settings
from provgraph.graph.factory import open_store
from provgraph.graph.ids import parse_node_id


class Kind(StrEnum):
    job = "job"
    run = "run"
    dataset = "dataset"


@app.command("search")
def search_cmd(
    text: Annotated[str, typer.Argument(help="Part of a job, run or dataset name (case-insensitive)")],
    kind: Annotated[list[Kind] | None, typer.Option("--kind", help="Only these kinds (repeatable)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per hit, one per line")] = False,
) -> None:
    """Find jobs, runs and datasets by name; prints their node ids."""
    kinds = [k.value for k in kind] if kind else ["job", "run", "dataset"]
    hits = open_store(settings()).fresh().search(text, kinds, limit)
    if as_json:
        for hit in hits:
            node = parse_node_id(hit)
            print(json.dumps({"id": hit, "kind": node.kind, "key": list(node.key)}))
        return
    if not hits:
        console.print(f"nothing matches {escape(text)!r}")
        return
    for hit in hits:
        console.print(escape(hit), soft_wrap=True)
