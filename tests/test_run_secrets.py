"""Secrets a kubernetes run names: checked by the SDK before anything is sent, and by the launcher
(which mounts them with `envFrom` so `context.get_secret` finds their keys; see test_launcher_secrets)."""

from __future__ import annotations

from typing import Any

import pytest

import provgraph as pg
from provgraph.services.launcher.jobs import build_job, check_request
from tests.test_launcher_jobs import request

IMAGE = "registry.local/provgraph-runs:test"


def uses_secret(ctx: pg.Context) -> dict[str, Any]:
    return {"found": ctx.get_secret("DB_PASSWORD") is not None}


@pytest.mark.parametrize(
    ("secrets", "runtime", "message"),
    [
        (["Bad_Name"], "kubernetes", "secret 'Bad_Name' is not a valid Kubernetes Secret name (DNS-1123 subdomain)"),
        (["a", "a"], "kubernetes", "a secret is named twice"),
        (
            ["a"],
            "local",
            "secrets name Kubernetes Secrets (runtime 'kubernetes'); elsewhere get_secret reads the"
            " secrets file (PROVGRAPH_SECRETS_FILE) and the environment",
        ),
    ],
)
def test_secret_names_are_checked_before_anything_is_sent(
    backend: pg.Backend, secrets: list[str], runtime: str, message: str
) -> None:
    with pytest.raises(pg.ConfigError) as err:
        pg.run(uses_secret, runtime=runtime, image=IMAGE, secrets=secrets, backend=backend)
    assert str(err.value) == message


def test_the_launcher_checks_names_and_mounts_them_after_its_own_env(settings: pg.Settings) -> None:
    assert check_request(request(secrets=["db-creds", "api.keys"]), settings) is None
    assert check_request(request(secrets=["../x"]), settings) == (
        "secret '../x' is not a valid Kubernetes Secret name (DNS-1123 subdomain)"
    )
    assert check_request(request(secrets=[f"s{i}" for i in range(17)]), settings) == (
        "a run names at most 16 secrets, not 17"
    )
    job = build_job(request(secrets=["db-creds", "api.keys"]), "sha256:" + "d" * 64, settings)
    [container] = job["spec"]["template"]["spec"]["containers"]
    # `env` (provgraph's own settings) wins over `envFrom`: a Secret cannot redirect the run's events
    assert container["envFrom"] == [{"secretRef": {"name": "db-creds"}}, {"secretRef": {"name": "api.keys"}}]
    assert (
        "envFrom"
        not in build_job(request(), "sha256:" + "d" * 64, settings)["spec"]["template"]["spec"]["containers"][0]
    )
