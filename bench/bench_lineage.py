"""Upstream lineage latency at depth 10 on a graph of more than a million nodes, SQLite and Neo4j.

The graph: BENCH_LINEAGE_RUNS runs (default 500,000), each reading two dataset versions (one of the
~1,000 most recent outputs, one from anywhere earlier) and writing a new one, so every walk from a
late output goes the full 10 hops. 500,000 runs + 500,000 dataset versions (+ 500,000 datasets).
It is built with one COMPLETE event per run, in big batches through each store's own `apply`.
Built graphs are kept (`.infra/bench-lineage.db`, and Neo4j's database) and reused when they
already hold this graph; anything else in Neo4j is replaced.

Measured: `lineage(start, UPSTREAM, depth=10)` (dataset hops) for 200 random outputs (after 20
warm-up walks), p50/p95 wall time per call; then the same walks as of a time after every event
(`asOf` and `knownAt` set: the as-of path, same answers), to show what as-of reads cost.
Uses PROVGRAPH_NEO4J_URI, else starts the repo's Neo4j (and stops it).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from provgraph.events.facets import ArtifactDatasetFacet, BindingFacet, CodeJobFacet, DatasetVersionDatasetFacet
from provgraph.events.model import Dataset, DatasetFacets, EventType, Job, JobFacets, Run, RunEvent
from provgraph.events.synthetic import EPOCH, content_hash
from provgraph.graph.contract import AsOf, LineageStore
from provgraph.graph.ids import NodeId
from provgraph.graph.neo4j_config import Neo4jConfig
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_LINEAGE_RUNS", "500000"))
SAMPLES, WARMUP, DEPTH = 200, 20, 10
NAMESPACE = "bench-lineage"


def _out(i: int) -> tuple[str, str]:
    return f"/lake/out{i}.parquet", content_hash(f"bl-out{i}")


def _dataset(i: int, output: bool) -> Dataset:
    name, version = _out(i)
    bind = {BindingFacet.FACET_NAME: {"name": "out" if output else "in"}}
    return Dataset(
        namespace="file",
        name=name,
        facets=DatasetFacets(
            version=DatasetVersionDatasetFacet(dataset_version=version), artifact=ArtifactDatasetFacet(kind="data")
        ),
        output_facets=bind if output else None,
        input_facets=None if output else bind,
    )


def events(seed: int = 0) -> Iterator[RunEvent]:
    """One COMPLETE event per run: run i reads a recent and an arbitrary earlier output, writes out i."""
    rng = random.Random(seed)
    jobs = [
        Job(
            namespace=NAMESPACE,
            name=f"job{j}",
            facets=JobFacets(code=CodeJobFacet(code_hash=content_hash(f"j{j}"), entrypoint="x")),
        )
        for j in range(50)
    ]
    for i in range(RUNS):
        ins = sorted({rng.randrange(max(0, i - 1000), i), rng.randrange(0, i)}) if i else []
        yield RunEvent(
            event_type=EventType.COMPLETE,
            event_time=EPOCH + timedelta(seconds=i),
            run=Run(run_id=f"bl-{i:08d}"),
            job=jobs[i % len(jobs)],
            inputs=[_dataset(k, False) for k in ins],
            outputs=[_dataset(i, True)],
        )


def build(store: LineageStore, has: int, batch: int) -> float:
    """Fill the store unless it already holds this graph; returns the build time (0 when reused)."""
    if has == RUNS and store.run(f"bl-{RUNS - 1:08d}") is not None:
        return 0.0
    store.reset()
    t0 = time.perf_counter()
    chunk: list[RunEvent] = []
    for i, event in enumerate(events()):
        chunk.append(event)
        if len(chunk) == batch:
            store.apply(chunk)
            chunk = []
            if (i + 1) % 100_000 == 0:
                print(f"  {type(store).__name__}: {i + 1:,} runs in {time.perf_counter() - t0:.0f}s", flush=True)
    if chunk:
        store.apply(chunk)
    return time.perf_counter() - t0


LATER = AsOf(as_of=EPOCH + timedelta(days=3650), known_at=EPOCH + timedelta(days=365_000))
"""After every event of the bench graph (and every ingestion, whenever it was built)."""


def measure(store: LineageStore, at: AsOf | None = None) -> tuple[float, float, float]:
    """p50 and p95 in ms, and the mean number of nodes per answer (`at`: as of that time)."""
    rng = random.Random(42)
    starts = [NodeId.dataset("file", *_out(rng.randrange(RUNS // 2, RUNS))) for _ in range(WARMUP + SAMPLES)]
    times, sizes = [], []
    for n, start in enumerate(starts):
        t0 = time.perf_counter()
        g = store.lineage(start, Direction.UPSTREAM, depth=DEPTH, at=at or AsOf())
        elapsed = time.perf_counter() - t0
        assert max(x.hop for x in g.nodes) == 2 * DEPTH, "the bench graph should be deep enough for every walk"
        if n >= WARMUP:
            times.append(elapsed * 1000)
            sizes.append(len(g.nodes))
    q = statistics.quantiles(times, n=100)
    return q[49], q[94], statistics.fmean(sizes)


def main() -> None:
    sys.path.insert(0, str(REPO))  # for tests.services
    from tests.services import ensure

    uri = ensure("neo4j")["PROVGRAPH_NEO4J_URI"]
    gc_off()
    results = []
    db = REPO / ".infra" / "bench-lineage.db"
    db.parent.mkdir(exist_ok=True)
    sqlite = SqliteLineageStore(db)
    has = sqlite._all("SELECT COUNT(*) FROM run WHERE namespace = ?", (NAMESPACE,))[0][0]
    built = build(sqlite, has, 50_000)
    nodes = sum(sqlite._all(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("run", "dataset_version", "dataset"))  # noqa: S608
    results.append(("sqlite", built, *measure(sqlite)))
    results.append(("sqlite as-of", 0.0, *measure(sqlite, LATER)))
    sqlite.close()

    neo = Neo4jLineageStore(Neo4jConfig(uri=uri))
    counts = neo.count()
    built = build(neo, counts["Run"], 20_000)
    counts = neo.count()
    results.append(("neo4j", built, *measure(neo)))
    results.append(("neo4j as-of", 0.0, *measure(neo, LATER)))
    neo.close()

    parts = [
        f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({size:.0f} nodes/answer"
        + (f", built in {b:.0f}s" if b else ", graph reused")
        + ")"
        for name, b, p50, p95, size in results
    ]
    total = counts["Run"] + counts["DatasetVersion"] + counts["Dataset"]
    print(
        f"upstream lineage, depth {DEPTH}, {SAMPLES} random starts, graph of {total:,} nodes"
        f" (sqlite {nodes:,}): " + " | ".join(parts)
    )


def gc_off() -> None:
    """Building allocates millions of objects that live until applied; cyclic GC only slows that down."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(1_000_000, 10, 10)


if __name__ == "__main__":
    main()
