"""The launcher against the real Kafka broker and the real Kubernetes API server (pods simulated by KWOK).

Each test gets its own topic prefix (so its own consumer group and topics) and its own namespace;
the launcher runs in-process (its FastStream app on an event loop in a thread), except in the CLI
test. What the launcher reports is read back from the lineage topic and projected into a SQLite
graph, exactly as the projector would. KWOK completes Job pods after ~1 s; the pod annotation
`provgraph.dev/simulate` (set through `k8s_pod_annotations`) makes them fail or keep running.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import provgraph as pg
from provgraph._stored_request import exec_request
from provgraph.events import topics
from provgraph.events.request import RunRequest, dumps_request, request_hash
from provgraph.events.serde import loads
from provgraph.events.transport.factory import kafka_config
from provgraph.events.transport.kafka import ensure_topics
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import RunView
from provgraph.runtimes.kubernetes import publish_request
from provgraph.services.launcher import create_app, job_name
from provgraph.services.launcher.handlers import group_id
from provgraph.services.launcher.jobs import ANNOTATION_REPORTED, FINALIZER
from provgraph.services.projector.dead_letters import read_dlq
from tests.helpers import TopicReader, holds_for, read_topic, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.slow]

IMAGE = "registry.local/provgraph-runs:test"
CODE = "sha256:" + "c" * 64


def double(ctx: pg.Context, data: pg.DataItem, times: int = 2) -> dict[str, int]:
    body = data.get()
    ctx.log_artifact("doubled", body=body * times)
    return {"n": len(body) * times}


# -- Kubernetes ------------------------------------------------------------------------------------


class Cluster:
    """The official client as the tests use it (plain dicts back, like the launcher)."""

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config

        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self.core: Any = client.CoreV1Api(self.api)
        self.batch: Any = client.BatchV1Api(self.api)

    def jobs(self, namespace: str, selector: str = "provgraph.dev/run-id") -> list[dict[str, Any]]:
        import json

        resp = self.batch.list_namespaced_job(namespace, label_selector=selector, _preload_content=False)
        items: list[dict[str, Any]] = json.loads(resp.data)["items"]
        return items

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        import json

        from kubernetes.client.exceptions import ApiException

        try:
            resp = self.batch.read_namespaced_job(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        job: dict[str, Any] = json.loads(resp.data)
        return job

    def job_condition(self, namespace: str, name: str, kind: str) -> dict[str, Any] | None:
        job = self.job(namespace, name) or {}
        for cond in (job.get("status") or {}).get("conditions") or []:
            if cond["type"] == kind and cond["status"] == "True":
                return dict(cond)
        return None

    def pod_phases(self, namespace: str, name: str) -> list[str]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={name}")
        return [p.status.phase for p in pods.items]


@pytest.fixture(scope="module")
def cluster(k8s: Path) -> Iterator[Cluster]:
    c = Cluster(k8s)
    yield c
    c.api.close()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"pgt-{uuid.uuid4().hex[:10]}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    yield name
    # A stopped launcher cannot release its Jobs: drop the finalizer so the namespace can go.
    for job in cluster.jobs(name, selector=""):
        if job["metadata"].get("finalizers"):
            cluster.batch.patch_namespaced_job(
                job["metadata"]["name"],
                name,
                {"metadata": {"finalizers": None}},
                _content_type="application/merge-patch+json",
            )
    cluster.core.delete_namespace(name)


# -- Kafka and the graph ---------------------------------------------------------------------------


@pytest.fixture
def lsettings(settings: pg.Settings, kafka: str, k8s: Path, namespace: str, tmp_path: Path) -> pg.Settings:
    """Settings of a launcher (and its clients) with its own topics and namespace."""
    cfg = settings.model_copy(
        update={
            "transport": "kafka",
            "kafka_bootstrap_servers": kafka,
            "kafka_topic_prefix": f"t{uuid.uuid4().hex[:8]}.",
            "k8s_kubeconfig": k8s,
            "k8s_namespace": namespace,
            "k8s_ttl_seconds_after_finished": 600,
            "artifact_store": str(tmp_path / "artifacts"),
            "launcher_concurrency": 4,
        }
    )
    ensure_topics(kafka_config(cfg))
    return cfg


class Lineage:
    """The lineage topic projected into a SQLite graph, caught up on every query."""

    def __init__(self, settings: pg.Settings, path: Path) -> None:
        assert settings.kafka_bootstrap_servers
        name = topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
        self.reader = TopicReader(settings.kafka_bootstrap_servers, name)
        self.store = SqliteLineageStore(path)
        self.events: list[Any] = []

    def catch_up(self) -> None:
        batch = [loads(r.value) for r in self.reader.read()]
        self.events += batch
        self.store.apply(batch)

    def run(self, run_id: str, until: Callable[[RunView], bool] = lambda r: True, timeout: float = 45.0) -> RunView:
        def probe() -> RunView | None:
            self.catch_up()
            run = self.store.run(run_id)
            return run if run is not None and until(run) else None

        try:
            return wait_for(f"run {run_id} in the graph", probe, timeout)
        except AssertionError:
            raise AssertionError(f"run {run_id} is {self.store.run(run_id)!r}") from None

    def close(self) -> None:
        self.reader.close()
        self.store.close()


@pytest.fixture
def lineage(lsettings: pg.Settings, tmp_path: Path) -> Iterator[Lineage]:
    lin = Lineage(lsettings, tmp_path / "graph.db")
    yield lin
    lin.close()


def committed_everything(settings: pg.Settings) -> bool:
    """The launcher's group has committed up to the end of every requests partition."""
    name = topics.topic(topics.REQUESTS, settings.kafka_topic_prefix)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group_id(settings), enable_auto_commit=False
    )
    try:  # never subscribes, so it does not join (or disturb) the launcher's group
        tps = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        ends = consumer.end_offsets(tps)
        return all(end == 0 or consumer.committed(tp) == end for tp, end in ends.items())
    finally:
        consumer.close()


