"""Lineage store factories for the shared contract suite: one entry per backend.

Each factory returns an empty store. Real-server backends are registered with the pytest marker
that makes their session fixture start the server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provgraph.graph.contract import LineageStore
from provgraph.graph.sqlite_store import SqliteLineageStore


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> LineageStore:
    return SqliteLineageStore(tmp_path / "graph.db")


def _neo4j(request: pytest.FixtureRequest, tmp_path: Path) -> LineageStore:
    from provgraph.graph.neo4j_config import Neo4jConfig
    from provgraph.graph.neo4j_store import Neo4jLineageStore

    return Neo4jLineageStore(Neo4jConfig(uri=request.getfixturevalue("neo4j")))


STORE_FACTORIES: dict[str, tuple[Callable[[pytest.FixtureRequest, Path], LineageStore], list[Any]]] = {
    "sqlite": (_sqlite, []),
    "neo4j": (_neo4j, [pytest.mark.neo4j]),
}


def store_params() -> list[Any]:
    return [pytest.param(name, marks=marks, id=name) for name, (_, marks) in STORE_FACTORIES.items()]
