"""Shared fixtures. Real services (Kafka, Neo4j, Kubernetes, S3) start once per session through
`tests.services.ensure`, only when a test that needs them is collected."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.services  # noqa: F401  (records the environment before any fixture changes it)
from provgraph import Backend, Settings, load_settings
from provgraph.graph.contract import LineageStore
from tests.stores import STORE_FACTORIES, store_params


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Embedded settings in a fresh home; the environment cannot leak into unit tests."""
    for name in [n for n in os.environ if n.startswith("PROVGRAPH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return load_settings()


@pytest.fixture
def backend(settings: Settings) -> Iterator[Backend]:
    b = Backend(settings)
    yield b
    b.close()


# -- Kafka (real broker) ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka() -> str:
    """Bootstrap servers of the real Kafka broker: started once per session, stopped at exit."""
    from tests.services import ensure

    return ensure("kafka")["PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS"]


# -- Neo4j (real server) ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def neo4j() -> str:
    """Bolt URI of the real Neo4j server (auth off): started once per session, stopped at exit."""
    from tests.services import ensure

    return ensure("neo4j")["PROVGRAPH_NEO4J_URI"]


# -- S3 (moto server) ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3() -> str:
    """Endpoint URL of the S3-compatible test server (moto), with test credentials in the environment."""
    import os

    from tests.services import ensure

    env = ensure("s3")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        os.environ.setdefault(key, env.get(key, "testing" if "REGION" not in key else "us-east-1"))
    return env["PROVGRAPH_S3_ENDPOINT_URL"]


# -- Kubernetes (real API server, KWOK nodes) -----------------------------------------------------


@pytest.fixture(scope="session")
def k8s() -> Path:
    """Kubeconfig of the real Kubernetes control plane (pods simulated by KWOK): started once per
    session, stopped at exit. See scripts/infra/k8s.sh for the pod annotations that make pods fail."""
    from tests.services import ensure

    return Path(ensure("k8s")["KUBECONFIG"])


# -- Lineage stores (the contract suite and the security tests) ---------------------------------


@pytest.fixture(params=store_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LineageStore]:
    """An empty store of each kind (SQLite; Neo4j on the real server): one test, every store."""
    factory, _ = STORE_FACTORIES[request.param]
    s = factory(request, tmp_path)
    s.reset()
    yield s
    s.close()
