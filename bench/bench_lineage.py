"""Upstream lineage latency at depth 10 on graphs of 1.5 to 10 million nodes, SQLite and Neo4j.

The graph: BENCH_LINEAGE_RUNS runs (default 500,000 = 1.5M nodes; 3,340,000 = 10M nodes), each
reading two dataset versions (one of the ~1,000 most recent outputs, one from anywhere earlier) and
writing a new one, so every walk from a late output goes the full 10 hops. N runs + N dataset
versions + N datasets. It is built with one COMPLETE event per run, in big batches through each
store's own `apply` (the projection every event takes), once: the graphs are cached under
PROVGRAPH_INFRA_DIR (default `.infra/`, git-ignored) - `bench-lineage-<runs>-int.db` (the integer-keyed
schema of round 8; `bench-lineage-<runs>.db` is the older text-keyed one, kept for A/B), and the database
of a Neo4j instance of the bench's own per graph (`run/bench-lineage-<runs>/`, so the 1.5M and 10M
stores are both kept; Bolt port BENCH_LINEAGE_BOLT_PORT,
default 17690, heap BENCH_LINEAGE_HEAP 4g, page cache BENCH_LINEAGE_PAGECACHE 8g; started and stopped
by `scripts/infra/neo4j.sh`, never the shared test instance) - and reused when they hold this graph.
Build times are kept beside them (`bench-lineage-<runs>.json`) and printed with every result.
BENCH_LINEAGE_STORES (`sqlite,neo4j`) picks the stores.

Measured: `lineage(start, UPSTREAM, depth=10)` (dataset hops, the query the API's `lineage` field
runs) for 200 random outputs of the later half (after 20 warm-up walks), p50/p95 wall and CPU time per call:
first just after the store opened (a bench-started Neo4j reads its 10M store into an empty page cache
during this pass), then the same walks again (warm: the figure for a running server), then as of a time
after every event (`asOf` and `knownAt` set: the as-of path, same answers), to show what as-of reads cost.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import LiteralString

import neo4j
from server_cpu import cpu_s, neo4j_pid

from provgraph.events.facets import ArtifactDatasetFacet, BindingFacet, CodeJobFacet, DatasetVersionDatasetFacet
from provgraph.events.model import Dataset, DatasetFacets, EventType, Job, JobFacets, Run, RunEvent
from provgraph.events.settings import NOT_SETTINGS
from provgraph.events.synthetic import EPOCH, content_hash
from provgraph.graph import neo4j_cypher, neo4j_facets, sqlite_db
from provgraph.graph.contract import AsOf, LineageStore
from provgraph.graph.ids import NodeId, dataset_node_id
from provgraph.graph.neo4j_config import Neo4jConfig
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.projection import time_text
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_LINEAGE_RUNS", "500000"))
STORES = os.environ.get("BENCH_LINEAGE_STORES", "sqlite,neo4j").split(",")
INFRA = Path(os.environ.get("PROVGRAPH_INFRA_DIR", REPO / ".infra"))
BOLT_PORT = os.environ.get("BENCH_LINEAGE_BOLT_PORT", "17690")
NEO4J_ENV = {  # the bench's own instance (scripts/infra/neo4j.sh), beside the shared test one
    "PROVGRAPH_NEO4J_INSTANCE": f"bench-lineage-{RUNS}",
    "PROVGRAPH_NEO4J_BOLT_PORT": BOLT_PORT,
    "PROVGRAPH_NEO4J_HTTP_PORT": "0",
    "PROVGRAPH_NEO4J_HEAP": os.environ.get("BENCH_LINEAGE_HEAP", "4g"),
    "PROVGRAPH_NEO4J_PAGECACHE": os.environ.get("BENCH_LINEAGE_PAGECACHE", "8g"),  # the 10M store: 7.0 GB
}
assert set(NEO4J_ENV) <= NOT_SETTINGS
SAMPLES, WARMUP, DEPTH, JOBS = 200, 20, 10, 50
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


def inputs(seed: int = 0) -> Iterator[list[int]]:
    """The outputs run i reads, i = 0, 1, ...: a recent one and an arbitrary earlier one."""
    rng = random.Random(seed)
    for i in range(RUNS):
        yield sorted({rng.randrange(max(0, i - 1000), i), rng.randrange(0, i)}) if i else []


def _job(j: int) -> Job:
    return Job(
        namespace=NAMESPACE, name=f"job{j}", facets=JobFacets(code=CodeJobFacet(code_hash=_code(j), entrypoint="x"))
    )


def _code(j: int) -> str:
    return content_hash(f"j{j}")


def events(seed: int = 0) -> Iterator[RunEvent]:
    """One COMPLETE event per run: run i reads `inputs`, writes out i."""
    jobs = [_job(j) for j in range(JOBS)]
    for i, ins in enumerate(inputs(seed)):
        yield RunEvent(
            event_type=EventType.COMPLETE,
            event_time=EPOCH + timedelta(seconds=i),
            run=Run(run_id=f"bl-{i:08d}"),
            job=jobs[i % len(jobs)],
            inputs=[_dataset(k, False) for k in ins],
            outputs=[_dataset(i, True)],
        )


def bulk_sqlite(path: Path, chunk: int = 200_000) -> None:
    """Write the rows `apply(events())` writes straight into an empty store's tables, ~100x faster.

    For 10M nodes: applying 3.3M events takes hours on a shared 2-core machine. The rows are the
    projection's (tests/test_bench_lineage.py proves the canonical dump equal to `apply`'s).
    """
    conn = sqlite_db.connect(path)  # the graph's binding: one SQLite library per file in a process
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB
    # Secondary indexes are built after the rows (a sort each) rather than by millions of random inserts.
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("INSERT INTO project (name) VALUES (?)", (NAMESPACE,))
    used = range(min(JOBS, RUNS))
    conn.executemany("INSERT INTO job (namespace, name) VALUES (?, ?)", [(NAMESPACE, f"job{j}") for j in used])
    conn.executemany(
        "INSERT INTO job_version (namespace, name, code_hash, entrypoint) VALUES (?, ?, ?, 'x')",
        [(NAMESPACE, f"job{j}", _code(j)) for j in used],
    )
    node: list[str] = []
    runs: list[tuple[str | int, ...]] = []
    dsvs: list[tuple[str | int, ...]] = []
    datasets: list[tuple[str]] = []
    wrote: list[tuple[int | str, ...]] = []
    read: list[tuple[int | str, ...]] = []
    for i, ins in enumerate(inputs()):
        name, version = _out(i)
        node.append(dataset_node_id("file", name, version))
        when = time_text(EPOCH + timedelta(seconds=i))
        run_id = f"bl-{i:08d}"
        order = f"{0:012d}|{EPOCH + timedelta(seconds=i):%Y-%m-%dT%H:%M:%S.%f}"
        # integer keys: run i and its output are row i + 1 of their tables
        runs.append((run_id, f"job{i % JOBS}", _code(i % JOBS), f"1|{order}|COMPLETE", when, NAMESPACE, i + 1))
        dsvs.append((node[i], name, version, when, i + 1))
        datasets.append((name,))
        wrote.append((i + 1, i + 1, when))
        read += [(i + 1, k + 1, when) for k in ins]
        if len(runs) == chunk or i == RUNS - 1:
            conn.executemany(
                "INSERT INTO run (id, run_id, namespace, job_name, code_hash, entrypoint, state, state_key,"
                " started_at, last_event_at, ended_at, known_at, ended_known_at, has_start)"
                " VALUES (?7, ?1, ?6, ?2, ?3, 'x', 'COMPLETE', ?4, ?5, ?5, ?5, ?5, ?5, 0)",
                runs,
            )
            conn.executemany(
                "INSERT INTO dataset_version (id, node_id, namespace, name, version, kind, created_at, known_at)"
                " VALUES (?5, ?1, 'file', ?2, ?3, 'data', ?4, ?4)",
                dsvs,
            )
            conn.executemany("INSERT INTO dataset (namespace, name, kind) VALUES ('file', ?, 'data')", datasets)
            conn.executemany(
                "INSERT INTO wrote (run_ref, dsv_ref, binding, first_at, known_at) VALUES (?1, ?2, 'out', ?3, ?3)",
                wrote,
            )
            conn.executemany(  # every input names its version
                "INSERT INTO read (run_ref, dsv_ref, binding, first_at, known_at, unversioned)"
                " VALUES (?1, ?2, 'in', ?3, ?3, 0)",
                read,
            )
            runs, dsvs, datasets, wrote, read = [], [], [], [], []
            if (i + 1) % 1_000_000 == 0:
                print(f"  sqlite bulk: {i + 1:,} runs", flush=True)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.close()


# Neo4j's offline importer: one CSV per label and relationship type, read from the SQLite graph.
_NODES: dict[str, tuple[str, str]] = {  # label: (CSV header, SELECT of its rows)
    "Project": ("name:ID(Project)", "SELECT name FROM project"),
    "Job": (":ID(Job),namespace,name", "SELECT name, namespace, name FROM job"),
    "JobVersion": (
        ":ID(JobVersion),namespace,name,code_hash,entrypoint",
        "SELECT name, namespace, name, code_hash, entrypoint FROM job_version",
    ),
    "Run": (
        "run_id:ID(Run),namespace,job_name,code_hash,entrypoint,state,state_key,started_at,last_event_at,ended_at,"
        "known_at,ended_known_at,has_start:long",
        "SELECT run_id, namespace, job_name, code_hash, entrypoint, state, state_key, started_at, last_event_at,"
        " ended_at, known_at, ended_known_at, has_start FROM run",
    ),
    "Dataset": (":ID(Dataset),namespace,name,kind", "SELECT name, namespace, name, kind FROM dataset"),
    "DatasetVersion": (
        "node_id:ID(DatasetVersion),namespace,name,version,kind,created_at,known_at",
        "SELECT node_id, namespace, name, version, kind, created_at, known_at FROM dataset_version",
    ),
}
_RELATIONSHIPS: dict[str, tuple[str, str, str]] = {  # file: (type, CSV header, SELECT of its rows)
    "has_job": ("HAS_JOB", ":START_ID(Project),:END_ID(Job)", "SELECT namespace, name FROM job"),
    "job_version": ("HAS_VERSION", ":START_ID(Job),:END_ID(JobVersion)", "SELECT name, name FROM job_version"),
    "executed": ("EXECUTED", ":START_ID(Run),:END_ID(JobVersion)", "SELECT run_id, job_name FROM run"),
    "dataset_version": (
        "HAS_VERSION",
        ":START_ID(Dataset),:END_ID(DatasetVersion)",
        "SELECT name, node_id FROM dataset_version",
    ),
    "read": (
        "READ",
        ":START_ID(Run),:END_ID(DatasetVersion),binding,first_at,known_at",
        "SELECT r.run_id, v.node_id, e.binding, e.first_at, e.known_at FROM read e"
        " JOIN run r ON r.id = e.run_ref JOIN dataset_version v ON v.id = e.dsv_ref",
    ),
    "wrote": (
        "WROTE",
        ":START_ID(Run),:END_ID(DatasetVersion),binding,first_at,known_at",
        "SELECT r.run_id, v.node_id, e.binding, e.first_at, e.known_at FROM wrote e"
        " JOIN run r ON r.id = e.run_ref JOIN dataset_version v ON v.id = e.dsv_ref",
    ),
}


def import_neo4j(sqlite_path: Path, env: dict[str, str]) -> None:
    """Replace the stopped bench instance's database with the bench graph held in `sqlite_path`.

    Only for this bench's graph, whose ids are one-per-name (one namespace per label, one version per
    job and dataset); `neo4j-admin database import` writes the store files directly, minutes instead
    of hours of `apply`. The CSVs are deleted afterwards.
    """
    run_dir = INFRA / "run" / env["PROVGRAPH_NEO4J_INSTANCE"]
    csv_dir = INFRA / f"{env['PROVGRAPH_NEO4J_INSTANCE']}-csv"
    csv_dir.mkdir(exist_ok=True)
    args: list[str] = []
    t0 = time.perf_counter()
    try:
        src = sqlite_db.connect(sqlite_path, readonly=True)
        for kind, specs in (
            ("nodes", {label: (label, *spec) for label, spec in _NODES.items()}),
            ("relationships", _RELATIONSHIPS),
        ):
            for name, (typ, header, select) in specs.items():
                path = csv_dir / f"{name}.csv"
                with path.open("w", newline="") as f:
                    f.write(header + "\n")
                    csv.writer(f).writerows(src.execute(select))
                args.append(f"--{kind}={typ}={path}")
        src.close()
        print(f"  neo4j import: CSVs written in {time.perf_counter() - t0:.0f}s", flush=True)
        lib = INFRA / f"neo4j-{os.environ.get('PROVGRAPH_NEO4J_VERSION', '5.26.30')}" / "lib"
        subprocess.run(
            [
                "java",
                "-Xmx2g",
                "-cp",
                f"{lib}/*",
                "org.neo4j.cli.AdminTool",
                "database",
                "import",
                "full",
                "neo4j",  # before the options: --nodes and --relationships take several values
                "--overwrite-destination=true",
                "--threads=2",
                f"--report-file={run_dir / 'import.report'}",  # not the caller's working folder
                *args,
            ],
            env={**os.environ, "NEO4J_HOME": str(run_dir), "NEO4J_CONF": str(run_dir / "conf")},
            check=True,
            timeout=3600,
        )
        print(f"  neo4j import: store written in {time.perf_counter() - t0:.0f}s", flush=True)
    finally:
        shutil.rmtree(csv_dir, ignore_errors=True)


LATER = AsOf(as_of=EPOCH + timedelta(days=3650), known_at=EPOCH + timedelta(days=365_000))
"""After every event of the bench graph (and every ingestion, whenever it was built)."""


Figures = tuple[float, float, float, float, float, float]
"""Wall p50 and p95, CPU p50 and p95 of this process (ms), mean nodes per answer, and the server's
CPU a walk (ms; Neo4j's JVM, NaN for SQLite)."""

ServerCpu = Callable[[], float]
"""The server's CPU seconds so far (NaN when unknown)."""


def _no_server() -> float:
    return float("nan")


def starts() -> list[tuple[str, str]]:
    """The walks' start outputs (name, version), the same every pass and every store."""
    rng = random.Random(42)
    return [_out(rng.randrange(RUNS // 2, RUNS)) for _ in range(WARMUP + SAMPLES)]


def figures(times: list[float], cpus: list[float], sizes: list[int], server_s: float) -> Figures:
    q, c = statistics.quantiles(times, n=100), statistics.quantiles(cpus, n=100)
    return q[49], q[94], c[49], c[94], statistics.fmean(sizes), server_s * 1000 / (WARMUP + SAMPLES)


def measure(store: LineageStore, server: ServerCpu, at: AsOf | None = None) -> Figures:
    """Per walk: wall time, and this process's CPU time, which a loaded machine inflates far less (`at`:
    as of that time). SQLite's CPU is the whole walk's; Neo4j's is the client's share only."""
    times, cpus, sizes = [], [], []
    server0 = server()
    for n, output in enumerate(starts()):
        start = NodeId.dataset("file", *output)
        t0, c0 = time.perf_counter(), time.process_time()
        g = store.lineage(start, Direction.UPSTREAM, depth=DEPTH, at=at or AsOf())
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        if "time" in g.cut_codes:  # the walk's time budget (5 s) ran out: a busy machine or a cold cache
            print(f"  walk {n} from {start} cut by the time budget after {elapsed:.1f}s", flush=True)
        else:
            assert max(x.hop for x in g.nodes) == 2 * DEPTH, "the bench graph should be deep enough for every walk"
        if n >= WARMUP:
            times.append(elapsed * 1000)
            cpus.append(cpu * 1000)
            sizes.append(len(g.nodes))
    return figures(times, cpus, sizes, server() - server0)


def passes(name: str, note: str, store: LineageStore, server: ServerCpu = _no_server) -> list[tuple[str, str, Figures]]:
    """The walks three times: just after the store opened (its caches cold: a bench-started Neo4j's
    page cache is empty), again (warm, as a running server is: the figure the target is about), then
    as of a time after every event."""
    return [
        (f"{name} first pass", note, measure(store, server)),
        (name, "warm", measure(store, server)),
        (f"{name} as-of", "", measure(store, server, LATER)),
    ]


FLOOR_START: LiteralString = "MATCH (d:DatasetVersion {node_id: $id}) RETURN elementId(d) AS e"
FLOOR_HOPS: dict[bool, LiteralString] = {
    # from dataset versions (True) to the runs that wrote them, or from runs to what they read
    True: "UNWIND $ids AS id MATCH (d) WHERE elementId(d) = id"
    " MATCH (d)<-[:WROTE]-(r) RETURN collect(elementId(r)) AS far",
    False: "UNWIND $ids AS id MATCH (r) WHERE elementId(r) = id"
    " MATCH (r)-[:READ]->(d) RETURN collect(elementId(d)) AS far",
}


def floor_pass(uri: str, server: ServerCpu) -> Figures:
    """The floor under a Neo4j walk: the same starts, reaching the same nodes (this graph has no
    unversioned read, no failed run and no fan-out over the cap) by the least Cypher a hop - one
    statement per hop, element ids only (seeking a node by element id reads its record; by key, the
    uniqueness index: ~twice the server's CPU), no order, no time test - in one transaction a walk as
    the store's, and no answer built. What Neo4j costs to visit the nodes before any of the walk's rules."""
    times, cpus, sizes = [], [], []
    server0 = server()
    with neo4j.GraphDatabase.driver(uri, auth=None, notifications_min_severity="OFF") as driver:
        for n, output in enumerate(starts()):
            t0, c0 = time.perf_counter(), time.process_time()
            with driver.session() as s, s.begin_transaction() as tx:
                start = tx.run(FLOOR_START, id=dataset_node_id("file", *output)).single(strict=True)["e"]
                seen, frontier = {start}, [start]
                for hop in range(2 * DEPTH):
                    far = tx.run(FLOOR_HOPS[hop % 2 == 0], ids=frontier).single(strict=True)["far"]
                    frontier = [i for i in dict.fromkeys(far) if i not in seen]
                    seen.update(frontier)
            if n >= WARMUP:
                times.append((time.perf_counter() - t0) * 1000)
                cpus.append((time.process_time() - c0) * 1000)
                sizes.append(len(seen))
    return figures(times, cpus, sizes, server() - server0)


def _neo4j(action: str, instance: dict[str, str] = NEO4J_ENV) -> None:
    """`scripts/infra/neo4j.sh <action>` for the bench's own instance (or another one of its own)."""
    env = {**os.environ, **instance, "PYTHON": str(REPO / ".venv" / "bin" / "python")}
    subprocess.run([str(REPO / "scripts" / "infra" / "neo4j.sh"), action], env=env, check=True, timeout=900)


class BuildTimes:
    """Build seconds per store, kept beside the cached graphs so a reused graph still says its cost."""

    def __init__(self) -> None:
        self.path = INFRA / f"bench-lineage-{RUNS}.json"
        self.data: dict[str, float] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def note(self, store: str, built: float | None) -> str:
        if built is not None:
            self.data[store] = built
            self.path.write_text(json.dumps(self.data))
        known = self.data.get(store)
        when = "cached graph" if built is None else "built now"
        return f"{when}, build {known:.0f}s" if known is not None else f"{when}, build time unknown"


def sqlite_graph() -> tuple[Path, float | None]:
    """The cached SQLite graph, bulk-built first unless it holds this graph; its build time (None: reused)."""
    path = INFRA / f"bench-lineage-{RUNS}-int.db"
    sqlite = SqliteLineageStore(path)
    cached = sqlite.run(f"bl-{RUNS - 1:08d}") is not None and sqlite.run(f"bl-{RUNS:08d}") is None
    sqlite.close()
    if cached:
        return path, None
    for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        old.unlink(missing_ok=True)
    t0 = time.perf_counter()
    SqliteLineageStore(path).close()  # the schema
    bulk_sqlite(path)
    return path, time.perf_counter() - t0


def bench_sqlite(times: BuildTimes) -> tuple[int, list[tuple[str, str, Figures]]]:
    path, built = sqlite_graph()
    sqlite = SqliteLineageStore(path)
    try:
        note = times.note("sqlite", built)
        tables = ("run", "dataset_version", "dataset")
        nodes = sum(sqlite._all(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables)  # noqa: S608
        return nodes, passes("sqlite", note, sqlite)
    finally:
        sqlite.close()


def _neo4j_graph(uri: str) -> float | None:
    """Import the bench graph unless the instance holds it; the import + indexing time (None: reused)."""
    with neo4j.GraphDatabase.driver(uri, auth=None, notifications_min_severity="OFF") as driver:
        runs = driver.execute_query("MATCH (r:Run) RETURN count(r) AS n").records[0]["n"]
        last = driver.execute_query("MATCH (r:Run {run_id: $id}) RETURN count(r) AS n", id=f"bl-{RUNS - 1:08d}")
    if runs == RUNS and last.records[0]["n"] == 1:
        return None
    sqlite_path, _ = sqlite_graph()
    t0 = time.perf_counter()
    _neo4j("stop")
    import_neo4j(sqlite_path, NEO4J_ENV)
    _neo4j("start")
    t1 = time.perf_counter()
    with neo4j.GraphDatabase.driver(uri, auth=None, notifications_min_severity="OFF") as driver, driver.session() as s:
        for stmt in (*neo4j_cypher.SCHEMA, *neo4j_facets.SCHEMA):  # the store's own, populated before it opens
            s.run(stmt).consume()
        s.run("CALL db.awaitIndexes(7200)").consume()
    print(f"  neo4j import: indexes populated in {time.perf_counter() - t1:.0f}s", flush=True)
    return time.perf_counter() - t0


def bench_neo4j(times: BuildTimes) -> tuple[int, list[tuple[str, str, Figures]]]:
    uri = f"bolt://127.0.0.1:{BOLT_PORT}"
    _neo4j("start")
    try:
        note = times.note("neo4j", _neo4j_graph(uri))
        pid = neo4j_pid(NEO4J_ENV["PROVGRAPH_NEO4J_INSTANCE"])
        server: ServerCpu = (lambda: cpu_s(pid)) if pid else _no_server
        neo = Neo4jLineageStore(Neo4jConfig(uri=uri))
        try:
            counts = neo.count()
            nodes = counts["Run"] + counts["DatasetVersion"] + counts["Dataset"]
            results = passes("neo4j", note, neo, server)
        finally:
            neo.close()
        floor = floor_pass(uri, server)
        return nodes, [*results, ("neo4j floor", "the least statement a hop, element ids only", floor)]
    finally:
        _neo4j("stop")


def main() -> None:
    INFRA.mkdir(parents=True, exist_ok=True)
    gc_off()
    times = BuildTimes()
    for name, bench in (("sqlite", bench_sqlite), ("neo4j", bench_neo4j)):
        if name not in STORES:
            continue
        nodes, results = bench(times)
        parts = [
            f"{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (CPU p50 {c50:.1f} ms, p95 {c95:.1f} ms;"
            + ("" if srv != srv else f" server CPU {srv:.1f} ms/walk;")  # NaN: no server
            + f" {size:.0f} nodes/answer"
            + (f"; {b})" if b else ")")
            for label, b, (p50, p95, c50, c95, size, srv) in results
        ]
        print(
            f"upstream lineage, depth {DEPTH}, {SAMPLES} random starts, graph of {nodes:,} nodes: " + " | ".join(parts),
            flush=True,
        )


def gc_off() -> None:
    """Building allocates millions of objects that live until applied; cyclic GC only slows that down."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(1_000_000, 10, 10)


if __name__ == "__main__":
    main()
