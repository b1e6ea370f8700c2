"""`provgraph lineage`: what produced this, or what did this feed, as a readable tree."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.tree import Tree

from provgraph._naming import is_store_uri, parse_store_uri
from provgraph.cli._app import app, console, settings, short
from provgraph.graph.contract import DEFAULT_DEPTH, AsOf
from provgraph.graph.factory import open_store
from provgraph.graph.ids import NodeId, as_run_id, parse_node_id
from provgraph.graph.views import Direction, LineageGraph, LineageNode


def resolve_target(target: str) -> NodeId:
    """A node id, a store:// artifact URI, a local file path, or a bare run id."""
    if ":" in target and "://" not in target:
        return parse_node_id(target)
    if is_store_uri(target):
        ref = parse_store_uri(target)
        return NodeId.dataset(ref.namespace, ref.key, ref.version)
    path = Path(target).expanduser()
    if path.exists() or "/" in target:
        return NodeId.dataset("file", str(path.resolve()))
    return NodeId.run(target)


@app.command("lineage")
def lineage_cmd(
    target: Annotated[str, typer.Argument(help="run id, store://project/key[@version], a file path, or a node id")],
    upstream: Annotated[bool, typer.Option("--upstream/--downstream", help="What produced it / what it fed")] = True,
    depth: Annotated[
        int, typer.Option(min=1, max=100, help="Dataset hops to follow (a dataset, its run, that run's datasets)")
    ] = DEFAULT_DEPTH,
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
    """Walk the lineage graph from TARGET and print it as a tree."""
    node = resolve_target(target)
    graph = (
        open_store(settings())
        .fresh()
        .lineage(
            node,
            Direction.UPSTREAM if upstream else Direction.DOWNSTREAM,
            depth=depth,
            fan_out=fan_out,
            include_failed=include_failed,
            at=AsOf(as_of=_utc(as_of), known_at=_utc(known_at)),
        )
    )
    if as_json:
        console.print_json(graph.model_dump_json())
        return
    console.print(render(graph))


def _utc(value: datetime | None) -> datetime | None:
    """A time typed without an offset is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


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
