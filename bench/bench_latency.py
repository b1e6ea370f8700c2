"""(b) Emit -> queryable latency through Kafka and the projector into Neo4j, at a steady 500 events/s.

Needs the real services (`scripts/infra/services.sh up kafka neo4j`). Starts a projector process,
emits realistic runs (START, reads, writes, metrics, COMPLETE) at 500 events/s through the SDK's Kafka
transport for WARMUP + DURATION seconds, and for each run completed after the warm-up measures the
time from emitting its COMPLETE event until Neo4j answers that the run is COMPLETE.
Target: p99 < 250 ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import neo4j

from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.events.transport.factory import kafka_config
from provgraph.events.transport.kafka import KafkaTransport
from provgraph.graph.neo4j_config import Neo4jConfig
from provgraph.graph.neo4j_store import Neo4jLineageStore

RATE = 500
DURATION = float(os.environ.get("BENCH_SECONDS", "20"))
WARMUP = float(os.environ.get("BENCH_WARMUP_SECONDS", "10"))
"""Emitted first and not measured: the JVMs (Kafka, Neo4j) and the consumer group settle meanwhile."""


def main() -> None:
    kafka = os.environ.get("PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    neo4j_uri = os.environ.get("PROVGRAPH_NEO4J_URI", "bolt://127.0.0.1:17687")
    prefix = f"lat{uuid.uuid4().hex[:6]}."
    store = Neo4jLineageStore(Neo4jConfig(uri=neo4j_uri))
    store.reset()
    env = {
        **os.environ,
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "PROVGRAPH_NEO4J_URI": neo4j_uri,
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": prefix,
        "PROVGRAPH_STORE": "neo4j",
    }
    projector = subprocess.Popen(
        [sys.executable, "-m", "provgraph.services.projector"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    transport = KafkaTransport(
        kafka_config(Settings(home=Path(f"/tmp/{prefix}"), kafka_bootstrap_servers=kafka, kafka_topic_prefix=prefix))
    )
    latencies: list[float] = []
    pending: dict[str, float] = {}
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:
        """Every few ms, one query for all runs still awaited (so the probe itself adds little)."""
        with neo4j.GraphDatabase.driver(neo4j_uri, auth=None) as driver:
            while not done.is_set() or pending:
                with lock:
                    ids = list(pending)
                if ids:
                    found, _, _ = driver.execute_query(
                        "MATCH (r:Run) WHERE r.run_id IN $ids AND r.state = 'COMPLETE' RETURN r.run_id AS id", ids=ids
                    )
                    now = time.perf_counter()
                    with lock:
                        latencies.extend(now - pending.pop(rec["id"]) for rec in found)
                time.sleep(0.005)

    try:
        time.sleep(8)  # let the projector join its group before the clock starts
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        events = workload(int(RATE * (DURATION + WARMUP) / 6) + 1, namespace=prefix.rstrip("."))
        start = time.perf_counter()
        for i, event in enumerate(events):
            target = start + i / RATE
            if (delay := target - time.perf_counter()) > 0:
                time.sleep(delay)
            transport.emit(event)
            if event.event_type.is_terminal:
                transport.flush()
                if time.perf_counter() - start > WARMUP:
                    with lock:
                        pending[event.run.run_id] = time.perf_counter()
            if time.perf_counter() - start > WARMUP + DURATION:
                break
        sent_rate = (i + 1) / (time.perf_counter() - start)
        done.set()
        watcher.join(timeout=60)
    finally:
        projector.terminate()
        projector.wait(timeout=60)
        transport.close()
        store.close()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{len(latencies)} runs measured after {WARMUP:.0f}s of warm-up, {sent_rate:.0f} events/s emitted",
        file=sys.stderr,
    )
    print(
        f"emit -> queryable: p50 {q[49] * 1e3:.0f} ms, p99 {q[98] * 1e3:.0f} ms at {RATE} events/s"
        " (target p99 < 250 ms)"
    )


if __name__ == "__main__":
    main()
