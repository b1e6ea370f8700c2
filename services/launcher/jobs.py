"""From a run request to a `batch/v1` Job manifest: names, labels, resources, and the checks before it.

Pure functions (no API calls), so the spec can be tested without a cluster.

- **Name**: `pg-<run id>` when that is a DNS-1123 label (a UUID run id is), else a slug of the run id
  plus a hash of it, ≤ 63 characters. Same run id, same name: a redelivered request meets
  `409 AlreadyExists` instead of creating a second Job.
- **Labels** (selectable, ≤ 63 label-safe characters; a hash suffix when a value had to be cut):
  `provgraph.dev/run-id`, `provgraph.dev/project`, `provgraph.dev/job`, and `provgraph.dev/instance`
  (the deployment: its topic prefix), on the Job and its pods. The full values are annotations of
  the same names; the launcher reads those, never the labels.
- **Resources**: `{"cpu": "2", "memory": "4Gi"}` sets requests and limits alike;
  `requests.<name>` / `limits.<name>` set one side and win over a bare key
  (`{"memory": "4Gi", "requests.cpu": "500m", "limits.cpu": "2"}`).
- **Pod**: one container `run` executing `provgraph exec <request hash>`, `restartPolicy: Never`,
  env = the event transport and artifact store settings (see `pod_env`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from provgraph.events.request import RunRequest, is_dns_subdomain, secrets_problem

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

PREFIX = "provgraph.dev/"
LABEL_RUN = PREFIX + "run-id"
LABEL_PROJECT = PREFIX + "project"
LABEL_JOB = PREFIX + "job"
LABEL_INSTANCE = PREFIX + "instance"
ANNOTATION_REQUEST = PREFIX + "request"
"""Hash of the stored run request the pod executes."""
ANNOTATION_REPORTED = PREFIX + "reported"
"""Set by the launcher once it has reported the Job's end (FAIL or ABORT), so it reports it once."""
FINALIZER = PREFIX + "launcher"
CONTAINER = "run"
ALL_NAMESPACES = "*"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS_LABEL.match(name))


def job_name(run_id: str) -> str:
    """The Job's name for a run: deterministic, a DNS-1123 label (≤ 63 characters)."""
    plain = f"pg-{run_id}"
    if is_dns_label(plain):
        return plain
    slug = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")[:49].rstrip("-")
    return f"pg-{slug}-{_digest(run_id)}" if slug else f"pg-{_digest(run_id)}"


def label_value(value: str) -> str:
    """`value` if it is a valid label value, else a label-safe slug of it with a hash suffix (≤ 63)."""
    if len(value) <= 63 and _LABEL_VALUE.match(value):
        return value
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:52]
    slug = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", slug)
    return f"{slug}-{_digest(value)}" if slug else _digest(value)


def instance(settings: Settings) -> str:
    """The deployment a Job belongs to: launchers with different topic prefixes never see each other's Jobs."""
    return label_value(settings.kafka_topic_prefix.strip("._-") or "default")


def selector(settings: Settings) -> str:
    """Label selector of this launcher's Jobs."""
    return f"{LABEL_RUN},{LABEL_INSTANCE}={instance(settings)}"


def namespace_of(request: RunRequest, settings: Settings) -> str:
    return request.namespace or settings.k8s_namespace


def watched_namespaces(settings: Settings) -> list[str | None]:
    """Namespaces whose Jobs the launcher follows; `[None]` means all (cluster-wide)."""
    if ALL_NAMESPACES in settings.k8s_namespaces:
        return [None]
    return list(dict.fromkeys([settings.k8s_namespace, *settings.k8s_namespaces]))


