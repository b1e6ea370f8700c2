"""(b) Emit -> visible to a read-your-writes query, through Kafka, the projector and Neo4j.

Needs the real services (`scripts/infra/services.sh up kafka neo4j`). Starts a projector process
and an API process (`provgraph serve`), then for each offered rate (100, 500, 2,000 events/s;
`BENCH_RATES`) an emitter PROCESS sends realistic runs (START, reads, writes, metrics, COMPLETE)
paced to that rate for WARMUP + DURATION seconds. It stands for many SDK processes at once: it sends
asynchronously (acks=all, keyed by root run as the transport does) instead of waiting for each ack
as one SDK process does, so it really sustains the rate (the achieved rate is printed). Its records
(key, serialised event, partition: the producer's own murmur2 choice for the key) are built before
the paced window, so the loop only sends: in production the events are built and serialised by SDK
processes on other machines, not on the 2 cores that project and answer here (pydantic cost ~1.6 ms
CPU an event in the loop until round 11).

For up to `SAMPLED_PER_S` runs a second (`BENCH_SAMPLED_PER_S`, 40) completed after the warm-up,
the emitter reports its COMPLETE record's position (`kafka:topic:partition:offset`, what
`RunResult.position` holds) once Kafka acknowledges it; this process then asks the API for the run
with `@consistentWith(token:)`, which answers once the projector has published that position.
Latency = from the emitter's send of the COMPLETE event to the answer (the run COMPLETE, checked):
nothing polls Neo4j but the API's one shared progress reader. Printed beside it: the Kafka ack part
(send -> acknowledged, acks=all), the projector's batches and the 1-minute load average, then the
stages of emit -> visible, p50 / p99 each: the projector's DEBUG line per batch (when it was handed
over, prepared, its write started, ended, progress published) and the API watcher's DEBUG line per
progress move, matched to the sampled runs by position; and every process's CPU time while the
emitter paced its sends (Neo4j and Kafka found by their listening ports, the emitter, the API, the
projector, this bench; per event sent: a figure less bound to the machine's load than the wall
times).
Target: p99 < 250 ms at a sustained 500 events/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    """The emitter process: `rate` events/s for WARMUP + DURATION s; COMPLETE positions of sampled runs
    to `out`. Builds every record first, then reports ("start",) and only sends in the paced loop."""
    from kafka.partitioner.default import murmur2

    asyncio.run(send_paced(kafka, topic, rate, list(records(rate, namespace)), murmur2, out))


def records(rate: int, namespace: str) -> Iterator[tuple[bytes, bytes, str | None]]:
    """The emitter's records, built and serialised up front: key, value, the run id of a sampled COMPLETE."""
    every = max(1, round(rate / EVENTS_PER_RUN / SAMPLED_PER_S))
    for event in workload(int(rate * (WARMUP + DURATION) / EVENTS_PER_RUN) + 2, namespace=namespace):
        run_no = int(event.run.run_id.rsplit("-", 1)[1])
        sampled = event.run.run_id if event.event_type.is_terminal and run_no % every == 0 else None
        yield event.root_run_id.encode(), serde.dumps(event), sampled


