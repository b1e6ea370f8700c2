"""The floor under the projector: Neo4j's CPU per event for the graph the store writes, against the
same graph written by CREATE alone; and what that floor leaves of the 50,000 events/s target.

Both arms write the same synthetic runs (`events.synthetic.workload`, 6 events a run) into an empty
graph with the store's schema, in batches of whole runs (BENCH_BATCH events, default 1,000):

- store: `Neo4jLineageStore.prepare` + the batch statement the projector runs (`BATCH`: MERGE of
  every node and edge, the stored-run branches, the owner check, the run links);
- floor: the same rows written by one statement that CREATEs every run, metric, parameter, dataset
  version and edge, looking up only the endpoints that exist before the batch (job versions and
  dataset versions read); what a writer that knew which keys are new, and trusted its input, would
  pay. The floor's graph is checked to hold the same nodes per label and the same edges per type
  (run-to-run links aside, which it does not make).

Arms alternate (BENCH_PASSES pairs, reset between), after BENCH_WARMUP_RUNS runs applied and reset
(a cold JVM spends about twice the CPU). CPU is the Neo4j JVM's, from /proc/<pid>/stat of the server
whose pid file the repo's infra script keeps (as `bench_projector`; none: no CPU figure). The store
arm is the store's own `apply_prepared` (one transaction a batch: batches stay under `MAX_ROWS_PER_TX`).
Also printed: `serde.loads` per event (the contract's validation, which the projector runs on every
record) and the rate two cores would allow if they did nothing but the floor and that validation.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, LiteralString

from server_cpu import cpu_s, neo4j_pid

from provgraph.events import serde
from provgraph.events.model import RunEvent
from provgraph.events.settings import load_settings
from provgraph.events.synthetic import workload
from provgraph.graph import neo4j_cypher as q
from provgraph.graph.neo4j_store import Neo4jLineageStore

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "6000"))
BATCH_EVENTS = int(os.environ.get("BENCH_BATCH", "1000"))
PASSES = int(os.environ.get("BENCH_PASSES", "3"))
WARMUP_RUNS = int(os.environ.get("BENCH_WARMUP_RUNS", "10000"))
CORES = 2

FLOOR: LiteralString = (
    q.MERGE_JOBS
    + """WITH count(*) AS _
