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


STORE_FACTORIES: dict[str, tuple[Callable[[pytest.FixtureRequest, Path], LineageStore], list[Any]]] = {
    "sqlite": (_sqlite, []),
}


def store_params() -> list[Any]:
    return [pytest.param(name, marks=marks, id=name) for name, (_, marks) in STORE_FACTORIES.items()]