def resource_requirements(resources: dict[str, str]) -> dict[str, dict[str, str]]:
    """Container `resources` from a request's `resources` (see the module docstring)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    sided = []
    for key, value in resources.items():
        side, dot, name = key.partition(".")
        if dot and side in ("requests", "limits"):
            sided.append((side, name, value))
        else:
            requests[key] = limits[key] = value
    for side, name, value in sided:  # a sided key wins over a bare one, whatever the order
        (requests if side == "requests" else limits)[name] = value
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _quantity_problem(key: str, value: str) -> str | None:
    from kubernetes.utils import quantity  # lazy: the launcher's dependency only

    parse: Any = quantity.parse_quantity  # untyped
    try:
        amount: Decimal = parse(value)
    except (ValueError, TypeError) as exc:
        return f"resource {key}={value!r} is not a Kubernetes quantity ({exc})"
    if amount < 0:
        return f"resource {key}={value!r} is negative"
    return None


def check_request(request: RunRequest, settings: Settings) -> str | None:
    """Why Kubernetes would refuse a Job for this request (or why this launcher will not run it); None if fine."""
    if request.runtime != "kubernetes":
        return f"run request has runtime {request.runtime!r}; the launcher runs only runtime 'kubernetes'"
    if not request.image:
        return "run request names no container image"
    namespace = namespace_of(request, settings)
    if not is_dns_label(namespace):
        return f"namespace {namespace!r} is not a valid Kubernetes namespace name (DNS-1123 label)"
    served = watched_namespaces(settings)
    if None not in served and namespace not in served:
        return (
            f"namespace {namespace!r} is not served by this launcher (it serves {', '.join(map(str, served))};"
            " see PROVGRAPH_K8S_NAMESPACES)"
        )
    secret = request.image_pull_secret
    if secret is not None and not is_dns_subdomain(secret):
        return f"image pull secret {secret!r} is not a valid Secret name"
    problem = secrets_problem(request.secrets)
    if problem is not None:
        return problem
    for key, value in request.resources.items():
        problem = _quantity_problem(key, value)
        if problem:
            return problem
    return None


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """Who a Job runs for, as the launcher's events need it."""

    run_id: str
    project: str
    job: str

    @classmethod
    def of(cls, request: RunRequest) -> RunIdentity:
        return cls(request.run_id, request.project, request.job)

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> RunIdentity | None:
        """From a Job's annotations; None for a Job that is not the launcher's."""
        ann = (job.get("metadata") or {}).get("annotations") or {}
        run_id, project, name = ann.get(LABEL_RUN), ann.get(LABEL_PROJECT), ann.get(LABEL_JOB)
        if not (run_id and project and name):
            return None
        return cls(run_id, project, name)


def pod_env(request: RunRequest, settings: Settings) -> dict[str, str]:
    """What `provgraph exec` in the pod needs: events to Kafka, artifacts from the same store."""
    env = {
        "PROVGRAPH_TRANSPORT": "kafka",
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "PROVGRAPH_ARTIFACT_STORE": request.artifact_store or settings.artifact_url,
        "PROVGRAPH_PROJECT": request.project,
    }
    if settings.s3_endpoint_url:
        env["PROVGRAPH_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    return env


def build_job(request: RunRequest, request_digest: str, settings: Settings) -> dict[str, Any]:
    """The Job manifest for a checked request (`check_request` returned None)."""
    identity = {LABEL_RUN: request.run_id, LABEL_PROJECT: request.project, LABEL_JOB: request.job}
    labels = {k: label_value(v) for k, v in identity.items()} | {LABEL_INSTANCE: instance(settings)}
    annotations = identity | {ANNOTATION_REQUEST: request_digest}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": request.image,
        "command": ["provgraph", "exec", request_digest],
        "env": [{"name": k, "value": v} for k, v in pod_env(request, settings).items()],
    }
    if request.secrets:  # the Secrets' keys as variables for `get_secret`; `env` above wins over them
        container["envFrom"] = [{"secretRef": {"name": name}} for name in request.secrets]
    if request.resources:
        container["resources"] = resource_requirements(request.resources)
    if settings.k8s_image_pull_policy:
        container["imagePullPolicy"] = settings.k8s_image_pull_policy
    # No service links: a Service named provgraph-* would inject PROVGRAPH_* variables (see config.NOT_SETTINGS).
    pod: dict[str, Any] = {"restartPolicy": "Never", "enableServiceLinks": False, "containers": [container]}
    if request.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": request.image_pull_secret}]
    if settings.k8s_service_account:
        pod["serviceAccountName"] = settings.k8s_service_account
    spec: dict[str, Any] = {
        "backoffLimit": settings.k8s_backoff_limit,
        "template": {
            "metadata": {"labels": labels, "annotations": {**settings.k8s_pod_annotations, **annotations}},
            "spec": pod,
        },
    }
    if settings.k8s_ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = settings.k8s_ttl_seconds_after_finished
    if settings.k8s_active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = settings.k8s_active_deadline_seconds
    metadata: dict[str, Any] = {
        "name": job_name(request.run_id),
        "namespace": namespace_of(request, settings),
        "labels": labels,
        "annotations": annotations,
    }
    if settings.k8s_job_finalizer:
        metadata["finalizers"] = [FINALIZER]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
