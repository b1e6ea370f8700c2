"""(d) The GraphQL API over HTTP, on a 100,000-node graph, for both stores.

A real `provgraph serve` process (its own interpreter, so client and server do not share a GIL)
with a bearer token, queried with httpx:
  - lineage depth 5, p50/p95: upstream from random late outputs ("what produced this?") and
    downstream from random early datasets ("what did it feed?", fanOutLimit 100);
  - `runs` page of 100 (random pages via cursors), p50/p95;
  - `producedBy` requests/s with 4 concurrent clients (4 processes, one connection each).
Targets (issue 4, Neo4j): lineage p95 < 30 ms, runs p95 < 20 ms.

Graph: `events.synthetic.workload(50_000)`, each run reads 2 datasets and writes 1: 50,000 runs +
50,010 dataset versions. SQLite is the embedded projection of the event log; Neo4j is loaded with
`apply` and is RESET first — point PROVGRAPH_NEO4J_URI at a database you can wipe. Without it,
`scripts/infra/neo4j.sh start` brings up the repo's own (and this stops it again if it started it).
BENCH_RUNS (50000), BENCH_N (300 requests per latency figure), BENCH_SECONDS (5) and
BENCH_STORES (sqlite,neo4j) tune it.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import httpx

from provgraph.api.auth import TokenStore
from provgraph.api.server import free_port
from provgraph.events.settings import Settings
from provgraph.events.synthetic import content_hash, workload
from provgraph.events.transport.sqlite import SqliteEventLog

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "50000"))
N = int(os.environ.get("BENCH_N", "300"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
STORES = os.environ.get("BENCH_STORES", "sqlite,neo4j").split(",")
NAMESPACE = "bench"

LINEAGE = """query($n: ID!, $d: Direction!) { lineage(node: $n, direction: $d, depth: 5, fanOutLimit: 100) {
  partial nodes { id kind hop label } edges { source target kind } } }"""
RUNS_PAGE = """query($after: String) { runs(first: 100, after: $after) {
  edges { cursor node { runId jobName state startedAt params } } pageInfo { hasNextPage endCursor } } }"""
PRODUCED_BY = """query($name: String!, $v: String!) { producedBy(namespace: "file", name: $name, version: $v) {
  runId state params jobVersion { codeHash gitCommit } inputs { name version binding } } }"""


def output(i: int) -> tuple[str, str]:
    return f"/data/out{i}.parquet", content_hash(f"{NAMESPACE}-out{i}")


def batches(size: int = 5000) -> Iterator[list[Any]]:
    events = workload(RUNS, namespace=NAMESPACE)
    while batch := list(islice(events, size)):
        yield batch


def load_sqlite(settings: Settings) -> None:
    log = SqliteEventLog(settings.events_db)
    for batch in batches():
        log.append(batch)
    log.close()
    from provgraph.graph.factory import embedded_projector

    embedded_projector(settings).sync()


def load_neo4j(settings: Settings) -> None:
    from provgraph.graph.neo4j_store import Neo4jLineageStore

    store = Neo4jLineageStore.from_settings(settings)
    try:
        store.reset()
        for batch in batches():
            store.apply(batch)
    finally:
        store.close()


@contextmanager
def neo4j_uri() -> Iterator[str]:
    if uri := os.environ.get("PROVGRAPH_NEO4J_URI"):
        yield uri
        return
    script = str(REPO / "scripts" / "infra" / "neo4j.sh")
    running = subprocess.run([script, "status"], capture_output=True, check=False).returncode == 0
    if not running:
        subprocess.run([script, "start"], check=True, capture_output=True)
    try:
        yield "bolt://127.0.0.1:17687"
    finally:
        if not running:
            subprocess.run([script, "stop"], check=False, capture_output=True)


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(settings.home), PROVGRAPH_STORE=settings.store)
    if settings.neo4j_uri:
        env["PROVGRAPH_NEO4J_URI"] = settings.neo4j_uri
    cli = Path(sys.executable).parent / "provgraph"
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"provgraph serve did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def produced_by_client(args: tuple[str, str, int]) -> tuple[int, float]:
    """One client process: `producedBy` of random outputs for SECONDS; (requests, seconds)."""
    url, token, seed = args
    rng = random.Random(seed)
    done = 0
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < SECONDS:
            name, version = output(rng.randrange(RUNS))
            timed(client, url, PRODUCED_BY, {"name": name, "v": version})
            done += 1
    return done, elapsed


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000


def timed(client: httpx.Client, url: str, query: str, variables: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    response = client.post(url, json={"query": query, "variables": variables})
    elapsed = time.perf_counter() - t0
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"query failed: {response.status_code} {body}")
    return elapsed, body["data"]


def latency(client: httpx.Client, url: str, query: str, variables: Callable[[], dict[str, Any]]) -> tuple[float, float]:
    for _ in range(20):  # warm caches, connections and the query cache
        timed(client, url, query, variables())
    return percentiles([timed(client, url, query, variables())[0] for _ in range(N)])


def bench_store(store: str, home: Path, uri: str | None) -> dict[str, Any]:
    settings = Settings.model_validate({"home": home, "store": store, "neo4j_uri": uri})
    t0 = time.perf_counter()
    (load_neo4j if store == "neo4j" else load_sqlite)(settings)
    load_s = time.perf_counter() - t0
    tokens = TokenStore(settings.tokens_db)
    _, token = tokens.create([NAMESPACE], name="bench")
    tokens.close()
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)
    with serve(settings) as base, httpx.Client(headers=headers, timeout=60) as client:
        url = base + "/graphql"

        def late_output() -> dict[str, Any]:
            name, version = output(rng.randrange(RUNS // 2, RUNS))
            return {"n": f"dataset:file:{name}@{version}", "d": "UPSTREAM"}

        def early_output() -> dict[str, Any]:
            name, version = output(rng.randrange(RUNS // 10, RUNS // 5))
            return {"n": f"dataset:file:{name}@{version}", "d": "DOWNSTREAM"}

        _, sample = timed(client, url, LINEAGE, late_output())
        up = latency(client, url, LINEAGE, late_output)
        down = latency(client, url, LINEAGE, early_output)
        _, down_sample = timed(client, url, LINEAGE, early_output())

        cursors: list[str | None] = [None]
        for _ in range(30):
            _, page = timed(client, url, RUNS_PAGE, {"after": cursors[-1]})
            cursors.append(page["runs"]["pageInfo"]["endCursor"])
        runs = latency(client, url, RUNS_PAGE, lambda: {"after": rng.choice(cursors)})

        with ProcessPoolExecutor(4) as pool:  # 4 client processes: the clients' GIL is not the bottleneck
            counts = list(pool.map(produced_by_client, [(url, token, k) for k in range(4)]))
        rps = sum(n for n, _ in counts) / max(s for _, s in counts)
    up_graph, down_graph = sample["lineage"], down_sample["lineage"]
    print(
        f"{store}: loaded in {load_s:.0f} s; a depth-5 walk: upstream {len(up_graph['nodes'])} nodes,"
        f" downstream {len(down_graph['nodes'])} nodes (partial={down_graph['partial']})",
        file=sys.stderr,
    )
    return {"up": up, "down": down, "runs": runs, "rps": rps}


def main() -> None:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for store in STORES:
            home = Path(tmp) / store
            if store == "neo4j":
                with neo4j_uri() as uri:
                    results[store] = bench_store(store, home, uri)
            else:
                results[store] = bench_store(store, home, None)
    parts = []
    for store, r in results.items():
        parts.append(
            f"{store}: lineage depth 5 up p50/p95 {r['up'][0]:.1f}/{r['up'][1]:.1f} ms,"
            f" down p50/p95 {r['down'][0]:.1f}/{r['down'][1]:.1f} ms; runs page of 100 p50/p95"
            f" {r['runs'][0]:.1f}/{r['runs'][1]:.1f} ms; producedBy {r['rps']:,.0f} req/s (4 clients)"
        )
    print(
        f"API over HTTP, {RUNS:,} runs / ~{2 * RUNS:,} nodes: "
        + " | ".join(parts)
        + " (targets on neo4j: lineage p95 < 30 ms, runs p95 < 20 ms)"
    )


if __name__ == "__main__":
    main()
