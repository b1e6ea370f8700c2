"""The bounded breadth-first lineage walk every store runs; stores supply only the queries.

A store gives the start nodes and an `expand(frontier, hop, known, cuts)` that returns, for the
whole frontier at once, the edges one hop away and the nodes they reach (it may skip loading nodes
in `known`) and records its own fan-out cuts in `cuts`. The walk enforces the depth, the node cap
and the time budget and records which bound cut it.

Depth is counted in dataset hops (see `contract.DEFAULT_DEPTH`): one dataset hop is a dataset
version, the run on its far side and that run's datasets. From a dataset the walk follows
2 x depth edges; from a run or a job, whose own datasets are one edge away, 2 x depth - 1. When
the depth stops a walk, one more hop is probed: if it would reach anything new, the answer is
partial with the reason "depth".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence

from provgraph.events.errors import NotFound
from provgraph.graph.contract import LineageBounds
from provgraph.graph.ids import NodeId
from provgraph.graph.views import Direction, LineageEdge, LineageGraph, LineageNode


class Cuts:
    """What cut a walk: a reason code (`depth`, `fanOut`, `time`, `nodes`) and a sentence for each."""

    def __init__(self) -> None:
        self.codes: list[str] = []
        self.texts: list[str] = []

    def add(self, code: str, text: str) -> None:
        self.codes.append(code)
        self.texts.append(text)


Hop = tuple[list[LineageEdge], dict[str, LineageNode]]
"""One step of a walk: the edges found, and the nodes they reach by id."""
Expand = Callable[[list[str], int, Collection[str], Cuts], Hop]


def edge_hops(node: NodeId, depth: int) -> int:
    """Edges a walk of `depth` dataset hops follows from `node`."""
    if depth <= 0:
        return 0
    return 2 * depth if node.kind in ("dataset", "datasetVersion") else 2 * depth - 1


def bounded_walk(
    root: NodeId,
    direction: Direction,
    depth: int,
    bounds: LineageBounds,
    start: Sequence[LineageNode],
    expand: Expand,
    cuts: Cuts,
) -> LineageGraph:
    if not start:
        raise NotFound(f"no such node: {root}")
    deadline = time.monotonic() + bounds.time_budget_s
    nodes = {n.id: n for n in start}
    edges: dict[tuple[str, str, str, str], LineageEdge] = {}
    frontier = list(nodes)
    hop = 0
    limit = edge_hops(root, depth)
    while frontier:
        if time.monotonic() > deadline:
            cuts.add("time", f"time budget of {bounds.time_budget_s}s spent after hop {hop}")
            break
        if hop >= limit:
            beyond, reached = expand(frontier, hop + 1, nodes.keys(), Cuts())
            if beyond and any(i not in nodes for i in reached):
                cuts.add("depth", f"depth {depth} (dataset hops) reached with more lineage beyond it")
            break
        hop += 1
        found, reached = expand(frontier, hop, nodes.keys(), cuts)
        for e in found:
            edges[(e.source, e.target, e.kind, e.binding)] = e
        next_ids = [i for i in reached if i not in nodes]
        room = bounds.max_nodes - len(nodes)
        if len(next_ids) > room:
            cuts.add("nodes", f"node limit of {bounds.max_nodes} reached at hop {hop}")
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
        partial=bool(cuts.texts),
        cut_reasons=cuts.texts,
        cut_codes=cuts.codes,
    )
