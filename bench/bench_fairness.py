"""Fair shares: a simple query's latency alone, and while 4 clients hammer aliased lineage queries.

A real `provgraph serve` process (its own interpreter, so clients and server do not share a GIL)
over an embedded graph of BENCH_RUNS (1500) synthetic runs; 5 API tokens. The 4 costly clients
(2 connections each) send 8 aliased downstream walks (depth 6) in a loop; the 5th client sends
`run(id)` BENCH_N (200) times. Prints p50/p90/p99 of the simple query alone and under load, and
how the costly queries were answered (200 or 429). BENCH_LIMITS=off serves with the limits
effectively off (huge shares and walk slots), for comparison; BENCH_API_<SETTING>=n sets an
integer `api_*` setting of the server (e.g. BENCH_API_COSTLY_STORE_CALLS=1).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import serve

from provgraph.api.auth import TokenStore
from provgraph.events.settings import Settings
from provgraph.events.synthetic import content_hash, workload
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.factory import embedded_projector

RUNS = int(os.environ.get("BENCH_RUNS", "1500"))
N = int(os.environ.get("BENCH_N", "200"))
LIMITS_OFF = os.environ.get("BENCH_LIMITS") == "off"
COSTLY = (
    "query { "
    + " ".join(
        f'w{i}: lineage(node: "dataset:file:/data/source{i}.csv@{content_hash(f"source{i}")}",'
        " direction: DOWNSTREAM, depth: 6, fanOutLimit: 500) { partial nodes { id } }"
        for i in range(8)
    )
    + " }"
)
SIMPLE = 'query { run(id: "bench-run-00000042") { runId state params } }'


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:7.1f} ms   p90 {q[89] * 1000:7.1f} ms   p99 {q[98] * 1000:7.1f} ms"


def simple_latencies(client: httpx.Client, url: str) -> list[float]:
    out = []
    for _ in range(N):
        t0 = time.perf_counter()
        response = client.post(url, json={"query": SIMPLE})
        out.append(time.perf_counter() - t0)
        assert response.status_code == 200 and response.json()["data"]["run"], response.text
    return out


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-fair-"))
    log = SqliteEventLog(home / "events.db")
    log.append(list(workload(RUNS, namespace="bench")))
    log.close()
    embedded_projector(Settings(home=home)).sync()
    tokens = TokenStore(home / "tokens.db")
    issued = [tokens.create(["bench"], name=f"c{i}")[1] for i in range(5)]
    tokens.close()
    # The `provgraph serve` child reads ./provgraph.toml (bench_api.serve passes no PROVGRAPH_* variables).
    limits = {"api_client_costly_cost": 10**9, "api_costly_store_calls": 1000} if LIMITS_OFF else {}
    limits.update({k[6:].lower(): int(v) for k, v in os.environ.items() if k.startswith("BENCH_API_")})
    (home / "provgraph.toml").write_text("".join(f"{k} = {v}\n" for k, v in limits.items()))
    os.chdir(home)
    answered: dict[int, int] = {}
    stop = threading.Event()
    with serve(Settings(home=home)) as base:
        url = base + "/graphql"
        clients = [httpx.Client(headers={"Authorization": f"Bearer {t}"}, timeout=120) for t in issued]
        *costly, simple = clients
        for _ in range(20):
            simple.post(url, json={"query": SIMPLE})
        alone = simple_latencies(simple, url)

        def hammer(client: httpx.Client) -> None:
            while not stop.is_set():
                status = client.post(url, json={"query": COSTLY}).status_code
                answered[status] = answered.get(status, 0) + 1

        workers = [threading.Thread(target=hammer, args=(c,)) for c in costly for _ in range(2)]
        for w in workers:
            w.start()
        time.sleep(1)  # let the load build up
        loaded = simple_latencies(simple, url)
        stop.set()
        for w in workers:
            w.join()
        for c in clients:
            c.close()
    print(f"fair shares {'OFF' if LIMITS_OFF else 'on'} {limits}; graph of {RUNS} runs; {N} simple queries each")
    print(f"  simple query alone:              {percentiles(alone)}")
    print(f"  simple query, 4 costly clients:  {percentiles(loaded)}")
    print(f"  costly queries answered: {dict(sorted(answered.items()))}")


if __name__ == "__main__":
    main()
