"""(b) Emit -> visible to a read-your-writes query, through Kafka, the projector and Neo4j.

Needs the real services (`scripts/infra/services.sh up kafka neo4j`). Starts a projector process
and an API process (`provgraph serve`), then for each offered rate (100, 500, 2,000 events/s;
`BENCH_RATES`) an emitter PROCESS sends realistic runs (START, reads, writes, metrics, COMPLETE)
paced to that rate for WARMUP + DURATION seconds. It stands for many SDK processes at once: it sends
asynchronously (acks=all, keyed by root run as the transport does) instead of waiting for each ack
as one SDK process does, so it really sustains the rate (the achieved rate is printed).

For up to `SAMPLED_PER_S` runs a second (`BENCH_SAMPLED_PER_S`, 40) completed after the warm-up,
the emitter reports its COMPLETE record's position (`kafka:topic:partition:offset`, what
`RunResult.position` holds) once Kafka acknowledges it; this process then asks the API for the run
with `@consistentWith(token:)`, which answers once the projector has published that position.
Latency = from the emitter's send of the COMPLETE event to the answer (the run COMPLETE, checked):
nothing polls Neo4j but the API's one shared progress reader. Printed beside it: the Kafka ack part
(send -> acknowledged, acks=all), the projector's batches and the 1-minute load average.
Target: p99 < 250 ms at a sustained 500 events/s.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from provgraph.events import serde, topics
from provgraph.events.consistency import Position
from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.services.projector.app import ensure_topics

RATES = tuple(int(r) for r in os.environ.get("BENCH_RATES", "100,500,2000").split(","))
DURATION = float(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = float(os.environ.get("BENCH_WARMUP_SECONDS", "3"))
"""Emitted first and not measured (batch sizes and connections settle)."""
SAMPLED_PER_S = int(os.environ.get("BENCH_SAMPLED_PER_S", "40"))
"""Runs measured per second at most: the queries stay a small load next to the writes."""
EVENTS_PER_RUN = 6
QUERY = "query Q($t: String!, $i: ID!) @consistentWith(token: $t) { run(id: $i) { state } }"
PROJECTOR = (  # `python -m provgraph.services.projector` with its one line per batch (DEBUG) logged
    "import logging; logging.basicConfig(level=logging.INFO);"
    "logging.getLogger('provgraph.services.projector').setLevel(logging.DEBUG);"
    "from provgraph.events.settings import load_settings; from provgraph.services.projector.app import run_projector;"
    "run_projector(load_settings())"
)
BATCH_LINE = re.compile(rb"(prepared|wrote) (\d+) records in ([0-9.]+)s")


def batches(log: bytes) -> str:
    """The projector's batches in `log`: how many, their size, prepare and write(+progress) times."""
    found: dict[bytes, list[tuple[int, float]]] = {b"prepared": [], b"wrote": []}
    for m in BATCH_LINE.finditer(log):
        found[m[1]].append((int(m[2]), float(m[3])))
    wrote, prepared = found[b"wrote"], found[b"prepared"]
    if not wrote or not prepared:
        return "projector: no batch logged"
    w = sorted(t for _, t in wrote)
    p = sorted(t for _, t in prepared)
    return (
        f"projector: {len(wrote)} batches of median {statistics.median(n for n, _ in wrote):.0f} records;"
        f" prepare p50 {statistics.median(p) * 1e3:.0f} ms, write + progress p50 {statistics.median(w) * 1e3:.0f} ms,"
        f" max {w[-1] * 1e3:.0f} ms"
    )


