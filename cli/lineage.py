"""`provgraph lineage`: what produced this, or what did this feed, as a readable tree."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from provgraph.cli._app import app, console, settings, short
from provgraph.cli._resolve import NAME, NAMESPACE, check_target, resolve
from provgraph.graph.columns import DEFAULT_COLUMN_DEPTH
from provgraph.graph.contract import DEFAULT_DEPTH, AsOf
from provgraph.graph.facets import ColumnLineageGraph
from provgraph.graph.factory import open_store
from provgraph.graph.ids import as_run_id
from provgraph.graph.views import Direction, LineageGraph, LineageNode

TARGET_HELP = "a node id (dataset:duckdb://db:orders), run id or prefix, name fragment, store:// URI or file path"


@app.command("lineage")
def lineage_cmd(
    target: Annotated[str | None, typer.Argument(help=TARGET_HELP)] = None,
    namespace: Annotated[str | None, NAMESPACE] = None,
    name: Annotated[str | None, NAME] = None,
    column: Annotated[str | None, typer.Option("--column", help="Column-level lineage of this field")] = None,
    upstream: Annotated[bool, typer.Option("--upstream/--downstream", help="What produced it / what it fed")] = True,
    depth: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=100,
            help=f"Dataset hops to follow (a dataset, its run, that run's datasets; default {DEFAULT_DEPTH});"
            f" with --column, column hops (default {DEFAULT_COLUMN_DEPTH})",
        ),
    ] = None,
    fan_out: Annotated[int, typer.Option(min=1, help="Neighbours kept per node")] = 50,
    include_failed: Annotated[
        bool, typer.Option("--include-failed", help="Also walk outputs of runs that did not complete (ATTEMPTED)")
    ] = False,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="The lineage as it was at this event time (UTC unless given)")
    ] = None,
    known_at: Annotated[
        datetime | None, typer.Option("--known-at", help="The lineage as provgraph knew it at this ingestion time")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw graph as JSON")] = False,
) -> None:
    """Walk the lineage graph (or, with --column, the column lineage) from TARGET and print it as a tree."""
    check_target(target, namespace, name)
    store = open_store(settings()).fresh()
    node = resolve(store, target, namespace, name)
    direction = Direction.UPSTREAM if upstream else Direction.DOWNSTREAM
    if column is not None:
        columns = store.column_lineage(node, column, direction, depth=depth or DEFAULT_COLUMN_DEPTH, fan_out=fan_out)
        if as_json:
            print(columns.model_dump_json())
        else:
            console.print(render_columns(columns))
        return
    graph = store.lineage(
        node,
        direction,
        depth=depth or DEFAULT_DEPTH,
        fan_out=fan_out,
        include_failed=include_failed,
        at=AsOf(as_of=_utc(as_of), known_at=_utc(known_at)),
    )
    if as_json:
        console.print_json(graph.model_dump_json())
        return
    console.print(render(graph))


def _utc(value: datetime | None) -> datetime | None:
    """A time typed without an offset is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def render_columns(graph: ColumnLineageGraph) -> Tree:
    """Columns as a tree from the start column: upstream a column's children are what it is derived
    from, downstream what it feeds; each line names the transformations of its edge."""
    upstream = graph.direction == Direction.UPSTREAM.value
    nodes = {n.id: n for n in graph.nodes}
    children: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges:
        steps = ", ".join("/".join(x for x in (t.type, t.subtype) if x) for t in e.transformations)
        parent, child = (e.target, e.source) if upstream else (e.source, e.target)
        children.setdefault(parent, []).append((child, steps))
    title = "derived from" if upstream else "feeds"
    tree = Tree(f"[bold]column lineage[/] of {escape(graph.root)} ({title}, depth {graph.depth})")
    shown: set[str] = set()

    def add(parent: Tree, node_id: str, steps: str) -> None:
        n = nodes[node_id]
        label = f"[bold green]{escape(n.dataset.removeprefix('dataset:'))}[/] [bold]{escape(n.field)}[/]"
        branch = parent.add(label + (f"  [dim]{escape(steps)}[/]" if steps else ""))
        if node_id in shown:
            branch.label = f"{branch.label} [dim](see above)[/]"
            return
        shown.add(node_id)
        for child, child_steps in sorted(children.get(node_id, [])):
            add(branch, child, child_steps)

    add(tree, graph.root, "")
    if graph.partial:
        tree.add(f"[yellow]partial answer:[/] {escape('; '.join(graph.partial_reasons))}")
    return tree


def render(graph: LineageGraph) -> Tree:
    upstream = graph.direction == Direction.UPSTREAM
    title = "what produced it" if upstream else "what it fed"
    nodes = {n.id: n for n in graph.nodes}
    # Upstream, a dataset's children are the runs that wrote it and a run's are what it read;
    # downstream, the reverse. Edges always point run -> dataset.
    run_edge, dataset_edge = ("READ", "WROTE") if upstream else ("WROTE", "READ")
    children: dict[str, list[tuple[str, str]]] = {}
    attempted = {(e.source, e.target) for e in graph.edges if e.kind == "ATTEMPTED"}
    for e in graph.edges:
        if e.source not in nodes or e.target not in nodes:
            continue
        kind = "WROTE" if e.kind == "ATTEMPTED" else e.kind
        if kind == run_edge:
            children.setdefault(e.source, []).append((e.target, e.binding))
        elif kind == dataset_edge:
            children.setdefault(e.target, []).append((e.source, e.binding))
    roots = [n for n in graph.nodes if n.hop == 0]
    tree = Tree(f"[bold]lineage[/] of {graph.root} ({title}, depth {graph.depth} dataset hops)")
    shown: set[str] = set()

    def add(parent: Tree, node: LineageNode, binding: str, via: str = "") -> None:
        tried = (node.id, via) in attempted or (via, node.id) in attempted
        branch = parent.add(_label(node, binding, upstream) + (" [yellow](attempted, not written)[/]" if tried else ""))
        if node.id in shown:
            branch.label = f"{branch.label} [dim](see above)[/]"
            return
        shown.add(node.id)
        for child_id, child_binding in sorted(children.get(node.id, [])):
            add(branch, nodes[child_id], child_binding, node.id)

    for root in roots:
        add(tree, root, "")
    if graph.partial:
        tree.add(f"[yellow]partial answer ({', '.join(graph.partial_reasons)}):[/] {'; '.join(graph.cut_reasons)}")
    return tree


def _label(node: LineageNode, binding: str, upstream: bool) -> str:
    gone = node.props.get("deleted")
    mark = f" [red](deleted {gone['at'][:19]} by {escape(gone['by'])})[/]" if gone else ""
    return _describe(node, binding, upstream) + mark


def _describe(node: LineageNode, binding: str, upstream: bool) -> str:
    p = node.props
    if node.kind == "run":
        verb = "" if not binding else ("produced by " if upstream else "read by ")
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in (p.get("params") or {}).items())
        return (
            f"{verb}[bold cyan]{p.get('job')}[/] run {as_run_id(node.id)} [{p.get('state', '').lower()}]"
            f"  code {short(p.get('code_hash'), 10)}" + (f"  params {params}" if params else "")
        )
    verb = "" if not binding else (f"read as [italic]{binding}[/]: " if upstream else f"wrote [italic]{binding}[/]: ")
    kind = f" ({p.get('kind')})" if p.get("kind") else ""
    size = f" {p['size']} B" if p.get("size") is not None else ""
    return f"{verb}[bold green]{p.get('namespace')} {p.get('name')}[/]{kind} {short(p.get('version'), 12)}{size}"
