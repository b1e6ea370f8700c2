"""The bounded breadth-first column-lineage walk both stores run; a store supplies one query per hop.

Columns are (dataset id, field) pairs; edges come from the latest `columnLineage` facet of each
output dataset (see `facets.py`). Depth counts column hops. The answer is `partial`, with reasons,
whenever something reachable was left out: the depth ended with columns still to visit, a
column's neighbours exceeded the fan-out limit, the node limit or the time budget was reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from provgraph.events.errors import ConfigError, NotFound
from provgraph.graph.contract import LineageBounds
from provgraph.graph.ids import NodeId, column_node_id, dataset_node_id
from provgraph.graph.views import Direction

if TYPE_CHECKING:
    from provgraph.graph.facets import ColumnLineageGraph

ColumnKey = tuple[str, str]
"""(dataset id `dataset:<ns>:<name>`, field)."""
Neighbour = tuple[str, str, str]
"""(dataset id, field, transformations as JSON text) of a column one hop away."""
ColumnHop = Callable[[list[ColumnKey], bool, int], dict[ColumnKey, list[Neighbour]]]
"""(frontier, upstream?, cap) -> up to `cap` neighbours of each frontier column, in a stable order."""

DEFAULT_COLUMN_DEPTH = 5
"""Column hops the API and the CLI follow unless asked otherwise."""


def column_root(dataset: NodeId, field: str) -> ColumnKey:
    """The start of a walk: a dataset (a version's id names its dataset: columns are per dataset)."""
    if dataset.kind not in ("dataset", "datasetVersion"):
        raise ConfigError(f"column lineage starts at a dataset, not a {dataset.kind} ({dataset})")
    if not field:
        raise ConfigError("column lineage needs a field name")
    return dataset_node_id(dataset.key[0], dataset.key[1]), field


def column_walk(
    root: ColumnKey,
    known: bool,
    direction: Direction,
    depth: int,
    fan_out: int,
    bounds: LineageBounds,
    hop: ColumnHop,
) -> ColumnLineageGraph:
    """Walk from `root` (`known`: its dataset or column is in the graph, else `NotFound`)."""
    from provgraph.graph.facets import ColumnEdge, ColumnLineageGraph, ColumnNode, TransformationView  # (start-up)

    root_id = column_node_id(*root)
    if not known:
        raise NotFound(f"no such column: {root[1]!r} of {root[0]}")
    depth, fan_out = bounds.clamp(depth, fan_out)
    upstream = direction == Direction.UPSTREAM
    deadline = time.monotonic() + bounds.time_budget_s
    nodes: dict[ColumnKey, ColumnNode] = {root: ColumnNode(id=root_id, dataset=root[0], field=root[1], hop=0)}
    edges: dict[tuple[str, str], ColumnEdge] = {}
    reasons: list[str] = []
    frontier = [root]
    level = 0
    full = False
    while frontier and level < depth:
        if time.monotonic() > deadline:
            reasons.append(f"time budget of {bounds.time_budget_s}s spent after hop {level}")
            break
        level += 1
        found = hop(frontier, upstream, fan_out + 1)
        reached: list[ColumnKey] = []
        for key in frontier:
            near = found.get(key, [])
            if len(near) > fan_out:
                reasons.append(f"fan-out limit of {fan_out} cut the neighbours of {column_node_id(*key)}")
                near = near[:fan_out]
            for dataset, field, steps in near:
                other = (dataset, field)
                if other not in nodes and other not in reached:
                    if len(nodes) + len(reached) >= bounds.max_nodes:
                        if not full:
                            reasons.append(f"node limit of {bounds.max_nodes} reached at hop {level}")
                            full = True
                        continue
                    reached.append(other)
                src, dst = (other, key) if upstream else (key, other)
                a, b = column_node_id(*src), column_node_id(*dst)
                edges[(a, b)] = ColumnEdge(
                    source=a, target=b, transformations=[TransformationView(**t) for t in json.loads(steps)]
                )
        for key in reached:
            nodes[key] = ColumnNode(id=column_node_id(*key), dataset=key[0], field=key[1], hop=level)
        frontier = reached
    if frontier and level == depth and not reasons:
        beyond = hop(frontier, upstream, 1)
        if any((d, f) not in nodes for near in beyond.values() for d, f, _ in near):
            reasons.append(f"depth {depth} reached with columns left to visit")
    ids = {n.id for n in nodes.values()}
    return ColumnLineageGraph(
        root=root_id,
        direction=direction.value,
        depth=depth,
        nodes=sorted(nodes.values(), key=lambda n: (n.hop, n.id)),
        edges=sorted(
            (e for e in edges.values() if e.source in ids and e.target in ids), key=lambda e: (e.source, e.target)
        ),
        partial=bool(reasons),
        partial_reasons=reasons,
    )