def emit(kafka: str, topic: str, rate: int, namespace: str, out: Any) -> None:
    """The emitter process: `rate` events/s for WARMUP + DURATION s; COMPLETE positions of sampled runs to `out`."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=1, enable_idempotence=True)
    every = max(1, round(rate / EVENTS_PER_RUN / SAMPLED_PER_S))
    runs = int(rate * (WARMUP + DURATION) / EVENTS_PER_RUN) + 2
    sent = 0
    start = time.monotonic()
    for i, event in enumerate(workload(runs, namespace=namespace)):
        if (delay := start + i / rate - time.monotonic()) > 0:
            time.sleep(delay)
        elif time.monotonic() - start > WARMUP + DURATION:
            break
        future = producer.send(topic, key=event.root_run_id.encode(), value=serde.dumps(event))
        sent += 1
        run_no = int(event.run.run_id.rsplit("-", 1)[1])
        if event.event_type.is_terminal and run_no % every == 0 and time.monotonic() - start > WARMUP:
            sent_at, run_id = time.monotonic(), event.run.run_id

            def report(md: Any, sent_at: float = sent_at, run_id: str = run_id) -> None:
                position = str(Position.kafka(md.topic, md.partition, md.offset))
                out.put((sent_at, time.monotonic(), position, run_id))

            future.add_callback(report)
        if time.monotonic() - start > WARMUP + DURATION:
            break
    producer.flush()
    out.put(("done", sent, time.monotonic() - start))
    producer.close()


async def measure(url: str, out: Any) -> tuple[list[float], list[float], int, float, int]:
    """Query each reported run with its token; (latencies, Kafka acks, events sent, seconds, answers not COMPLETE)."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    acks: list[float] = []
    wrong = 0
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=200)) as client:

        async def one(sent_at: float, acked_at: float, token: str, run_id: str) -> None:
            nonlocal wrong
            acks.append(acked_at - sent_at)
            try:
                answer = await client.post("/graphql", json={"query": QUERY, "variables": {"t": token, "i": run_id}})
            except httpx.HTTPError as exc:
                print(f"query failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                wrong += 1
                return
            latencies.append(time.monotonic() - sent_at)
            body = answer.json()
            if (body.get("data") or {}).get("run") != {"state": "COMPLETE"}:
                if not wrong:
                    print(f"first answer that is not the run COMPLETE: {body}", file=sys.stderr)
                wrong += 1

        while True:
            item = await loop.run_in_executor(None, out.get)
            if item[0] == "done":
                await asyncio.gather(*tasks)
                return latencies, acks, int(item[1]), float(item[2]), wrong
            tasks.append(asyncio.create_task(one(*item)))


def settle(url: str, kafka: str, topic: str, name: str) -> float:
    """Send one run and wait until a `@consistentWith` read sees it: the projector has joined its group
    and drained what earlier rates left (every partition). Returns the seconds it took."""
    from kafka import KafkaProducer

    started = time.monotonic()
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    partitions = sorted(producer.partitions_for(topic))
    tokens: list[tuple[str, str]] = []
    for p in partitions:
        for event in workload(1, namespace=f"{name}-p{p}"):
            md = producer.send(topic, key=event.root_run_id.encode(), value=serde.dumps(event), partition=p).get(30)
            if event.event_type.is_terminal:
                tokens.append((str(Position.kafka(md.topic, md.partition, md.offset)), event.run.run_id))
    producer.close()
    for token, run_id in tokens:
        while True:
            answer = httpx.post(
                f"{url}/graphql", json={"query": QUERY, "variables": {"t": token, "i": run_id}}, timeout=60
            )
            if (answer.json().get("data") or {}).get("run") == {"state": "COMPLETE"}:
                break
            if time.monotonic() - started > 300:
                raise SystemExit(f"the projector did not project {token} within 300 s: {answer.text}")
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"the API process exited ({process.returncode})")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the API did not start")


def main() -> None:
    kafka = os.environ.get("PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    neo4j_uri = os.environ.get("PROVGRAPH_NEO4J_URI", "bolt://127.0.0.1:17687")
    prefix = f"lat{uuid.uuid4().hex[:6]}."
    home = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    settings = Settings(
        home=home, store="neo4j", kafka_bootstrap_servers=kafka, kafka_topic_prefix=prefix, neo4j_uri=neo4j_uri
    )
    store = Neo4jLineageStore.from_settings(settings)
    store.reset()
    store.close()
    ensure_topics(settings)
    topic = topics.topic(topics.LINEAGE, prefix)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")},
        "PROVGRAPH_HOME": str(home),
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "PROVGRAPH_NEO4J_URI": neo4j_uri,
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": prefix,
        "PROVGRAPH_STORE": "neo4j",
    }
    port = free_port()
    quiet = subprocess.DEVNULL
    with (home / "projector.log").open("wb") as projector_log:
        projector = subprocess.Popen([sys.executable, "-c", PROJECTOR], env=env, stdout=quiet, stderr=projector_log)
    api_log = (home / "api.log").open("wb")
    api = subprocess.Popen(
        [sys.executable, "-m", "provgraph.cli", "serve", "--insecure-local", "--port", str(port)],
        env=env,
        stdout=api_log,
        stderr=api_log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, api)
        ctx = mp.get_context("spawn")
        for rate in RATES:
            waited = settle(url, kafka, topic, f"{prefix.rstrip('.')}-settle{rate}")
            print(f"projector settled in {waited:.1f}s", file=sys.stderr)
            out = ctx.Queue()
            emitter = ctx.Process(target=emit, args=(kafka, topic, rate, f"{prefix.rstrip('.')}-r{rate}", out))
            logged = (home / "projector.log").stat().st_size
            emitter.start()
            latencies, acks, sent, seconds, wrong = asyncio.run(measure(url, out))
            emitter.join(60)
            with (home / "projector.log").open("rb") as projector_log:
                projector_log.seek(logged)
                print(f"       {batches(projector_log.read())}", file=sys.stderr)
            if api.poll() is not None:
                raise SystemExit(f"the API process died; its log: {home / 'api.log'}")
            q, a = statistics.quantiles(latencies, n=100), statistics.quantiles(acks, n=100)
            print(
                f"{rate:>5} events/s offered, {sent / seconds:.0f} sustained: emit -> visible (consistentWith)"
                f" p50 {q[49] * 1e3:.0f} ms, p99 {q[98] * 1e3:.0f} ms over {len(latencies)} runs"
                f" (of which Kafka ack p50 {a[49] * 1e3:.0f} ms, p99 {a[98] * 1e3:.0f} ms)"
                + (f", {wrong} answers not COMPLETE" if wrong else "")
                + f"; load {os.getloadavg()[0]:.1f}"
            )
            sys.stdout.flush()
    finally:
        for process in (api, projector):
            process.terminate()
            process.wait(timeout=60)
    print("target: p99 < 250 ms at a sustained 500 events/s", file=sys.stderr)


if __name__ == "__main__":
    main()
