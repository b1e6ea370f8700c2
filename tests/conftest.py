"""Shared fixtures. Real services (Kafka, Neo4j, Kubernetes, S3) start once per session through
`tests.services.ensure`, only when a test that needs them is collected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provgraph import Backend, Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Embedded settings in a fresh home; the environment cannot leak into unit tests."""
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROVGRAPH_TRANSPORT", raising=False)
    monkeypatch.delenv("PROVGRAPH_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    return load_settings()


@pytest.fixture
def backend(settings: Settings) -> Iterator[Backend]:
    b = Backend(settings)
    yield b
    b.close()
