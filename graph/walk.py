"""The bounded breadth-first lineage walk every store runs; stores supply only the queries.

A store gives the start nodes and an `expand(frontier, cuts)` that returns, for the whole frontier
at once, the edges one hop away and the nodes they reach, and records its own fan-out cuts in `cuts`.
The walk enforces the depth, the node cap and the time budget and records which bound cut it.
Edges and nodes travel as plain tuples (the stored node fields, read with the edges that reach them)
and become the answer's objects once, at the end, for the answer only: building a pydantic object per
row a hop returns cost as much CPU as the queries (docs/BENCHMARKS.md, "Walk restructured"); the
answer's nodes and edges are plain slots dataclasses (round 10).

Depth is counted in dataset hops (see `contract.DEFAULT_DEPTH`): one dataset hop is a dataset
version, the run on its far side and that run's datasets. From a dataset the walk follows
2 x depth edges; from a run or a job, whose own datasets are one edge away, 2 x depth - 1. When
the depth stops a walk, one more hop is probed (slice by slice of the last frontier, stopping at
the first new node): if it would reach anything new, the answer is partial with the reason "depth".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from itertools import starmap
from typing import Any

from provgraph.events.errors import NotFound
from provgraph.events.states import UNVERSIONED
from provgraph.graph.contract import LineageBounds
from provgraph.graph.ids import NodeId, dataset_node_id
from provgraph.graph.rows import dataset_version_node, run_node
from provgraph.graph.views import Direction, LineageEdge, LineageGraph


class Cuts:
    """What cut a walk: a reason code (`depth`, `fanOut`, `time`, `nodes`) and a sentence for each."""

    def __init__(self) -> None:
        self.codes: list[str] = []
        self.texts: list[str] = []

    def add(self, code: str, text: str) -> None:
        self.codes.append(code)
        self.texts.append(text)


Edge = tuple[str, str, str, str]
"""A lineage edge: source (the run), target (the dataset version), kind, binding."""
NodeRow = tuple[bool, Sequence[Any]]
"""A node as stored: whether it is a run, and its `rows.RUN_NODE_FIELDS` (a run) or
`rows.DATASET_VERSION_NODE_FIELDS` values."""
Hop = tuple[list[Edge], dict[str, NodeRow]]
"""One step of a walk: the edges found, and the nodes they reach by id, in the order found."""
Expand = Callable[[list[str], Cuts], Hop]


def edge_hops(node: NodeId, depth: int) -> int:
    """Edges a walk of `depth` dataset hops follows from `node`."""
    if depth <= 0:
        return 0
    return 2 * depth if node.kind in ("dataset", "datasetVersion") else 2 * depth - 1


PROBE_FIRST = 16
"""Frontier nodes the depth probe expands first; each further slice is four times the last."""


def _reaches_beyond(frontier: list[str], nodes: Mapping[str, NodeRow], expand: Expand) -> bool:
    """Whether one more hop from `frontier` reaches a node the walk has not, asked of growing slices
    of the frontier and stopping at the first new node. A hop's nodes from a frontier are the union of
    its nodes from each slice (every frontier node's edges and fan-out cap are its own), so the answer
    is the whole frontier's; but a walk that the depth cuts (a deep graph) usually shows a new node in
    the first slice, and the last frontier is the widest: expanding all of it read ~a quarter of the
    walk's rows (docs/BENCHMARKS.md, round 6)."""
    start, size = 0, PROBE_FIRST
    while start < len(frontier):
        _, reached = expand(frontier[start : start + size], Cuts())
        if any(i not in nodes for i in reached):
            return True
        start, size = start + size, size * 4
    return False


def bounded_walk(
    root: NodeId,
    direction: Direction,
    depth: int,
    bounds: LineageBounds,
    start: Mapping[str, NodeRow],
    expand: Expand,
    cuts: Cuts,
) -> LineageGraph:
    if not start:
        raise NotFound(f"no such node: {root}")
    deadline = time.monotonic() + bounds.time_budget_s
    nodes = dict(start)
    levels = [list(nodes)]  # the ids first reached at each hop
    edges: set[Edge] = set()
    frontier = list(nodes)
    hop = 0
    limit = edge_hops(root, depth)
    while frontier:
        if time.monotonic() > deadline:
            cuts.add("time", f"time budget of {bounds.time_budget_s}s spent after hop {hop}")
            break
        if hop >= limit:
            if _reaches_beyond(frontier, nodes, expand):
                cuts.add("depth", f"depth {depth} (dataset hops) reached with more lineage beyond it")
            break
        hop += 1
        found, reached = expand(frontier, cuts)
        edges.update(found)
        next_ids = [i for i in reached if i not in nodes]
        room = bounds.max_nodes - len(nodes)
        if len(next_ids) > room:
            cuts.add("nodes", f"node limit of {bounds.max_nodes} reached at hop {hop}")
            next_ids = next_ids[:room]
        for i in next_ids:
            nodes[i] = reached[i]
        levels.append(next_ids)
        frontier = next_ids
    # An edge's near end is on the frontier and its far end among the nodes the hop reached: both are in
    # `nodes` unless the node cap left the far end out.
    kept = sorted(e for e in edges if e[0] in nodes and e[1] in nodes) if "nodes" in cuts.codes else sorted(edges)
    if root.kind == "dataset" and hop and len(levels[0]) > 1:
        # where a dataset's reads that named no version point; once each resolved to a version written
        # before it, the placeholder has no edge in the answer, and is no start to show
        placeholder = dataset_node_id(root.key[0], root.key[1], UNVERSIONED)
        if placeholder in levels[0] and not any(placeholder in (e[0], e[1]) for e in kept):
            levels[0].remove(placeholder)
    # Nodes and edges are plain dataclasses built from the stored values (`views.LineageNode`); the answer's
    # own fields (root, direction, ...) are validated, its lists only checked to hold those classes.
    return LineageGraph.model_validate(
        {
            "root": str(root),
            "direction": direction,
            "depth": depth,
            "nodes": [  # by (hop, id)
                (run_node if nodes[i][0] else dataset_version_node)(hop, nodes[i][1])
                for hop, level in enumerate(levels)
                for i in sorted(level)
            ],
            "edges": list(starmap(LineageEdge, kept)),
            "partial": bool(cuts.texts),
            "cut_reasons": cuts.texts,
            "cut_codes": cuts.codes,
        }
    )
