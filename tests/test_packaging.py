"""Packaging and the public surface: folders map into `provgraph`, imports stay light."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import provgraph

REPO = Path(__file__).resolve().parent.parent
ROOTS = {
    "sdk": "provgraph",
    "cli": "provgraph.cli",
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
    assert set(provgraph.__all__) == set(provgraph._EXPORTS)
    for name in provgraph.__all__:
        assert getattr(provgraph, name) is not None
    assert not any(isinstance(getattr(provgraph, n), types.ModuleType) for n in provgraph.__all__)


def test_the_facets_package_lists_exactly_the_names_it_loads_and_each_resolves() -> None:
    """`events.facets` loads a facet module when one of its names is first asked for (start-up)."""
    from provgraph.events import facets

    assert set(facets.__all__) == {*facets._EXPORTS, "CUSTOM_FACETS"}
    for name, module in facets._EXPORTS.items():
        assert getattr(facets, name) is getattr(importlib.import_module(f"provgraph.events.facets.{module}"), name)
    assert [f.FACET_NAME for f in facets.CUSTOM_FACETS] and all(f.FACET_NAME for f in facets.CUSTOM_FACETS)


def test_the_version_is_written_once_in_pyproject() -> None:
    """`provgraph.__version__` and the producer URL of every event come from the installed metadata."""
    from provgraph.events.facets.base import PRODUCER

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert provgraph.__version__ == version
    assert f"https://github.com/provgraph/provgraph/tree/{version}" == PRODUCER
    sources = [p for folder in ROOTS for p in (REPO / folder).rglob("*.py")]
    assert [p for p in sources if f'"{version}"' in p.read_text()] == [], "a second copy of the version"
    # the manifests deploy the image of this version (a release bumps both)
    assert f'newTag: "{version}"' in (REPO / "deploy" / "kubernetes" / "kustomization.yaml").read_text()


def test_the_layer_contract_names_every_sdk_module() -> None:
    """The SDK is the root package, so the import contract lists its modules: none may be missing."""
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    listed = [
        set(c["source_modules"]) if c["name"].startswith("the SDK") else set(c["forbidden_modules"])
        for c in contracts
        if c["type"] == "forbidden"
    ]
    on_disk = {
        f"provgraph.{p.stem if p.is_file() else p.name}"
        for p in (REPO / "sdk").iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()
    }
    assert listed == [on_disk, on_disk]


def test_a_wrong_way_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    """`lint-imports` really fails on an upward import: graph importing the SDK, in a copy of the package."""
    package = tmp_path / "provgraph"
    for folder, name in ROOTS.items():
        target = package.joinpath(*name.split(".")[1:])
        shutil.copytree(REPO / folder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "graph" / "layer_probe.py").write_text("from provgraph._naming import is_store_uri  # noqa: F401\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout
    assert "graph and events import nothing of the SDK BROKEN" in proc.stdout
    assert "provgraph.graph.layer_probe -> provgraph._naming" in proc.stdout
