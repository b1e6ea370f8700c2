"""The SQLite lineage walk as it was before round 5 (commit e1ac8a2), kept only as a test oracle.

`SqliteLineageStore.lineage` now reads each node's row with the edge that reaches it, caps fan-out in
Python and builds the answer's objects once at the end (docs/BENCHMARKS.md, "Walk restructured").
This is the slower walk it replaced, kept verbatim in what it asks SQLite and how it assembles the
answer: one statement per hop and table with a window function for the fan-out cap, node rows read
in a second statement, a `LineageNode`/`LineageEdge` per row. It reads the edges by the graph's text
ids, as the tables held them before round 8 (`read_t`/`wrote_t`: temporary views of the integer-keyed
tables, as `dump` gives them). `tests/test_lineage_walk.py` checks
that both give the same answer, so a faster walk that answers differently fails.
"""

from __future__ import annotations

import json
import time
from typing import Any

from provgraph.events.errors import NotFound
from provgraph.events.model import UNVERSIONED
from provgraph.graph.contract import NOW, AsOf
from provgraph.graph.ids import NodeId, dataset_node_id, run_node_id, split_runs
from provgraph.graph.rows import (
    DATASET_VERSION_NODE_FIELDS,
    RUN_NODE_FIELDS,
    dataset_version_node,
    edge_kind,
    run_node,
)
from provgraph.graph.sqlite_store import _TEXT_EDGES, SqliteLineageStore
from provgraph.graph.views import Direction, LineageEdge, LineageGraph, LineageNode
from provgraph.graph.walk import Cuts, edge_hops

_WRITTEN = "(r.state = 'COMPLETE' AND r.ended_at <= :as_of AND r.ended_known_at <= :known)"
_SEEN_W = "(w.first_at <= :as_of AND w.known_at <= :known)"
_RESOLVED = f"""CASE WHEN u.version = '{UNVERSIONED}' THEN COALESCE((
  SELECT w.dsv FROM dataset_version v JOIN wrote_t w ON w.dsv = v.node_id JOIN run r ON r.run_id = w.run_id
  WHERE v.namespace = u.namespace AND v.name = u.name AND v.version <> '{UNVERSIONED}'
    AND {_WRITTEN} AND r.ended_at <= e.first_at AND {_SEEN_W}
  ORDER BY r.ended_at DESC, w.dsv DESC LIMIT 1), e.dsv) ELSE e.dsv END"""
_RUN_NODES = f"SELECT {', '.join(RUN_NODE_FIELDS)} FROM run WHERE run_id IN (SELECT value FROM json_each(?))"
_DSV_NODES = (
    f"SELECT {', '.join(DATASET_VERSION_NODE_FIELDS)} FROM dataset_version"
    " WHERE node_id IN (SELECT value FROM json_each(?))"
)


def _edges(table: str, key: str) -> str:
    if table == "read":
        return (
            f"SELECT e.run_id AS run_id, {_RESOLVED} AS dsv, e.binding AS binding, 0 AS attempted"
            " FROM read_t e JOIN dataset_version u ON u.node_id = e.dsv"
            f" WHERE e.first_at <= :as_of AND e.known_at <= :known AND e.{key} IN (SELECT value FROM json_each(:cand))"
        )
    return (
        f"SELECT w.run_id AS run_id, w.dsv AS dsv, w.binding AS binding, NOT {_WRITTEN} AS attempted"
        " FROM wrote_t w JOIN run r ON r.run_id = w.run_id"
        f" WHERE {_SEEN_W} AND ({_WRITTEN} OR :failed) AND w.{key} IN (SELECT value FROM json_each(:cand))"
    )


def _nodes(store: SqliteLineageStore, ids: list[str], hop: int) -> dict[str, LineageNode]:
    runs, dsvs = split_runs(ids)
    out: dict[str, LineageNode] = {}
    if runs:
        for r in store._all(_RUN_NODES, (json.dumps(runs),)):
            n = run_node(hop, tuple(r))
            out[n.id] = n
    if dsvs:
        for r in store._all(_DSV_NODES, (json.dumps(dsvs),)):
            n = dataset_version_node(hop, tuple(r))
            out[n.id] = n
    return out


