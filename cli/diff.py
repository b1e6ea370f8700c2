"""`provgraph diff A B`: why two artifacts (or two runs) differ, by the earliest divergences upstream."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from provgraph.cli._app import app, console, settings
from provgraph.cli._resolve import resolve
from provgraph.graph.causal_diff import CausalDiff, causal_diff
from provgraph.graph.contract import DEFAULT_DEPTH
from provgraph.graph.factory import open_store

TARGET = "a dataset version (dataset:<ns>:<name>@<version>), store:// URI, file path or run id"


@app.command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(help=f"The first: {TARGET}")],
    b: Annotated[str, typer.Argument(help="The second, of the same kind")],
    depth: Annotated[int, typer.Option(min=1, max=100, help="Dataset hops walked upstream of each")] = DEFAULT_DEPTH,
    fan_out: Annotated[int, typer.Option(min=1, help="Neighbours kept per node")] = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="{a, b, same_content, causes, no_effect, partial, partial_reasons}")
    ] = False,
) -> None:
    """Why B differs from A: the earliest changed code, params, input content or environment upstream."""
    handle = open_store(settings())
    try:
        store = handle.fresh()
        result = causal_diff(store, resolve(store, a), resolve(store, b), depth=depth, fan_out=fan_out)
    finally:
        handle.close()
    if as_json:
        print(result.model_dump_json())
        return
    console.print(render(result), soft_wrap=True)


def render(d: CausalDiff) -> Tree:
    """The summary's sentence as a tree: one branch per cause, a partial walk marked last."""
    summary = d.summary()
    head = summary if d.same_content or not d.causes else summary.split(" because ")[0] + " because"
    tree = Tree(escape(head))
    for c in d.causes:
        tree.add(escape(c.text()))
    if d.partial:
        tree.add(f"[yellow]partial answer:[/] the walk was cut ({escape(', '.join(d.partial_reasons))})")
    return tree
