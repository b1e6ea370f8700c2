"""Packaging and the public surface: folders map into `provgraph`, imports stay light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import types
from pathlib import Path

import provgraph

REPO = Path(__file__).resolve().parent.parent
ROOTS = {
    "sdk": "provgraph",
    "events": "provgraph.events",
    "graph": "provgraph.graph",
    "api": "provgraph.api",
    "services": "provgraph.services",
}


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, package in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    assert found == listed


def test_import_provgraph_loads_no_heavy_client() -> None:
    code = (
        "import sys, provgraph; heavy = ['kafka', 'neo4j', 'kubernetes', 'strawberry', 'faststream', 'fsspec',"
        " 'aiokafka', 'pandas']; print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_all_lists_exactly_the_public_names_and_each_resolves() -> None:
    assert set(provgraph.__all__) == set(provgraph._EXPORTS) | {"__version__"}
    for name in provgraph.__all__:
        assert getattr(provgraph, name) is not None
    assert not any(isinstance(getattr(provgraph, n), types.ModuleType) for n in provgraph.__all__)