async def send_paced(
    kafka: str, topic: str, rate: int, built: list[tuple[bytes, bytes, str | None]], hash_key: Any, out: Any
) -> None:
    """Send `built` at `rate` (aiokafka: ~6x less CPU a record than kafka-python's producer, which
    could not keep 500 events/s on a loaded core), each to the partition the default partitioner picks."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all", linger_ms=1, enable_idempotence=True)
    await producer.start()
    partitions = sorted(await producer.partitions_for(topic))
    chosen = [partitions[(hash_key(key) & 0x7FFFFFFF) % len(partitions)] for key, _, _ in built]  # the default
    out.put(("start",))
    cpu = time.process_time()
    sent = 0
    start = time.monotonic()
    pending = []
    for i, ((key, value, sampled), partition) in enumerate(zip(built, chosen, strict=True)):
        if (delay := start + i / rate - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        elif time.monotonic() - start > WARMUP + DURATION:
            break
        future = await producer.send(topic, value, key=key, partition=partition)
        sent += 1
        if sampled is not None and time.monotonic() - start > WARMUP:

            def report(acked: Any, sent_at: float = time.time(), run_id: str = sampled) -> None:
                md = acked.result()
                out.put((sent_at, time.time(), str(Position.kafka(md.topic, md.partition, md.offset)), run_id))

            future.add_done_callback(report)
        pending.append(future)
        if time.monotonic() - start > WARMUP + DURATION:
            break
    await asyncio.gather(*pending)
    out.put(("done", sent, time.monotonic() - start, time.process_time() - cpu))
    await producer.stop()


class Client:
    """A minimal HTTP/1.1 keep-alive client for the bench's queries. httpx's async pool cost the bench
    ~15 ms of CPU a query with hundreds in flight (harness cost on the 2 cores the services share);
    this costs a write, a few reads and a JSON parse."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, payload: object) -> tuple[int, Any]:
        body = json.dumps(payload).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        for attempt in (1, 2):  # an idle connection the server closed (after 5 s): once more on a new one
            reused = bool(self.idle) and attempt == 1
            reader, writer = self.idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(request)
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                answer = json.loads(await reader.readexactly(length))
            except (OSError, IndexError, asyncio.IncompleteReadError):
                writer.close()
                if reused:
                    continue
                raise
            self.idle.append((reader, writer))
            return status, answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def measure(url: str, out: Any, started: Callable[[], None]) -> tuple[list[Sample], int, float, float, int]:
    """Query each reported run with its token; `started()` when the emitter starts its paced sends.
    (runs answered COMPLETE, events sent, seconds, the emitter's CPU seconds while sending, other answers)."""
    loop = asyncio.get_running_loop()
    samples: list[Sample] = []
    wrong = 0
    tasks: list[asyncio.Task[None]] = []
    client = Client(url)

    async def one(sent_at: float, acked_at: float, token: str, run_id: str) -> None:
        nonlocal wrong
        try:
            _, body = await client.post("/graphql", {"query": QUERY, "variables": {"t": token, "i": run_id}})
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            print(f"query failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            wrong += 1
            return
        answered = time.time()
        if (body.get("data") or {}).get("run") != {"state": "COMPLETE"}:
            if not wrong:
                print(f"first answer that is not the run COMPLETE: {body}", file=sys.stderr)
            wrong += 1
            return
        samples.append((sent_at, acked_at, token, run_id, answered))

    try:
        while True:
            item = await loop.run_in_executor(None, out.get)
            if item[0] == "start":
                started()
                continue
            if item[0] == "done":
                await asyncio.gather(*tasks)
                return samples, int(item[1]), float(item[2]), float(item[3]), wrong
            tasks.append(asyncio.create_task(one(*item)))
    finally:
        client.close()


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


def listening_pid(port: int) -> int | None:
    """The process listening on TCP `port` on this machine (Kafka's, Neo4j's JVM), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and int(f[1].rpartition(":")[2], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{f[9]}]")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and inodes:
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
    return None


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
    pids = {"projector": projector.pid, "API": api.pid}
    for name, address in (("Neo4j", neo4j_uri), ("Kafka", f"//{kafka.split(',')[0]}")):
        if (pid := listening_pid(urlsplit(address).port or 0)) is not None:
            pids[name] = pid
    try:
        wait_healthy(url, api)
        ctx = mp.get_context("spawn")
        for rate in RATES:
            waited = settle(url, kafka, topic, f"{prefix.rstrip('.')}-settle{rate}")
            print(f"projector settled in {waited:.1f}s", file=sys.stderr)
            out = ctx.Queue()
            emitter = ctx.Process(target=emit, args=(kafka, topic, rate, f"{prefix.rstrip('.')}-r{rate}", out))
            logged = {name: path.stat().st_size for name, path in logs.items()}
            cpu: dict[str, float] = {}

            def started(cpu: dict[str, float] = cpu) -> None:
                cpu.update({name: cpu_seconds(pid) for name, pid in pids.items()}, bench=time.process_time())

            emitter.start()
            samples, sent, seconds, emitter_cpu, wrong = asyncio.run(measure(url, out, started))
            cpu = {name: cpu_seconds(pid) - cpu[name] for name, pid in pids.items()} | {
                "emitter": emitter_cpu,
                "bench": time.process_time() - cpu["bench"],
            }
            emitter.join(60)
            time.sleep(0.2)  # the last lines reach the logs
            new: dict[str, bytes] = {}
            for name, path in logs.items():
                with path.open("rb") as f:
                    f.seek(logged[name])
                    new[name] = f.read()
            found = batches(new["projector"])
            print(f"       {summary(found)}", file=sys.stderr)
            print(
                f"       CPU while emitting ({seconds:.1f} s wall, 2 cores = {2 * seconds:.0f} CPU s), per event sent: "
                + ", ".join(f"{name} {used / max(sent, 1) * 1e6:.0f} us" for name, used in cpu.items())
                + f"; total {sum(cpu.values()):.1f} CPU s",
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