def published_requests(settings: pg.Settings) -> list[bytes]:
    assert settings.kafka_bootstrap_servers
    records = read_topic(settings.kafka_bootstrap_servers, topics.topic(topics.REQUESTS, settings.kafka_topic_prefix))
    return [r.value for r in records]


def publish(settings: pg.Settings, request: RunRequest) -> bytes:
    body = dumps_request(request)
    publish_request(kafka_config(settings), request.run_id, body)
    return body


def manual_request(**kw: Any) -> RunRequest:
    base: dict[str, Any] = {
        "run_id": str(uuid.uuid4()),
        "project": "default",
        "job": "train",
        "entrypoint": "train.py:train",
        "code_hash": CODE,
        "runtime": "kubernetes",
        "image": IMAGE,
    }
    return RunRequest.model_validate(base | kw)


# -- the launcher, in-process ----------------------------------------------------------------------


@contextmanager
def launcher(settings: pg.Settings) -> Iterator[None]:
    """The launcher's FastStream app started on an event loop in a thread; stopped gracefully after."""
    app = create_app(settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="launcher-loop", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(app.start(), loop).result(60)
        yield
    finally:
        asyncio.run_coroutine_threadsafe(app.stop(), loop).result(90)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def submit(settings: pg.Settings, tmp_path: Path, **kw: Any) -> pg.RunResult:
    data = tmp_path / "in.txt"
    data.write_bytes(b"abc")
    backend = pg.Backend(settings)
    try:
        return pg.run(
            double,
            params={"times": 3},
            inputs={"data": str(data)},
            runtime="kubernetes",
            image=IMAGE,
            backend=backend,
            **kw,
        )
    finally:
        backend.close()


# -- tests -----------------------------------------------------------------------------------------


def test_a_run_request_becomes_a_job_that_kwok_completes(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, tmp_path: Path
) -> None:
    with launcher(lsettings):
        result = submit(lsettings, tmp_path, resources={"cpu": "500m", "memory": "256Mi", "limits.cpu": "1"})
        name = job_name(result.run_id)
        job = wait_for("the Job", lambda: cluster.job(namespace, name))
        [body] = published_requests(lsettings)
        meta, spec = job["metadata"], job["spec"]
        pod = spec["template"]["spec"]
        [container] = pod["containers"]
        identity = {
            "provgraph.dev/run-id": result.run_id,
            "provgraph.dev/project": "default",
            "provgraph.dev/job": "double",
        }
        assert identity.items() <= meta["labels"].items() and identity.items() <= meta["annotations"].items()
        assert meta["labels"]["provgraph.dev/instance"] == lsettings.kafka_topic_prefix.rstrip(".")
        assert meta["annotations"]["provgraph.dev/request"] == request_hash(body)
        assert meta["finalizers"] == [FINALIZER]
        assert container["image"] == IMAGE
        assert container["command"] == ["provgraph", "exec", request_hash(body)]
        assert container["resources"] == {
            "requests": {"cpu": "500m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        }
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {
            "PROVGRAPH_TRANSPORT": "kafka",
            "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": lsettings.kafka_bootstrap_servers,
            "PROVGRAPH_KAFKA_TOPIC_PREFIX": lsettings.kafka_topic_prefix,
            "PROVGRAPH_ARTIFACT_STORE": lsettings.artifact_url,
            "PROVGRAPH_PROJECT": "default",
        }
        assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"], pod["restartPolicy"]) == (0, 600, "Never")
        assert identity.items() <= spec["template"]["metadata"]["labels"].items()

        wait_for("the Job to complete", lambda: cluster.job_condition(namespace, name, "Complete"))
        assert cluster.pod_phases(namespace, name) == ["Succeeded"]
        wait_for("the offsets to be committed", lambda: committed_everything(lsettings))

        def silent() -> bool:  # a completed Job is the pod's to report: the launcher must say nothing
            lineage.catch_up()
            return not [e for e in lineage.events if e.event_type.is_terminal]

        holds_for("the launcher's silence on a completed Job", silent, 1.0)
        run = lineage.run(result.run_id)
        assert run.state == "REQUESTED"
        assert not [e for e in lineage.events if e.event_type.is_terminal]


def test_a_redelivered_request_creates_no_second_job(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    with launcher(lsettings):
        result = submit(lsettings, tmp_path)
        name = job_name(result.run_id)
        first = wait_for("the Job", lambda: cluster.job(namespace, name))
        wait_for("the offsets to be committed", lambda: committed_everything(lsettings))
    [body] = published_requests(lsettings)
    publish_request(kafka_config(lsettings), result.run_id, body)  # the same request again …
    with launcher(lsettings):  # … to a restarted launcher
        publish_request(kafka_config(lsettings), result.run_id, body)  # … and once more while it runs
        wait_for("the offsets to be committed", lambda: committed_everything(lsettings))
    jobs = cluster.jobs(namespace)
    assert [j["metadata"]["name"] for j in jobs] == [name]
    assert jobs[0]["metadata"]["uid"] == first["metadata"]["uid"]


def test_a_failed_job_fails_the_run_and_the_pods_own_terminal_event_wins(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, tmp_path: Path
) -> None:
    failing = lsettings.model_copy(
        update={"k8s_pod_annotations": {"provgraph.dev/simulate": "fail", "provgraph.dev/exit-code": "3"}}
    )
    with launcher(failing):
        result = submit(failing, tmp_path)
        name = job_name(result.run_id)
        run = lineage.run(result.run_id, lambda r: r.state == "FAIL")
        assert run.error is not None
        assert run.error.startswith(f"Kubernetes Job {namespace}/{name} failed: BackoffLimitExceeded")
        assert "terminated: Error (exit code 3): simulated failure" in run.error
        assert cluster.job_condition(namespace, name, "Failed") is not None
        job = wait_for(
            "the report mark",
            lambda: (cluster.job(namespace, name) or {})["metadata"]["annotations"].get(ANNOTATION_REPORTED),
        )
        assert job == "FAIL"
    [fail] = [e for e in lineage.events if e.event_type.is_terminal]
    assert fail.run.facets.event.event_id == f"{result.run_id}:launcher:fail" and fail.seq == 0

    # Had the pod reported its own end (seq >= 1), that would win over the launcher's seq-0 FAIL.
    [body] = published_requests(failing)
    pod = pg.Backend(failing)
    try:
        assert exec_request(request_hash(body), pod).state == "COMPLETE"
    finally:
        pod.close()
    assert lineage.run(result.run_id, lambda r: r.state == "COMPLETE").error == run.error  # the error stays


def test_deleting_a_running_job_aborts_the_run_even_while_the_launcher_is_down(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, tmp_path: Path
) -> None:
    running = lsettings.model_copy(update={"k8s_pod_annotations": {"provgraph.dev/simulate": "running"}})
    with launcher(running):
        first = submit(running, tmp_path)
        second = submit(running, tmp_path)
        for r in (first, second):

            def pod_running(name: str = job_name(r.run_id)) -> bool:
                return cluster.pod_phases(namespace, name) == ["Running"]

            wait_for("a running pod", pod_running)
        cluster.batch.delete_namespaced_job(job_name(first.run_id), namespace, propagation_policy="Background")
        run = lineage.run(first.run_id, lambda r: r.state == "ABORT")
        assert run.error == f"Kubernetes Job {namespace}/{job_name(first.run_id)} was deleted before it finished"
        wait_for("the Job to go", lambda: cluster.job(namespace, job_name(first.run_id)) is None)

    # Deleted while no launcher runs: the finalizer keeps the Job until the next launcher reports it.
    cluster.batch.delete_namespaced_job(job_name(second.run_id), namespace, propagation_policy="Background")

    def held() -> bool:
        job = cluster.job(namespace, job_name(second.run_id))
        return job is not None and bool(job["metadata"].get("deletionTimestamp"))

    holds_for("the finalizer's hold on the deleted Job", held, 1.0)
    assert lineage.run(second.run_id).state == "REQUESTED"
    with launcher(running):
        run = lineage.run(second.run_id, lambda r: r.state == "ABORT")
        assert "was deleted before it finished" in (run.error or "")
        wait_for("the Job to go", lambda: cluster.job(namespace, job_name(second.run_id)) is None)
    assert [e.run.facets.event.event_id for e in lineage.events if e.event_type.is_terminal] == [
        f"{first.run_id}:launcher:abort",
        f"{second.run_id}:launcher:abort",
    ]


def test_bad_requests_are_refused_with_a_clear_fail_and_the_launcher_keeps_going(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, tmp_path: Path
) -> None:
    anywhere = lsettings.model_copy(update={"k8s_namespaces": ["*"]})
    cluster.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": "eyJhdXRocyI6e319"},
        },
    )
    missing_ns = manual_request(namespace=f"pgt-missing-{uuid.uuid4().hex[:6]}")
    bad_quantity = submit(anywhere, tmp_path, resources={"memory": "lots"})  # through the SDK: REQUESTED first
    no_secret = manual_request(image_pull_secret="no-such-secret")
    invalid_for_api = manual_request(resources={"no/such/resource!": "1"})
    with launcher(anywhere):
        publish(anywhere, missing_ns)
        publish(anywhere, no_secret)
        publish(anywhere, invalid_for_api)
        producer = KafkaProducer(bootstrap_servers=anywhere.kafka_bootstrap_servers)
        requests_topic = topics.topic(topics.REQUESTS, anywhere.kafka_topic_prefix)
        producer.send(requests_topic, key=b"junk", value=b"this is not a run request").get(10)
        producer.close()
        good = manual_request(image_pull_secret="regcred")
        publish(anywhere, good)

        expected = {
            missing_ns.run_id: f'namespaces "{missing_ns.namespace}" not found',
            bad_quantity.run_id: "resource memory='lots' is not a Kubernetes quantity",
            no_secret.run_id: f"image pull secret 'no-such-secret' not found in namespace '{namespace}'",
            invalid_for_api.run_id: "Kubernetes refused the Job: creating Job",
        }
        for run_id, text in expected.items():
            run = lineage.run(run_id, lambda r: r.state == "FAIL")
            assert run.error is not None and run.error.startswith("run request refused: ") and text in run.error
        job = wait_for("the good request's Job", lambda: cluster.job(namespace, job_name(good.run_id)))
        assert job["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        wait_for("the offsets to be committed", lambda: committed_everything(anywhere))
        [letter] = read_dlq(anywhere.kafka_bootstrap_servers or "", anywhere.kafka_topic_prefix)
        assert letter.stage == "validate" and letter.original_bytes == b"this is not a run request"
        assert letter.topic == requests_topic
        assert letter.error == "not a valid run request: (root): Invalid JSON: expected ident at line 1 column 2"
    assert {j["metadata"]["name"] for j in cluster.jobs(namespace)} == {job_name(good.run_id)}


def test_end_to_end_the_pod_command_and_env_run_the_request(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, tmp_path: Path
) -> None:
    """KWOK runs no containers: run what the Job's pod would, with only the Job's command and env."""
    with launcher(lsettings):
        result = submit(lsettings, tmp_path)
        job = wait_for("the Job", lambda: cluster.job(namespace, job_name(result.run_id)))
        wait_for("the Job to complete", lambda: cluster.job_condition(namespace, job_name(result.run_id), "Complete"))
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["provgraph", "exec"]
    done = run_like_the_pod(job, tmp_path / "pod-home")
    assert done.state == "COMPLETE" and done.results == {"n": 9}
    run = lineage.run(result.run_id, lambda r: r.state == "COMPLETE")
    assert run.runtime["kind"] == "kubernetes" and run.runtime["image"] == IMAGE
    assert run.params == {"times": 3} and run.results == {"n": 9}
    assert [i.binding for i in run.inputs] == ["data"] and [o.binding for o in run.outputs] == ["doubled"]
    assert [r.run_id for r in lineage.store.runs()] == [result.run_id]  # ONE run: requested, then executed


def run_like_the_pod(job: dict[str, Any], home: Path) -> pg.RunResult:
    """Execute what the Job's pod would run, with only the Job's command and environment."""
    [container] = job["spec"]["template"]["spec"]["containers"]
    _, _, ref = container["command"]
    env = {e["name"].removeprefix("PROVGRAPH_").lower(): e["value"] for e in container["env"]}
    pod = pg.Backend(pg.Settings.model_validate({"home": home, **env}))
    try:
        return exec_request(ref, pod)
    finally:
        pod.close()


def test_reproducing_a_kubernetes_run_on_kubernetes(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, tmp_path: Path
) -> None:
    """reproduce() plans from the graph, submits to the launcher; the pod-side run carries the verdict."""
    with launcher(lsettings):
        original = submit(lsettings, tmp_path)
        job = wait_for("the Job", lambda: cluster.job(namespace, job_name(original.run_id)))
        run_like_the_pod(job, tmp_path / "pod-1")
        lineage.run(original.run_id, lambda r: r.state == "COMPLETE")

        backend = pg.Backend(lsettings, graph=lineage.store)  # the graph the Kafka events feed
        try:
            again = pg.reproduce(original.run_id, backend=backend)
        finally:
            backend.close()
        assert again.state == "REQUESTED" and again.verdict is None
        job = wait_for("the reproduction's Job", lambda: cluster.job(namespace, job_name(again.run_id)))
        done = run_like_the_pod(job, tmp_path / "pod-2")
    assert done.verdict is not None and done.verdict.verdict == "REPRODUCED"
    run = lineage.run(again.run_id, lambda r: r.state == "COMPLETE")
    assert run.runtime["kind"] == "kubernetes" and run.params == {"times": 3}
    assert run.reproduces is not None
    assert (run.reproduces.original_run_id, run.reproduces.verdict) == (original.run_id, "REPRODUCED")


def test_the_launcher_command_stops_gracefully_on_sigterm(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env |= {
        "PROVGRAPH_HOME": str(lsettings.home),
        "PROVGRAPH_TRANSPORT": "kafka",
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": lsettings.kafka_bootstrap_servers or "",
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": lsettings.kafka_topic_prefix,
        "PROVGRAPH_K8S_KUBECONFIG": str(lsettings.k8s_kubeconfig),
        "PROVGRAPH_K8S_NAMESPACE": namespace,
    }
    cli = Path(sys.executable).parent / "provgraph"
    proc = subprocess.Popen([str(cli), "launcher"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        result = submit(lsettings, tmp_path)
        wait_for("the Job", lambda: cluster.job(namespace, job_name(result.run_id)))
        wait_for("the offsets to be committed", lambda: committed_everything(lsettings))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr
    assert "shut down gracefully" in stderr


def test_the_watch_lists_again_after_410_gone(
    settings: pg.Settings, k8s: Path, cluster: Cluster, namespace: str
) -> None:
    """A watch from a compacted resourceVersion gets 410 Gone: the watcher lists again and catches up."""
    from provgraph.events.transport.memory import MemoryTransport
    from provgraph.services.launcher.jobs import build_job, selector
    from provgraph.services.launcher.kube import Kube
    from provgraph.services.launcher.watcher import JobReconciler, JobWatcher

    cfg = settings.model_copy(
        update={
            "k8s_kubeconfig": k8s,
            "k8s_namespace": namespace,
            "kafka_topic_prefix": "gone.",
            "k8s_pod_annotations": {"provgraph.dev/simulate": "fail"},
        }
    )
    failed = manual_request()
    kube = Kube.from_settings(cfg)
    kube.create_job(namespace, build_job(failed, CODE, cfg))
    wait_for("the Job to fail", lambda: cluster.job_condition(namespace, job_name(failed.run_id), "Failed"))

    lists: list[str] = []
    real_list = kube.list_jobs

    def stale_first(namespace: str | None, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        lists.append(label_selector)
        return ([], "1") if len(lists) == 1 else real_list(namespace, label_selector)

    def compacted() -> bool:
        """True once the API server answers a watch from resourceVersion 1 with 410 Gone."""
        from kubernetes import watch as k8s_watch

        from provgraph.services.launcher.kube import Gone

        try:
            for _ in kube.watch_jobs(k8s_watch.Watch(return_type=object), namespace, selector(cfg), "1", 1):
                pass
        except Gone:
            return True
        return False

    wait_for("etcd to compact resourceVersion 1", compacted, timeout=90)
    kube.list_jobs = stale_first  # type: ignore[method-assign]
    memory = MemoryTransport()
    watcher = JobWatcher(kube, JobReconciler(kube, memory), namespace, selector(cfg))
    watcher.start()
    try:
        wait_for("the FAIL report", lambda: memory.events, timeout=20)
    finally:
        watcher.stop()
        kube.close()
    assert len(lists) == 2
    [event] = memory.events
    assert event.event_type.value == "FAIL" and event.run.run_id == failed.run_id


# -- Kubernetes secrets for get_secret: mounted with envFrom, names recorded, values never -----------

SECRET_VALUE = f"s3cr3t-{uuid.uuid4().hex}"


def uses_secret(ctx: pg.Context) -> dict[str, Any]:
    found = ctx.get_secret("DB_PASSWORD")
    return {"digest": hashlib.sha256((found or "").encode()).hexdigest(), "missing": ctx.get_secret("NOPE")}


def submit_with_secrets(settings: pg.Settings, secrets: list[str]) -> pg.RunResult:
    backend = pg.Backend(settings)
    try:
        return pg.run(uses_secret, runtime="kubernetes", image=IMAGE, secrets=secrets, backend=backend)
    finally:
        backend.close()


def test_named_secrets_reach_get_secret_and_are_never_recorded(
    lsettings: pg.Settings,
    cluster: Cluster,
    namespace: str,
    lineage: Lineage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = {"DB_PASSWORD": base64.b64encode(SECRET_VALUE.encode()).decode()}
    cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": "db-creds"}, "data": data})
    with launcher(lsettings):
        result = submit_with_secrets(lsettings, ["db-creds"])
        job = wait_for("the Job", lambda: cluster.job(namespace, job_name(result.run_id)))
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "db-creds"}}]
    # KWOK runs no containers: give the pod's process what the kubelet would, from the real Secret
    secret = cluster.core.read_namespaced_secret("db-creds", namespace)
    for key, value in secret.data.items():
        monkeypatch.setitem(os.environ, key, base64.b64decode(value).decode())
    done = run_like_the_pod(job, tmp_path / "pod-home")
    assert done.state == "COMPLETE"
    assert done.results == {"digest": hashlib.sha256(SECRET_VALUE.encode()).hexdigest(), "missing": None}
    run = lineage.run(result.run_id, lambda r: r.state == "COMPLETE")
    assert run.runtime["secrets"] == ["db-creds"]  # the names, for `show` and reproductions
    stored = b"".join(p.read_bytes() for p in Path(lsettings.artifact_url).rglob("*") if p.is_file())
    assert SECRET_VALUE.encode() not in stored and b"db-creds" in stored  # the request names it; no value anywhere
    assert SECRET_VALUE.encode() not in (tmp_path / "graph.db").read_bytes()
    assert SECRET_VALUE not in repr(lineage.events)


def test_a_missing_secret_fails_the_run_before_any_job(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage
) -> None:
    with launcher(lsettings):
        result = submit_with_secrets(lsettings, ["not-there"])
        run = lineage.run(result.run_id, lambda r: r.state == "FAIL")
    assert run.error == f"run request refused: secret 'not-there' not found in namespace '{namespace}'"
    assert cluster.job(namespace, job_name(result.run_id)) is None
