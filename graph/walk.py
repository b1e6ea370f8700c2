"""The bounded breadth-first lineage walk every store runs; stores supply only the queries.

A store gives the start nodes and an `expand(frontier, hop, known)` that returns, for the whole
frontier at once, the edges one hop away and the nodes they reach (it may skip loading nodes in
`known`). The walk enforces the depth, the node cap and the time budget and says in `cut_reasons`
which bound cut it; stores add their own fan-out cuts to the same list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from provgraph.events.errors import NotFound
from provgraph.graph.contract import LineageBounds
from provgraph.graph.ids import NodeId
from provgraph.graph.views import Direction, LineageEdge, LineageGraph, LineageNode

Hop = tuple[list[LineageEdge], dict[str, LineageNode]]
"""One step of a walk: the edges found, and the nodes they reach by id."""
Expand = Callable[[list[str], int, Collection[str]], Hop]


def bounded_walk(
    root: NodeId,
    direction: Direction,
    depth: int,
    bounds: LineageBounds,
    start: Sequence[LineageNode],
    expand: Expand,
    reasons: list[str],
) -> LineageGraph:
    if not start:
        raise NotFound(f"no such node: {root}")
    deadline = time.monotonic() + bounds.time_budget_s
    nodes = {n.id: n for n in start}
    edges: dict[tuple[str, str, str, str], LineageEdge] = {}
    frontier = list(nodes)
    hop = 0
    while frontier and hop < depth:
        if time.monotonic() > deadline:
            reasons.append(f"time budget of {bounds.time_budget_s}s spent after hop {hop}")
            break
        hop += 1
        found, reached = expand(frontier, hop, nodes.keys())
        for e in found:
            edges[(e.source, e.target, e.kind, e.binding)] = e
        next_ids = [i for i in reached if i not in nodes]
        room = bounds.max_nodes - len(nodes)
        if len(next_ids) > room:
            reasons.append(f"node limit of {bounds.max_nodes} reached at hop {hop}")
            next_ids = next_ids[:room]
        for i in next_ids:
            nodes[i] = reached[i]
        frontier = next_ids
    kept = [e for e in edges.values() if e.source in nodes and e.target in nodes]
    return LineageGraph(
        root=str(root),
        direction=direction,
        depth=depth,
        nodes=sorted(nodes.values(), key=lambda n: (n.hop, n.id)),
        edges=sorted(kept, key=lambda e: (e.source, e.target, e.kind, e.binding)),
        partial=bool(reasons),
        cut_reasons=reasons,
    )
