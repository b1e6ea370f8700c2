"""Column-lineage walk latency at depth 5 over 100,000 columns, SQLite (and Neo4j when
PROVGRAPH_NEO4J_URI is set: its database is replaced).

The graph: BENCH_COLUMN_TABLES tables (default 5,000) of BENCH_COLUMN_FIELDS columns (default 20),
one COMPLETE event per table with a `columnLineage` facet: column c of table t derives from column c
of table t-1 and from a random column of a random earlier table, so an upstream walk from a late
table branches at every hop (up to 2^5 columns at the fifth).

Measured: `column_lineage(table, column, UPSTREAM, depth=5)` from 200 random columns of the last
1,000 tables (after 20 warm-up walks), p50/p95 wall time per call, and the build time.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from provgraph.events.model import RunEvent
from provgraph.events.synthetic import EPOCH
from provgraph.graph.contract import LineageStore
from provgraph.graph.ids import NodeId
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction

TABLES = int(os.environ.get("BENCH_COLUMN_TABLES", "5000"))
FIELDS = int(os.environ.get("BENCH_COLUMN_FIELDS", "20"))
SAMPLES, WARMUP, DEPTH, BATCH = 200, 20, 5, 500
NS = "duckdb://bench"
PRODUCER = "https://github.com/provgraph/provgraph/bench"


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "bench", **fields}


def events(seed: int = 0) -> Iterator[RunEvent]:
    rng = random.Random(seed)
    for t in range(1, TABLES):
        fields = {
            f"c{c}": {
                "inputFields": [
                    {"namespace": NS, "name": f"t{t - 1}", "field": f"c{c}"},
                    {"namespace": NS, "name": f"t{rng.randrange(t)}", "field": f"c{rng.randrange(FIELDS)}"},
                ]
            }
            for c in range(FIELDS)
        }
        yield RunEvent.model_validate(
            {
                "eventType": "COMPLETE",
                "eventTime": EPOCH + timedelta(seconds=t),
                "run": {"runId": f"bench-{t}"},
                "job": {"namespace": "bench", "name": f"model_t{t}"},
                "inputs": [{"namespace": NS, "name": f"t{t - 1}"}],
                "outputs": [{"namespace": NS, "name": f"t{t}", "facets": {"columnLineage": _facet(fields=fields)}}],
                "producer": PRODUCER,
            }
        )


def build(store: LineageStore) -> float:
    started = time.perf_counter()
    batch: list[RunEvent] = []
    for event in events():
        batch.append(event)
        if len(batch) == BATCH:
            store.apply(batch)
            batch = []
    if batch:
        store.apply(batch)
    return time.perf_counter() - started


def measure(name: str, store: LineageStore) -> None:
    built = build(store)
    rng = random.Random(1)
    starts = [(f"t{rng.randrange(max(1, TABLES - 1000), TABLES)}", f"c{rng.randrange(FIELDS)}") for _ in range(SAMPLES)]
    times, sizes = [], []
    for i, (table, field) in enumerate(starts[:WARMUP] + starts):
        began = time.perf_counter()
        graph = store.column_lineage(NodeId.dataset(NS, table), field, Direction.UPSTREAM, depth=DEPTH, fan_out=100)
        if i >= WARMUP:
            times.append(time.perf_counter() - began)
            sizes.append(len(graph.nodes))
    p = statistics.quantiles(times, n=100)
    print(
        f"{name:7} {TABLES * FIELDS:,} columns ({TABLES:,} tables), built in {built:.1f} s;"
        f" depth {DEPTH}: p50 {p[49] * 1000:.1f} ms, p95 {p[94] * 1000:.1f} ms,"
        f" {statistics.mean(sizes):.0f} columns per answer"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteLineageStore(Path(tmp) / "columns.db")
        measure("sqlite", sqlite)
        sqlite.close()
    uri = os.environ.get("PROVGRAPH_NEO4J_URI")
    if uri:
        from provgraph.graph.neo4j_config import Neo4jConfig
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        neo4j = Neo4jLineageStore(Neo4jConfig(uri=uri))
        neo4j.reset()
        measure("neo4j", neo4j)
        neo4j.close()
    else:
        print("neo4j   skipped (set PROVGRAPH_NEO4J_URI to a server whose database may be replaced)", file=sys.stderr)


if __name__ == "__main__":
    main()
