"""A chain of BENCH_STEPS (100) steps (tests/pipeline_steps.py `chain`) through the pipeline controller
and the launcher, on the real Kafka broker and Kubernetes API server: time from a step's COMPLETE to
the next step's Job, and that interval in three parts.

Each Job's pod is executed here, as the launcher tests do (KWOK runs no containers): the bench
waits for the Job (a watch), runs `provgraph exec` on it in-process, and takes the moment its
COMPLETE event was acknowledged by Kafka; the next Job's watch ADDED event ends the interval. That
interval holds the controller's whole loop (poll the lineage topic, project, decide, store and
publish the request) plus the launcher's (consume, create the Job) and the API server's watch.
Prints p50/p99/max. The controller and launcher run in-process; everything shares this machine.
Uses the services named by KUBECONFIG / PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS, else starts the repo's
own (and stops them at exit).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*

from kubernetes import client, config, watch

import provgraph as pg
from provgraph._stored_request import exec_request
from provgraph.events.model import EventType
from provgraph.events.serde import loads
from provgraph.events.transport.factory import kafka_config
from provgraph.events.transport.kafka import ensure_topics
from provgraph.pipelines.remote import step_run_id, submit_pipeline
from provgraph.services.launcher import create_app, job_name
from provgraph.services.pipeline_controller import Controller
from tests import pipeline_steps
from tests.services import ensure

STEPS = int(os.environ.get("BENCH_STEPS", "100"))
IMAGE = "registry.local/provgraph-runs:bench"


def main() -> None:
    kafka = ensure("kafka")["PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS"]
    kubeconfig = ensure("k8s")["KUBECONFIG"]
    api: Any = config.new_client_from_config(config_file=kubeconfig)
    core: Any = client.CoreV1Api(api)
    batch: Any = client.BatchV1Api(api)
    namespace = f"pgb-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    tmp = Path(tempfile.mkdtemp(prefix="provgraph-bench-"))
    settings = pg.Settings.model_validate(
        {
            "home": tmp / "home",
            "transport": "kafka",
            "kafka_bootstrap_servers": kafka,
            "kafka_topic_prefix": f"b{uuid.uuid4().hex[:8]}.",
            "k8s_kubeconfig": kubeconfig,
            "k8s_namespace": namespace,
            "k8s_job_finalizer": False,
            "artifact_store": str(tmp / "artifacts"),
        }
    )
    ensure_topics(kafka_config(settings))
    raw = tmp / "raw.txt"
    raw.write_text("0")

    app = create_app(settings)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(app.start(), loop).result(60)
    controller = Controller(settings)
    arrived: dict[str, float] = {}  # step run id -> when the controller polled its COMPLETE
    published: dict[str, float] = {}  # step run id -> when its request was on the requests topic
    apply, publish = controller.apply, controller._publish

    def timed_apply(records: list[Any]) -> set[str]:
        now = time.perf_counter()
        for r in records:
            event = loads(r.value)
            if event.event_type == EventType.COMPLETE:
                arrived.setdefault(event.run.run_id, now)
        return apply(records)

    def timed_publish(run_id: str, body: bytes) -> None:
        publish(run_id, body)
        published.setdefault(run_id, time.perf_counter())

    controller.apply, controller._publish = timed_apply, timed_publish  # type: ignore[method-assign]
    threading.Thread(target=controller.run, daemon=True).start()

    added: dict[str, float] = {}
    seen = threading.Condition()

    done = threading.Event()

    def follow() -> None:
        watcher: Any = watch.Watch()
        try:
            for event in watcher.stream(batch.list_namespaced_job, namespace, timeout_seconds=600):
                with seen:
                    added.setdefault(event["object"].metadata.name, time.perf_counter())
                    seen.notify_all()
        except Exception:
            if not done.is_set():  # the namespace deleted at the end cuts the watch: expected then
                raise

    threading.Thread(target=follow, daemon=True).start()
    client_backend = pg.Backend(settings)
    started = time.perf_counter()
    run_id = submit_pipeline(
        pipeline_steps.chain, {"seed": str(raw), "length": STEPS}, backend=client_backend, image=IMAGE
    ).run_id
    client_backend.close()
    pod = pg.Backend(settings.model_copy(update={"home": tmp / "pod"}))
    gaps: list[float] = []
    parts: list[tuple[float, float, float]] = []  # to the controller, its decision, launcher + API server
    completed = 0.0
    try:
        for i in range(STEPS):
            name = job_name(step_run_id(run_id, f"add-{i}", 1))
            with seen:
                if not seen.wait_for(lambda: name in added, timeout=60):  # noqa: B023 - called at once
                    raise SystemExit(f"no Job for step add-{i} after 60 s")
            if i > 0:
                gaps.append(added[name] - completed)
                before = arrived[step_run_id(run_id, f"add-{i - 1}", 1)]
                request = published[step_run_id(run_id, f"add-{i}", 1)]
                parts.append((before - completed, request - before, added[name] - request))
            job: Any = batch.read_namespaced_job(name, namespace)
            exec_request(job.spec.template.spec.containers[0].command[2], pod)  # flushes: COMPLETE is on Kafka
            completed = time.perf_counter()
    finally:
        done.set()
        pod.close()
        controller.stop()
        asyncio.run_coroutine_threadsafe(app.stop(), loop).result(90)
        core.delete_namespace(namespace)
    total = time.perf_counter() - started
    ms = sorted(g * 1000 for g in gaps)
    print(f"{STEPS}-step chain through the pipeline controller: {total:.1f} s in all")
    print(
        f"step COMPLETE -> next Job created: p50 {statistics.median(ms):.0f} ms, p99 {_p99(ms):.0f} ms, "
        f"max {ms[-1]:.0f} ms ({len(ms)} intervals)"
    )
    labels = ("COMPLETE acknowledged -> polled by the controller", "-> next request published", "-> Job seen")
    for label, values in zip(labels, zip(*parts, strict=True), strict=True):
        each = sorted(v * 1000 for v in values)
        print(f"  {label}: p50 {statistics.median(each):.0f} ms, p99 {_p99(each):.0f} ms")
    third = len(gaps) // 3
    by_position = [statistics.median(gaps[k * third : (k + 1) * third]) * 1000 for k in range(3)]
    print("  p50 by position (first, middle, last third): " + ", ".join(f"{v:.0f} ms" for v in by_position))
    print(f"  load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
