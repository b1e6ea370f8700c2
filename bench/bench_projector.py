"""Graph projector throughput, Kafka → Neo4j, 1 vs 2 replicas, and full replay time.

(a) events/s: a topic (4 partitions) already holding >= 200,000 synthetic events
    (`events.synthetic.workload`), an empty graph, the projector started as its own process
    (`python -m provgraph.services.projector`, exactly what `provgraph projector` runs), then again
    as 2 such processes in one consumer group (BENCH_REPLICAS, default "1,2"); timed from process
    start until the group has committed the end offsets of every partition (commits follow the
    writes). The figure after the slash excludes start-up (import, Neo4j schema check, group join),
    timed from the first commit.
(d) replay: `replay_neo4j` (reset + re-read the whole topic with a fresh consumer) of the same events.

Neo4j is warmed up first (BENCH_WARMUP_RUNS runs, default 10,000 = 60,000 other events, applied
then reset), as a long-running server would be: a cold JVM spends about twice the CPU on its first
~100,000 events.

CPU per event of the projector processes and of Neo4j (read from /proc/<pid>/stat of the JVM whose
pid file the infra script keeps) say what bounds (a) and (d). Uses the services named by
PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS / PROVGRAPH_NEO4J_URI, else starts the repo's own (scripts/infra/)
and stops them at exit. Set BENCH_RUNS to change the size (6 events a run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from server_cpu import cpu_s, neo4j_pid

from provgraph.events import serde, topics
from provgraph.events.settings import load_settings
from provgraph.events.synthetic import workload
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.services.projector import replay_neo4j
from provgraph.services.projector.app import ensure_topics, tune_gc
from provgraph.services.projector.handlers import group_id

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "34000"))  # 6 events a run: 204,000 events
WARMUP_RUNS = int(os.environ.get("BENCH_WARMUP_RUNS", "10000"))
REPLICAS = tuple(int(r) for r in os.environ.get("BENCH_REPLICAS", "1,2").split(","))
PARTITIONS = 4


def _produce(servers: str, topic: str) -> int:
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=50, batch_size=1 << 20)
    n = 0
    for event in workload(RUNS, namespace="bench"):
        producer.send(topic, serde.dumps(event), key=event.root_run_id.encode())
        n += 1
    producer.flush()
    producer.close()
    return n


def _lag(watcher: KafkaConsumer, tps: list[TopicPartition]) -> int:
    """Records not yet committed by the watcher's group (it never joins the group, it only asks)."""
    ends = watcher.end_offsets(tps)
    return sum(ends[tp] - (watcher.committed(tp, metadata=False) or 0) for tp in tps)


def _delete_group(servers: str, group: str) -> None:
    """Forget the group's committed offsets, so the next projectors start from the beginning."""
    admin = KafkaAdminClient(bootstrap_servers=servers)
    try:
        admin.delete_groups([group])
    finally:
        admin.close()


def _project(
    replicas: int, env: dict[str, str], watcher: KafkaConsumer, tps: list[TopicPartition], n: int
) -> tuple[float, float, float, float]:
    """`replicas` projector processes in one group from offset 0 until every offset is committed:
    (wall s, wall s from the first commit, projector CPU s (all replicas), Neo4j CPU s)."""
    server = neo4j_pid()
    neo4j_cpu0 = cpu_s(server) if server else float("nan")
    t0 = time.perf_counter()
    logs = Path(env["PROVGRAPH_HOME"])
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(replicas):
        with (logs / f"projector-x{replicas}-{i}.log").open("wb") as log:  # the child keeps its own copy
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "provgraph.services.projector"],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    first: float | None = None
    try:
        while (lag := _lag(watcher, tps)) > 0:
            if first is None and lag < n:
                first = time.perf_counter()
            for proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"projector exited with {proc.returncode}")
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        steady = time.perf_counter() - (first or t0)
        projector_cpu = sum(cpu_s(p.pid) for p in procs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    neo4j_cpu = (cpu_s(server) - neo4j_cpu0) if server else float("nan")
    return wall, steady, projector_cpu, neo4j_cpu


def main() -> None:
    sys.path.insert(0, str(REPO))  # for tests.services
    from tests.services import ensure

    servers = ensure("kafka")["PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS"]
    uri = ensure("neo4j")["PROVGRAPH_NEO4J_URI"]
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": servers,
        "PROVGRAPH_NEO4J_URI": uri,
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": prefix,
        "PROVGRAPH_KAFKA_PARTITIONS": str(PARTITIONS),
        "PROVGRAPH_STORE": "neo4j",
        "PROVGRAPH_HOME": str(REPO / ".infra" / "bench-home"),
    }
    settings = load_settings(
        kafka_bootstrap_servers=servers,
        neo4j_uri=uri,
        kafka_topic_prefix=prefix,
        kafka_partitions=PARTITIONS,
        home=env["PROVGRAPH_HOME"],
    )
    ensure_topics(settings)
    topic = topics.topic(topics.LINEAGE, prefix)
    t0 = time.perf_counter()
    n = _produce(servers, topic)
    print(f"filled {topic} ({PARTITIONS} partitions) with {n:,} events in {time.perf_counter() - t0:.1f}s", flush=True)

    store = Neo4jLineageStore.from_settings(settings)
    # Warm the server (JIT-compiled Cypher runtime, plan cache) as a long-running Neo4j would be;
    # a cold JVM spends twice the CPU on the first ~100k events.
    warm = list(workload(WARMUP_RUNS, namespace="warm-up"))
    for i in range(0, len(warm), 5000):
        store.apply(warm[i : i + 5000])
    print(f"warmed Neo4j with {len(warm):,} events", flush=True)
    watcher = KafkaConsumer(bootstrap_servers=servers, group_id=group_id(settings), enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in sorted(watcher.partitions_for_topic(topic) or ())]
    counts: dict[str, int] = {}
    for replicas in REPLICAS:
        store.reset()
        _delete_group(servers, group_id(settings))
        wall, steady, projector_cpu, neo4j_cpu = _project(replicas, env, watcher, tps, n)
        counts = store.count()
        assert counts["Run"] == RUNS, counts
        print(
            f"(a) projector x{replicas}: {n:,} events in {wall:.1f}s = {n / wall:,.0f} ev/s"
            f" / {n / steady:,.0f} ev/s without start-up | cpu per event: projector {projector_cpu / n * 1e6:.0f} us,"
            f" neo4j {neo4j_cpu / n * 1e6:.0f} us ({os.cpu_count()} cores)",
            flush=True,
        )

    tune_gc()
    server = neo4j_pid()
    neo4j_cpu0 = cpu_s(server) if server else float("nan")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    replayed = replay_neo4j(settings, store=store)
    replay_s = time.perf_counter() - t0
    replay_cpu = time.process_time() - cpu0
    neo4j_cpu = (cpu_s(server) - neo4j_cpu0) if server else float("nan")
    assert replayed == n and store.count() == counts
    store.close()
    watcher.close()

    print(
        f"(d) replay of {replayed:,} events: {replay_s:.1f}s = {replayed / replay_s:,.0f} ev/s | cpu per event:"
        f" replayer {replay_cpu / n * 1e6:.0f} us, neo4j {neo4j_cpu / n * 1e6:.0f} us | graph: {counts['Run']:,} runs,"
        f" {counts['DatasetVersion']:,} dataset versions"
    )


if __name__ == "__main__":
    main()
