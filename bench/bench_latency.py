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
(send -> acknowledged, acks=all), the projector's batches and the 1-minute load average, then the
stages of emit -> visible, p50 / p99 each: the projector's DEBUG line per batch (when it was handed
over, prepared, its write started, ended, progress published) and the API watcher's DEBUG line per
progress move, matched to the sampled runs by position; and the projector's and the API's CPU time
while the emitter ran (per event sent: a figure less bound to the machine's load than the wall times).
Target: p99 < 250 ms at a sustained 500 events/s.
"""

from __future__ import annotations

import asyncio
import itertools
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
API = (  # `provgraph serve --insecure-local --port PORT` with the watcher's line per progress move (DEBUG)
    "import logging, sys; logging.basicConfig(level=logging.WARNING);"
    "logging.getLogger('provgraph.api.consistency').setLevel(logging.DEBUG);"
    "sys.argv = ['provgraph', 'serve', '--insecure-local', '--port', sys.argv[1]];"
    "from provgraph.cli import main; main()"
)
BATCH_LINE = re.compile(rb"batch of (\d+) records \[([^\]]*)\] at ([0-9.]+): ((?:\w+ \+[0-9.]+,? )+)ms")
PROGRESS_LINE = re.compile(rb"progress at ([0-9.]+): (.*)")
STAGES = {
    ("sent", "acked"): "Kafka ack",
    ("acked", "received"): "ack -> projector has it",
    ("received", "prepared"): "prepare",
    ("prepared", "writing"): "wait for the previous write",
    ("writing", "published"): "graph write + progress",
    ("writing", "written"): "graph write",
    ("written", "published"): "progress write",
    ("published", "seen"): "API watcher sees it",
    ("seen", "answered"): "query answers",
}
"""emit -> visible, cut at the timestamps the pieces log (wall clock, one machine): the projector's
batch line (`services/projector/handlers.py`, received ... published) and the API watcher's line when
the progress moved (`api/consistency.py`)."""

Sample = tuple[float, float, str, str, float]
"""A run read back: (sent, acknowledged, position, run id, answered), wall-clock seconds."""


class Batch:
    """One projector batch from its DEBUG line: partitions' offset spans and its stage times."""

    def __init__(self, m: re.Match[bytes]) -> None:
        self.size = int(m[1])
        self.spans: dict[str, tuple[int, int]] = {}
        for span in m[2].decode().split():
            stream, _, offsets = span.rpartition("@")
            first, _, last = offsets.partition("-")
            self.spans[stream] = (int(first), int(last))
        received = float(m[3])
        self.times = {"received": received}
        for step in m[4].decode().rstrip(", ").split(", "):
            name, _, ms = step.partition(" +")
            self.times[name] = received + float(ms) / 1e3

    def holds(self, stream: str, offset: int) -> bool:
        first, last = self.spans.get(stream, (1, 0))
        return first <= offset <= last


def batches(log: bytes) -> list[Batch]:
    return [Batch(m) for m in BATCH_LINE.finditer(log)]


def summary(found: list[Batch]) -> str:
    """The projector's batches: how many, their size, prepare and write(+progress) times."""
    if not found:
        return "projector: no batch logged"
    prepare = sorted(b.times["prepared"] - b.times["received"] for b in found)
    write = sorted(b.times["published"] - b.times["writing"] for b in found)
    return (
        f"projector: {len(found)} batches of median {statistics.median(b.size for b in found):.0f} records;"
        f" prepare p50 {statistics.median(prepare) * 1e3:.0f} ms, write + progress p50"
        f" {statistics.median(write) * 1e3:.0f} ms, max {write[-1] * 1e3:.0f} ms"
    )


def progress_moves(log: bytes) -> list[tuple[float, dict[str, int]]]:
    """When the API's watcher saw the progress move, and where it was (`topic:partition` -> next)."""
    moves = []
    for m in PROGRESS_LINE.finditer(log):
        at = {k: int(v) for k, _, v in (p.rpartition("=") for p in m[2].decode().split())}
        moves.append((float(m[1]), at))
    return moves


def stages(
    samples: list[Sample], found: list[Batch], moves: list[tuple[float, dict[str, int]]]
) -> dict[str, list[float]]:
    """Per stage (STAGES), its duration (s) for each sample whose batch and progress move were logged."""
    per_stage: dict[str, list[float]] = {}
    for sent, acked, token, _, answered in samples:
        _, topic, partition, offset = token.split(":")
        stream, at = f"{topic}:{partition}", int(offset)
        batch = next((b for b in found if b.holds(stream, at)), None)
        seen = next((t for t, now in moves if now.get(stream, 0) > at), None)
        if batch is None or seen is None:
            continue
        times = {"sent": sent, "acked": acked, **batch.times, "seen": seen, "answered": answered}
        for a, b in itertools.pairwise(times):
            per_stage.setdefault(STAGES[a, b], []).append(times[b] - times[a])
    return per_stage


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
            sent_at, run_id = time.time(), event.run.run_id

            def report(md: Any, sent_at: float = sent_at, run_id: str = run_id) -> None:
                position = str(Position.kafka(md.topic, md.partition, md.offset))
                out.put((sent_at, time.time(), position, run_id))

            future.add_callback(report)
        if time.monotonic() - start > WARMUP + DURATION:
            break
    producer.flush()
    out.put(("done", sent, time.monotonic() - start))
    producer.close()


async def measure(url: str, out: Any) -> tuple[list[Sample], int, float, int]:
    """Query each reported run with its token; (runs answered COMPLETE, events sent, seconds, other answers)."""
    loop = asyncio.get_running_loop()
    samples: list[Sample] = []
    wrong = 0
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=200)) as client:

        async def one(sent_at: float, acked_at: float, token: str, run_id: str) -> None:
            nonlocal wrong
            try:
                answer = await client.post("/graphql", json={"query": QUERY, "variables": {"t": token, "i": run_id}})
            except httpx.HTTPError as exc:
                print(f"query failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                wrong += 1
                return
            answered = time.time()
            body = answer.json()
            if (body.get("data") or {}).get("run") != {"state": "COMPLETE"}:
                if not wrong:
                    print(f"first answer that is not the run COMPLETE: {body}", file=sys.stderr)
                wrong += 1
                return
            samples.append((sent_at, acked_at, token, run_id, answered))

        while True:
            item = await loop.run_in_executor(None, out.get)
            if item[0] == "done":
                await asyncio.gather(*tasks)
                return samples, int(item[1]), float(item[2]), wrong
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


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    logs = {name: home / f"{name}.log" for name in ("projector", "api")}
    with logs["projector"].open("wb") as projector_log:
        projector = subprocess.Popen([sys.executable, "-c", PROJECTOR], env=env, stdout=quiet, stderr=projector_log)
    with logs["api"].open("wb") as api_log:
        api = subprocess.Popen([sys.executable, "-c", API, str(port)], env=env, stdout=api_log, stderr=api_log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, api)
        ctx = mp.get_context("spawn")
        for rate in RATES:
            waited = settle(url, kafka, topic, f"{prefix.rstrip('.')}-settle{rate}")
            print(f"projector settled in {waited:.1f}s", file=sys.stderr)
            out = ctx.Queue()
            emitter = ctx.Process(target=emit, args=(kafka, topic, rate, f"{prefix.rstrip('.')}-r{rate}", out))
            logged = {name: path.stat().st_size for name, path in logs.items()}
            cpu = {name: cpu_seconds(p.pid) for name, p in (("projector", projector), ("API", api))}
            emitter.start()
            samples, sent, seconds, wrong = asyncio.run(measure(url, out))
            emitter.join(60)
            cpu = {name: cpu_seconds(p.pid) - cpu[name] for name, p in (("projector", projector), ("API", api))}
            time.sleep(0.2)  # the last lines reach the logs
            new: dict[str, bytes] = {}
            for name, path in logs.items():
                with path.open("rb") as f:
                    f.seek(logged[name])
                    new[name] = f.read()
            found = batches(new["projector"])
            print(f"       {summary(found)}", file=sys.stderr)
            print(
                "       CPU while emitting: "
                + ", ".join(
                    f"{name} {used:.1f} s ({used / max(sent, 1) * 1e6:.0f} us per event sent)"
                    for name, used in cpu.items()
                ),
                file=sys.stderr,
            )
            if api.poll() is not None:
                raise SystemExit(f"the API process died; its log: {logs['api']}")
            if len(samples) < 2:
                print(f"{rate:>5} events/s: {len(samples)} runs answered COMPLETE, {wrong} not", file=sys.stderr)
                continue
            latencies = [answered - sent_at for sent_at, _, _, _, answered in samples]
            acks = [acked - sent_at for sent_at, acked, _, _, _ in samples]
            q, a = statistics.quantiles(latencies, n=100), statistics.quantiles(acks, n=100)
            print(
                f"{rate:>5} events/s offered, {sent / seconds:.0f} sustained: emit -> visible (consistentWith)"
                f" p50 {q[49] * 1e3:.0f} ms, p99 {q[98] * 1e3:.0f} ms over {len(latencies)} runs"
                f" (of which Kafka ack p50 {a[49] * 1e3:.0f} ms, p99 {a[98] * 1e3:.0f} ms)"
                + (f", {wrong} answers not COMPLETE" if wrong else "")
                + f"; load {os.getloadavg()[0]:.1f}"
            )
            per_stage = stages(samples, found, progress_moves(new["api"]))
            if min(map(len, per_stage.values()), default=0) >= 2:
                print(f"       stages over {len(per_stage['Kafka ack'])} runs (ms, p50 / p99):", file=sys.stderr)
                for name, durations in per_stage.items():
                    d = statistics.quantiles(durations, n=100)
                    print(f"         {name:<28} {d[49] * 1e3:7.1f} / {d[98] * 1e3:7.1f}", file=sys.stderr)
            sys.stdout.flush()
    finally:
        for process in (api, projector):
            process.terminate()
            process.wait(timeout=60)
    print("target: p99 < 250 ms at a sustained 500 events/s", file=sys.stderr)


if __name__ == "__main__":
    main()
