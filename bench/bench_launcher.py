"""Run requests → Kubernetes Jobs through the launcher, against the real Kafka broker and API server.

Two figures, 1,000 requests each, in a fresh namespace and topic prefix:

- throughput: 1,000 requests already waiting on the requests topic when the launcher starts; rate
  from the first Job created to the last (the consumer group's join is excluded, and reported);
- latency: with the launcher running, requests sent at a steady `RATE`/s; request → Job created =
  the moment the Job's watch ADDED event arrives minus the request's `requested_at` (one clock: the
  bench, the launcher and the API server share this machine), p50/p99.

The launcher runs in-process with its default settings (finalizer on, `launcher_concurrency` 16).
Everything (etcd, kube-apiserver, controller-manager creating the pods, scheduler, KWOK, Kafka, the
launcher) shares this machine's cores, so these are lower bounds for a real cluster. Uses the
services named by KUBECONFIG / PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS, else starts the repo's own and
stops them at exit.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.services

from kafka import KafkaProducer
from kubernetes import client, config, watch

from provgraph.events import topics
from provgraph.events.request import RunRequest, dumps_request
from provgraph.events.settings import Settings
from provgraph.events.transport.factory import kafka_config
from provgraph.events.transport.kafka import ensure_topics
from provgraph.services.launcher import create_app, job_name
from provgraph.services.launcher.jobs import selector
from tests.services import ensure

N = 1000
RATE = 100
"""Requests per second offered in the latency phase."""
CODE = "sha256:" + "c" * 64


class JobsSeen:
    """Watches the namespace and records when each Job's ADDED event arrived."""

    def __init__(self, api: Any, namespace: str, label_selector: str) -> None:
        self.batch: Any = client.BatchV1Api(api)
        self.namespace, self.selector = namespace, label_selector
        self.added: dict[str, float] = {}
        self.ready = threading.Event()
        self._watch: Any = watch.Watch()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.ready.wait(30)

    def _run(self) -> None:
        listed = self.batch.list_namespaced_job(self.namespace, label_selector=self.selector, _preload_content=False)
        version = json.loads(listed.data)["metadata"]["resourceVersion"]
        self.ready.set()
        while not self._stopping.is_set():
            try:
                for event in self._watch.stream(
                    self.batch.list_namespaced_job,
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=300,
                    deserialize=False,
                ):
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] == "ADDED":
                        self.added.setdefault(event["object"]["metadata"]["name"], time.time())
            except Exception:
                if not self._stopping.is_set():
                    raise

    def wait_for(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(n not in self.added for n in names):
            if time.monotonic() > deadline:
                missing = sum(n not in self.added for n in names)
                raise SystemExit(f"{missing} of {len(names)} Jobs not created after {timeout:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stopping.set()
        self._watch.stop()


def clean_up(api: Any, namespace: str) -> None:
    """Release the launcher's finalizer from every Job (the launcher is stopped), delete the Jobs and
    the namespace; Kubernetes removes them and their pods in the background (minutes for 2,000)."""
    batch: Any = client.BatchV1Api(api)
    names = [j.metadata.name for j in batch.list_namespaced_job(namespace).items if j.metadata.finalizers]
    patch = {"metadata": {"finalizers": None}}
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda n: batch.patch_namespaced_job(n, namespace, patch, _content_type="application/merge-patch+json"),
                names,
            )
        )
    batch.delete_collection_namespaced_job(namespace, propagation_policy="Background")
    client.CoreV1Api(api).delete_namespace(namespace)


def request(namespace: str) -> RunRequest:
    return RunRequest(
        run_id=str(uuid.uuid4()),
        project="bench",
        job="train",
        entrypoint="train.py:train",
        code_hash=CODE,
        runtime="kubernetes",
        image="registry.local/bench:1",
        resources={"cpu": "100m", "memory": "64Mi"},
        namespace=namespace,
    )


def main() -> None:
    kubeconfig = ensure("k8s")["KUBECONFIG"]
    servers = ensure("kafka")["PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS"]
    api = config.new_client_from_config(config_file=kubeconfig)
    core: Any = client.CoreV1Api(api)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            transport="kafka",
            kafka_bootstrap_servers=servers,
            kafka_topic_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
            k8s_kubeconfig=Path(kubeconfig),
            k8s_namespace=namespace,
            artifact_store=str(Path(home) / "artifacts"),
        )
        ensure_topics(kafka_config(settings))
        seen = JobsSeen(api, namespace, selector(settings))
        producer = KafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
        name = topics.topic(topics.REQUESTS, settings.kafka_topic_prefix)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        app = create_app(settings)
        try:
            # 1) throughput: a backlog of N requests
            backlog = [request(namespace) for _ in range(N)]
            for r in backlog:
                producer.send(name, key=r.run_id.encode(), value=dumps_request(r))
            producer.flush()
            t_start = time.time()
            asyncio.run_coroutine_threadsafe(app.start(), loop).result(60)
            names = [job_name(r.run_id) for r in backlog]
            seen.wait_for(names, timeout=600)
            times = sorted(seen.added[n] for n in names)
            rate = (N - 1) / (times[-1] - times[0])
            startup = times[0] - t_start

            # 2) latency: N requests at RATE/s while the launcher runs
            sent: dict[str, float] = {}
            t0 = time.perf_counter()
            for i in range(N):
                time.sleep(max(0.0, t0 + i / RATE - time.perf_counter()))
                r = request(namespace)
                producer.send(name, key=r.run_id.encode(), value=dumps_request(r))
                sent[job_name(r.run_id)] = r.requested_at.timestamp()
            producer.flush()
            seen.wait_for(list(sent), timeout=600)
            latencies = [seen.added[n] - t for n, t in sent.items()]
            q = statistics.quantiles(latencies, n=100)

        finally:
            asyncio.run_coroutine_threadsafe(app.stop(), loop).result(120)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            producer.close()
            seen.stop()
            clean_up(api, namespace)
            api.close()
    print(
        f"{N} requests backlog: first Job {startup:.1f} s after the launcher started, cluster {kubeconfig}",
        file=sys.stderr,
    )
    print(
        f"launcher: {rate:,.0f} requests/s -> Jobs ({N} backlog);"
        f" request -> Job created p50 {q[49] * 1e3:.0f} ms, p99 {q[98] * 1e3:.0f} ms at {RATE} requests/s offered"
    )


if __name__ == "__main__":
    main()
