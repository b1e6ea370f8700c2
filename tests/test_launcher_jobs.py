"""The launcher's pure parts: Job names, labels, resources, request checks, failure messages, and how
its seq-0 events rank against the pod's own in the projection. No services needed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph._emitter import RunEmitter
from provgraph.events.facets import CodeJobFacet, RequestedRunFacet, RuntimeRunFacet
from provgraph.events.model import EventType
from provgraph.events.request import RunRequest
from provgraph.events.transport.memory import MemoryTransport
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.services.launcher.jobs import (
    ANNOTATION_REPORTED,
    FINALIZER,
    LABEL_RUN,
    RunIdentity,
    build_job,
    check_request,
    job_name,
    label_value,
    resource_requirements,
    selector,
)
from provgraph.services.launcher.reports import failure_message, launcher_event
from provgraph.services.launcher.watcher import JobReconciler

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CODE = "sha256:" + "c" * 64


def request(**kw: object) -> RunRequest:
    base: dict[str, object] = {
        "run_id": "0199c3a2-7b1e-7c3d-8e4f-123456789abc",
        "project": "default",
        "job": "train",
        "entrypoint": "train.py:train",
        "code_hash": CODE,
        "runtime": "kubernetes",
        "image": "registry.local/train:1",
    }
    return RunRequest.model_validate(base | kw)


@pytest.mark.parametrize(
    "run_id",
    ["0199c3a2-7b1e-7c3d-8e4f-123456789abc", "Run_ID with spaces/and/slashes", "x" * 200, "---", "ÄÖÜ"],
)
def test_job_names_are_deterministic_dns_labels(run_id: str) -> None:
    name = job_name(run_id)
    assert name == job_name(run_id) and len(name) <= 63 and DNS_LABEL.match(name)
    assert job_name(run_id + "1") != name


def test_uuid_run_ids_keep_a_readable_job_name() -> None:
    assert job_name("0199c3a2-7b1e-7c3d-8e4f-123456789abc") == "pg-0199c3a2-7b1e-7c3d-8e4f-123456789abc"


@pytest.mark.parametrize("value", ["default", "my project/with spaces", "y" * 100, "-edge-", "ok.v1_2"])
def test_label_values_are_label_safe(value: str) -> None:
    label = label_value(value)
    assert len(label) <= 63 and LABEL.match(label)
    if LABEL.match(value) and len(value) <= 63:
        assert label == value


def test_resources_set_requests_and_limits_and_sided_keys_win() -> None:
    got = resource_requirements({"limits.cpu": "2", "cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"})
    assert got == {
        "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"},
    }
    assert resource_requirements({"requests.memory": "64Mi"}) == {"requests": {"memory": "64Mi"}}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"resources": {"cpu": "lots"}}, "resource cpu='lots' is not a Kubernetes quantity"),
        ({"resources": {"memory": "-1Gi"}}, "resource memory='-1Gi' is negative"),
        ({"namespace": "Not_A_Namespace"}, "is not a valid Kubernetes namespace name"),
        ({"namespace": "elsewhere"}, "namespace 'elsewhere' is not served by this launcher"),
        ({"image": None}, "names no container image"),
        ({"runtime": "local"}, "runs only runtime 'kubernetes'"),
        ({"image_pull_secret": "Bad Secret"}, "is not a valid Secret name"),
    ],
)
def test_requests_kubernetes_would_refuse_are_caught_first(
    settings: pg.Settings, change: dict[str, object], problem: str
) -> None:
    assert check_request(request(), settings) is None
    assert problem in (check_request(request(**change), settings) or "")


def test_namespaces_served(settings: pg.Settings) -> None:
    served = settings.model_copy(update={"k8s_namespaces": ["elsewhere"]})
    assert check_request(request(namespace="elsewhere"), served) is None
    anywhere = settings.model_copy(update={"k8s_namespaces": ["*"]})
    assert check_request(request(namespace="anything-at-all"), anywhere) is None


def test_job_manifest(settings: pg.Settings) -> None:
    cfg = settings.model_copy(
        update={
            "kafka_bootstrap_servers": "kafka:9092",
            "kafka_topic_prefix": "team-a.",
            "k8s_namespace": "runs",
            "k8s_backoff_limit": 0,
            "k8s_ttl_seconds_after_finished": 600,
            "k8s_image_pull_policy": "IfNotPresent",
            "k8s_pod_annotations": {"sidecar.istio.io/inject": "false"},
            "s3_endpoint_url": "http://s3.local:9000",
        }
    )
    req = request(project="my project", resources={"cpu": "1"}, image_pull_secret="regcred")
    job = build_job(req, "sha256:" + "d" * 64, cfg)
    meta, spec = job["metadata"], job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert meta["name"] == job_name(req.run_id) and meta["namespace"] == "runs"
    assert meta["finalizers"] == [FINALIZER]
    assert meta["labels"]["provgraph.dev/project"] == label_value("my project") != "my project"
    assert meta["annotations"]["provgraph.dev/project"] == "my project"
    assert spec["template"]["metadata"]["labels"] == meta["labels"]
    assert spec["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (0, 600)
    assert container["command"] == ["provgraph", "exec", "sha256:" + "d" * 64]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"] == {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}] and pod["restartPolicy"] == "Never"
    assert pod["enableServiceLinks"] is False  # a Service provgraph-* would inject unknown PROVGRAPH_* settings
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "PROVGRAPH_TRANSPORT": "kafka",
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": "team-a.",
        "PROVGRAPH_ARTIFACT_STORE": cfg.artifact_url,
        "PROVGRAPH_PROJECT": "my project",
        "PROVGRAPH_S3_ENDPOINT_URL": "http://s3.local:9000",
    }
    assert selector(cfg) == f"{LABEL_RUN},provgraph.dev/instance=team-a"
    assert RunIdentity.from_job(job) == RunIdentity(req.run_id, "my project", "train")


def test_failure_message_names_the_reason_and_what_the_pods_say() -> None:
    job = {
        "metadata": {"namespace": "runs", "name": "pg-1"},
        "status": {
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                },
            ]
        },
    }
    oom = {
        "metadata": {"name": "pg-1-abcde"},
        "status": {
            "containerStatuses": [{"name": "run", "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]
        },
    }
    pull = {
        "metadata": {"name": "pg-1-fghij"},
        "status": {
            "containerStatuses": [
                {"name": "run", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling"}}}
            ]
        },
    }
    text = failure_message(job, [oom, pull])
    assert text.startswith("Kubernetes Job runs/pg-1 failed: BackoffLimitExceeded (Job has reached")
    assert "pod pg-1-abcde container run terminated: OOMKilled (exit code 137)" in text
    assert "pod pg-1-fghij container run waiting: ImagePullBackOff: Back-off pulling" in text


def test_the_pods_terminal_event_beats_the_launchers_and_the_launchers_beats_start(tmp_path: Path) -> None:
    """Launcher events are seq 0: they end a run that never reported, never overrule one that did."""
    run_id = "0199c3a2-7b1e-7c3d-8e4f-123456789abc"
    who = RunIdentity(run_id, "default", "train")
    code = CodeJobFacet(code_hash=CODE, entrypoint="train.py:train")
    memory = MemoryTransport()
    emitter = RunEmitter(memory, run_id=run_id, namespace="default", job_name="train", code=code)
    t0 = datetime.now(UTC)
    runtime = RuntimeRunFacet(kind="kubernetes")
    emitter.requested({}, runtime, RequestedRunFacet(request_hash=CODE, runtime="kubernetes"))
    emitter.start({}, RuntimeRunFacet(kind="kubernetes"))
    fail = launcher_event(who, EventType.FAIL, "fail", "Kubernetes Job x failed: OOMKilled", t0 + timedelta(hours=1))
    store = SqliteLineageStore(tmp_path / "g.db")
    store.apply([*memory.events, fail, fail])
    run = store.run(run_id)
    assert run is not None and run.state == "FAIL" and run.error == "Kubernetes Job x failed: OOMKilled"
    assert fail.run.facets.event is not None and fail.run.facets.event.event_id == f"{run_id}:launcher:fail"
    complete = emitter.complete({"ok": 1})
    store.apply([complete])
    run = store.run(run_id)
    assert run is not None and run.state == "COMPLETE"
    store.close()


class FakeKube:
    """What the reconciler asks of Kubernetes, recorded."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, list[dict[str, Any]]]] = []

    def pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return []

    def patch_job(self, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
        self.patches.append((name, operations))


def a_job(settings: pg.Settings, *conditions: str, deleting: bool = False) -> dict[str, Any]:
    job = build_job(request(), CODE, settings)
    job["metadata"] |= {"uid": "u-1", "finalizers": [FINALIZER]}
    if deleting:
        job["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    job["status"] = {
        "conditions": [{"type": c, "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"} for c in conditions]
    }
    return job


@pytest.mark.parametrize(
    ("conditions", "deleting", "report"),
    [
        ((), False, None),  # running: nothing to say
        (("Complete",), False, None),  # the pod reported
        (("Complete",), True, None),  # finished, then cleaned up (TTL): release the finalizer only
        (("FailureTarget",), False, None),  # failing: wait for Failed
        (("FailureTarget", "Failed"), False, "FAIL"),
        (("FailureTarget", "Failed"), True, "FAIL"),
        ((), True, "ABORT"),
        (("FailureTarget",), True, "ABORT"),  # deleted (e.g. its namespace) before it could fail
    ],
)
def test_what_the_watcher_reports(
    settings: pg.Settings, conditions: tuple[str, ...], deleting: bool, report: str | None
) -> None:
    kube, memory = FakeKube(), MemoryTransport()
    reconciler = JobReconciler(kube, memory)  # type: ignore[arg-type]
    job = a_job(settings, *conditions, deleting=deleting)
    reconciler.reconcile(job)
    reconciler.reconcile(job)  # the same state seen twice (queued watch events): reported once
    kinds = [e.event_type.value for e in memory.events]
    assert kinds == ([report] if report else [])
    ops = [op for _, operations in kube.patches for op in operations]
    if report:
        assert {"op": "add", "path": "/metadata/annotations/provgraph.dev~1reported", "value": report} in ops
    if deleting:
        assert {"op": "remove", "path": "/metadata/finalizers/0"} in ops
    if not report and not deleting:
        assert not kube.patches
    reported = a_job(settings, *conditions, deleting=deleting)
    reported["metadata"]["annotations"][ANNOTATION_REPORTED] = "FAIL"
    JobReconciler(FakeKube(), fresh := MemoryTransport()).reconcile(reported)  # type: ignore[arg-type]
    assert not fresh.events  # a restarted launcher trusts the annotation
