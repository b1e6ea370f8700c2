"""deploy/kubernetes/ is accepted by a real API server and agrees with the code.

The manifests are applied (server-side apply, strict field validation: first a dry run, then for
real) into a fresh namespace; then the launcher's RBAC is checked with SubjectAccessReviews (Jobs,
Pods, Secrets in its namespace, nothing elsewhere), and the launcher and projector Deployments must
become available (KWOK runs their pods). Settings and commands are checked against the code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from provgraph.cli import app
from provgraph.events.settings import ENV_PREFIX, Settings
from tests.helpers import wait_for

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
KUSTOMIZATION = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
DOCS: list[dict[str, Any]] = [
    doc for name in KUSTOMIZATION["resources"] for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc
]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in DOCS if d["kind"] == kind}


def test_every_manifest_file_is_listed_and_namespace_scoped() -> None:
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == set(KUSTOMIZATION["resources"])
    assert all("namespace" not in d["metadata"] for d in DOCS)
    assert not {"Namespace", "ClusterRole", "ClusterRoleBinding"} & {d["kind"] for d in DOCS}
    assert set(of_kind("Deployment")) == {
        "provgraph-launcher",
        "provgraph-projector",
        "provgraph-pipeline-controller",
        "provgraph-api",
    }


def test_no_service_links_reach_the_settings() -> None:
    """Service `provgraph-api` would give every pod PROVGRAPH_API_PORT=tcp://…: an invalid setting."""
    for deployment in of_kind("Deployment").values():
        assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_settings_and_commands_are_the_codes() -> None:
    config = of_kind("ConfigMap")["provgraph-settings"]["data"]
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    for deployment in of_kind("Deployment").values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][0] in commands
        literal = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        names = set(config) | {e["name"] for e in container.get("env", [])}
        unknown = {n for n in names if n.startswith(ENV_PREFIX)} - {
            ENV_PREFIX + f.upper() for f in Settings.model_fields
        }
        assert not unknown, f"{deployment['metadata']['name']}: {unknown} are not settings"
        fields = {k[len(ENV_PREFIX) :].lower(): v for k, v in (config | literal).items()}
        Settings.model_validate(fields)


# -- against the API server ------------------------------------------------------------------------


@pytest.fixture
def cluster(k8s: Path) -> Iterator[tuple[Any, str]]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(k8s))
    core: Any = client.CoreV1Api(api)
    namespace = f"pgt-deploy-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    yield api, namespace
    core.delete_namespace(namespace)
    api.close()


def apply(api: Any, doc: dict[str, Any], namespace: str, **kw: Any) -> None:
    """`kubectl apply --server-side` of one object, unknown fields refused."""
    from kubernetes.dynamic import DynamicClient

    resource: Any = DynamicClient(api).resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    resource.server_side_apply(
        body=doc,
        name=doc["metadata"]["name"],
        namespace=namespace,
        field_manager="provgraph-tests",
        query_params=[("fieldValidation", "Strict")],
        **kw,
    )


def allowed(api: Any, namespace: str, account_ns: str, verb: str, resource: str, group: str = "") -> bool:
    from kubernetes import client

    body: Any = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{account_ns}:provgraph-launcher",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{account_ns}"],
            "resourceAttributes": {"namespace": namespace, "verb": verb, "group": group, "resource": resource},
        },
    }
    review: Any = client.AuthorizationV1Api(api).create_subject_access_review(body)
    return bool(review.status.allowed)


@pytest.mark.k8s
def test_the_manifests_are_accepted_and_the_launcher_may_do_its_job_there_only(cluster: tuple[Any, str]) -> None:
    from kubernetes import client

    api, namespace = cluster
    for doc in DOCS:
        apply(api, doc, namespace, dry_run="All")
    for doc in DOCS:
        apply(api, doc, namespace)

    for verb in ("create", "get", "list", "watch", "delete", "patch"):
        assert allowed(api, namespace, namespace, verb, "jobs", "batch"), verb
    for verb in ("get", "list", "watch"):
        assert allowed(api, namespace, namespace, verb, "pods"), verb
    assert allowed(api, namespace, namespace, "get", "secrets")
    assert not allowed(api, namespace, namespace, "list", "secrets")
    assert not allowed(api, namespace, namespace, "create", "pods")
    assert not allowed(api, "default", namespace, "create", "jobs", "batch")  # its namespace only
    assert not allowed(api, "default", namespace, "get", "secrets")

    apps: Any = client.AppsV1Api(api)

    def available(name: str) -> bool:
        return (apps.read_namespaced_deployment(name, namespace).status.available_replicas or 0) >= 1

    for name in ("provgraph-launcher", "provgraph-projector", "provgraph-pipeline-controller"):
        wait_for(f"deployment {name} to become available", partial(available, name), interval=0.5)