CALL () {
  UNWIND $batch.job_versions AS row
  MATCH (j:Job {namespace: row.namespace, name: row.name})
  CREATE (j)-[:HAS_VERSION]->(:JobVersion {namespace: row.namespace, name: row.name, code_hash: row.code_hash})
}
CALL () {
  UNWIND $batch.dataset_versions AS row
  MERGE (d:Dataset {namespace: row.namespace, name: row.name})
  CREATE (d)-[:HAS_VERSION]->(v:DatasetVersion) SET v = row
}
CALL () {
  UNWIND $batch.runs AS row
  CREATE (r:Run) SET r = row.props
  WITH r, row
  CALL (r, row) {
    UNWIND row.code_hashes AS h
    MATCH (v:JobVersion {namespace: row.props.namespace, name: row.props.job_name, code_hash: h})
    CREATE (r)-[:EXECUTED]->(v)
  }
  CALL (r, row) {
    UNWIND row.reads AS e
    MATCH (v:DatasetVersion {node_id: e.dsv})
    CREATE (r)-[:READ {binding: e.binding, first_at: e.first_at, known_at: e.known_at}]->(v)
  }
  CALL (r, row) {
    UNWIND row.wrote AS e
    MATCH (v:DatasetVersion {node_id: e.dsv})
    CREATE (r)-[:WROTE {binding: e.binding, first_at: e.first_at, known_at: e.known_at}]->(v)
  }
  CALL (row) {
    UNWIND row.metrics AS p
    CREATE (:Metric {run_id: row.props.run_id, key: p.key, step: p.step, value: p.value, okey: p.okey})
  }
  CALL (row) {
    UNWIND row.param_rows AS p
    CREATE (:RunParam {run_id: row.props.run_id, key: p.key, num: p.num, str: p.str})
  }
}
RETURN 1"""
)
"""Every node and edge of the workload's batches, created; MERGE only for projects, jobs (a few,
shared by many runs) and datasets (a new dataset's MERGE is one lookup and a create, as a CREATE and
the MATCH its version's edge needs would be). Its lists travel in one map, as `BATCH`'s do: one plan."""

RUN_LISTS = ("param_rows", "label_rows", "code_hashes", "metrics", "logs", "reads", "wrote")
RUN_LINKS = {"CHILD_OF", "REPRODUCES", "CACHED_FROM"}


def run_batches(events: list[RunEvent]) -> list[list[RunEvent]]:
    """The events in batches of about BATCH_EVENTS, each run's events in one batch."""
    by_run: dict[str, list[RunEvent]] = {}
    for e in events:
        by_run.setdefault(e.run.run_id, []).append(e)
    runs = list(by_run.values())
    per = max(1, BATCH_EVENTS * len(runs) // len(events))
    return [[e for run in runs[i : i + per] for e in run] for i in range(0, len(runs), per)]


def floor_params(batch: dict[str, list[Any]], made: set[tuple[str, ...]]) -> dict[str, list[Any]]:
    """The CREATE statement's lists: only the job and dataset versions no earlier batch created."""
    job_versions = [v for v in batch["job_versions"] if (v["namespace"], v["name"], v["code_hash"]) not in made]
    dataset_versions = [{k: v for k, v in d.items() if v is not None} for d in batch["dataset_versions"]]
    dataset_versions = [d for d in dataset_versions if (d["node_id"],) not in made]
    made.update((v["namespace"], v["name"], v["code_hash"]) for v in job_versions)
    made.update((d["node_id"],) for d in dataset_versions)
    runs = [
        {"props": {k: v for k, v in r.items() if k not in RUN_LISTS and v is not None}, **{k: r[k] for k in RUN_LISTS}}
        for r in batch["runs"]
    ]
    assert not any(r["label_rows"] or r["logs"] for r in runs) and not batch["facets"], "the floor writes neither"
    return {"jobs": batch["jobs"], "job_versions": job_versions, "dataset_versions": dataset_versions, "runs": runs}


def shape(store: Neo4jLineageStore) -> tuple[dict[str, int], dict[str, int]]:
    nodes = {label: n for label, n in store.count().items() if n}
    with store._driver.session() as s:
        edges = {r["t"]: r["n"] for r in s.run("MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n")}
    return nodes, {t: n for t, n in edges.items() if t not in RUN_LINKS}


def write(store: Neo4jLineageStore, arm: str, events: list[RunEvent], pid: int | None) -> float:
    """Neo4j CPU seconds for writing `events` by `arm` into the empty graph."""
    prepared = [store.prepare(b) for b in run_batches(events)]
    made: set[tuple[str, ...]] = set()
    floors = [floor_params(b, made) for b in prepared] if arm == "floor" else []
    cpu0 = cpu_s(pid) if pid else float("nan")
    if arm == "store":
        for batch in prepared:
            store.apply_prepared(batch)
    else:
        with store._driver.session() as s:
            for p in floors:
                s.execute_write(lambda tx, p=p: tx.run(FLOOR, batch=p).consume())
    return (cpu_s(pid) if pid else float("nan")) - cpu0


def main() -> None:
    sys.path.insert(0, str(REPO))  # for tests.services
    from tests.services import ensure

    uri = ensure("neo4j")["PROVGRAPH_NEO4J_URI"]
    store = Neo4jLineageStore.from_settings(load_settings(neo4j_uri=uri))
    pid = neo4j_pid()
    store.warm_writes()
    store.reset()
    with store._driver.session() as s:  # plan the floor statement too
        s.run(FLOOR, batch={"jobs": [], "job_versions": [], "dataset_versions": [], "runs": []}).consume()
    warm = list(workload(WARMUP_RUNS, namespace="warm-up"))
    for i in range(0, len(warm), 5000):
        store.apply(warm[i : i + 5000])
    print(f"warmed Neo4j with {len(warm):,} events; load average {os.getloadavg()[0]:.1f}", flush=True)

    per_event: dict[str, list[float]] = {"store": [], "floor": []}
    shapes: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for p in range(PASSES):
        for arm in ("store", "floor"):
            store.reset()
            events = list(workload(RUNS, namespace=f"{arm}-{p}"))
            cpu = write(store, arm, events, pid)
            shapes[arm] = shape(store)
            per_event[arm].append(cpu / len(events) * 1e6)
            print(
                f"pass {p + 1} {arm}: Neo4j {per_event[arm][-1]:.0f} us an event ({len(events):,} events,"
                f" load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        assert shapes["floor"] == shapes["store"], shapes
    store.reset()
    store.close()

    bodies = [serde.dumps(e) for e in workload(2000)]
    serde.loads(bodies[0])
    t = time.process_time()
    for body in bodies:
        serde.loads(body)
    loads_us = (time.process_time() - t) / len(bodies) * 1e6
    store_us, floor_us = (statistics.median(per_event[a]) for a in ("store", "floor"))
    nodes, edges = shapes["store"]
    print(
        f"Neo4j CPU an event, median of {PASSES}: store's statement {store_us:.0f} us, CREATE-only floor"
        f" {floor_us:.0f} us (same {sum(nodes.values()):,} nodes, {sum(edges.values()):,} edges);"
        f" serde.loads {loads_us:.0f} us an event; {CORES} cores doing only those two:"
        f" {CORES * 1e6 / (floor_us + loads_us):,.0f} events/s at most (target 50,000)"
    )


if __name__ == "__main__":
    main()