def _expand(
    store: SqliteLineageStore,
    frontier: list[str],
    direction: Direction,
    fan_out: int,
    cuts: Cuts,
    params: dict[str, Any],
) -> list[LineageEdge]:
    runs, dsvs = split_runs(frontier)
    upstream = direction == Direction.UPSTREAM
    run_table, dsv_table = ("read", "wrote") if upstream else ("wrote", "read")
    out: list[LineageEdge] = []
    for table, key, values in ((run_table, "run_id", runs), (dsv_table, "dsv", dsvs)):
        if not values:
            continue
        candidates, resolved = values, ""
        if table == "read" and key == "dsv":
            rows = store._all(
                "SELECT DISTINCT namespace, name FROM dataset_version"
                " WHERE node_id IN (SELECT value FROM json_each(?))",
                (json.dumps(values),),
            )
            candidates = values + [dataset_node_id(r[0], r[1], UNVERSIONED) for r in rows]
            resolved = " WHERE dsv IN (SELECT value FROM json_each(:ids))"
        rows = store._all(
            f"SELECT run_id, dsv, binding, attempted, n FROM (SELECT *,"
            f" ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY run_id, dsv, binding) AS n"
            f" FROM ({_edges(table, key)}){resolved}) WHERE n <= :cap",
            {"ids": json.dumps(values), "cand": json.dumps(candidates), "cap": fan_out + 1, **params},
        )
        cut = {r[0] if key == "run_id" else r[1] for r in rows if r[4] > fan_out}
        for source in sorted(cut):
            cuts.add("fanOut", f"fan-out limit of {fan_out} cut the neighbours of {source}")
        out += [
            LineageEdge(source=run_node_id(r[0]), target=r[1], kind=edge_kind(table, bool(r[3])), binding=r[2])
            for r in rows
            if r[4] <= fan_out
        ]
    return out


def oracle_lineage(
    store: SqliteLineageStore,
    node: NodeId,
    direction: Direction,
    depth: int,
    fan_out: int = 100,
    *,
    include_failed: bool = False,
    at: AsOf = NOW,
) -> LineageGraph:
    """`store.lineage(...)` as the round-4 walk answered it."""
    bounds = store.bounds
    depth, fan_out = bounds.clamp(depth, fan_out)
    cuts = Cuts()
    as_of, known = at.texts()
    params = {"as_of": as_of, "known": known, "failed": int(include_failed)}
    for table in ("read", "wrote"):
        store._all(f"CREATE TEMP VIEW IF NOT EXISTS {table}_t AS {_TEXT_EDGES.format(table)}")
    ids = list(store._start(node, fan_out, cuts, params))
    loaded = _nodes(store, ids, 0)
    start = [loaded[i] for i in ids if i in loaded]

    def expand(
        frontier: list[str], hop: int, known: set[str], cuts: Cuts
    ) -> tuple[list[LineageEdge], dict[str, LineageNode]]:
        found = _expand(store, frontier, direction, fan_out, cuts, params)
        reached = dict.fromkeys(i for e in found for i in (e.source, e.target) if i not in known)
        loaded = _nodes(store, list(reached), hop)
        return found, {i: loaded[i] for i in reached if i in loaded}

    if not start:
        raise NotFound(f"no such node: {node}")
    deadline = time.monotonic() + bounds.time_budget_s
    nodes = {n.id: n for n in start}
    edges: dict[tuple[str, str, str, str], LineageEdge] = {}
    frontier = list(nodes)
    hop = 0
    limit = edge_hops(node, depth)
    while frontier:
        if time.monotonic() > deadline:
            cuts.add("time", f"time budget of {bounds.time_budget_s}s spent after hop {hop}")
            break
        if hop >= limit:
            beyond, reached = expand(frontier, hop + 1, set(nodes), Cuts())
            if beyond and any(i not in nodes for i in reached):
                cuts.add("depth", f"depth {depth} (dataset hops) reached with more lineage beyond it")
            break
        hop += 1
        found, reached = expand(frontier, hop, set(nodes), cuts)
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
    # a dataset's unversioned placeholder (round 17) is shown only while a read still points at it
    placeholder = f"{node}@{UNVERSIONED}"
    if node.kind == "dataset" and hop and len(start) > 1 and all(placeholder not in (e.source, e.target) for e in kept):
        nodes.pop(placeholder, None)
    return LineageGraph(
        root=str(node),
        direction=direction,
        depth=depth,
        nodes=sorted(nodes.values(), key=lambda n: (n.hop, n.id)),
        edges=sorted(kept, key=lambda e: (e.source, e.target, e.kind, e.binding)),
        partial=bool(cuts.texts),
        cut_reasons=cuts.texts,
        cut_codes=cuts.codes,
    )
