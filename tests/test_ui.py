"""The web UI's bundle: built from the current ui/ sources, shipped in the package, served at / and /graphql."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import provgraph as pg
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.api.ui import FEATURES_QUERY, UI_DIST
from provgraph.events.artifacts import ArtifactStore
from provgraph.events.settings import Settings
from provgraph.events.synthetic import content_hash, run_events
from tests.helpers import graphql_data

REPO = Path(__file__).resolve().parent.parent


def test_bundle_is_built_from_the_current_sources() -> None:
    """ui/ changed without `make ui`: the committed bundle would not be what the sources say."""
    done = subprocess.run(["bash", str(REPO / "scripts" / "ui.sh"), "check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_stamp_follows_every_source_file(tmp_path: Path) -> None:
    """The hash covers each source file's content and name, so any edit makes the stamp stale."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", copy / "scripts")
    shutil.copytree(REPO / "ui", copy / "ui", ignore=shutil.ignore_patterns("node_modules"))

    def digest() -> str:
        return subprocess.run(
            ["bash", str(copy / "scripts" / "ui.sh"), "hash"], capture_output=True, text=True, check=True
        ).stdout.strip()

    original = digest()
    assert original == (UI_DIST / "SOURCE_HASH").read_text().strip()
    main = copy / "ui" / "src" / "main.tsx"
    main.write_text(main.read_text() + "\n")
    edited = digest()
    assert edited != original
    (copy / "ui" / "src" / "new.ts").write_text("export {};\n")
    assert digest() not in (original, edited)


def test_every_bundle_file_is_package_data() -> None:
    """pyproject's package-data globs must cover the whole bundle, or an installed provgraph serves a broken UI."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["provgraph.api"]
    files = [p.relative_to(UI_DIST.parent).as_posix() for p in UI_DIST.rglob("*") if p.is_file()]
    assert files
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with ServerThread(create_app(Settings(home=tmp_path / "home"))) as url:
        yield url


def test_ui_and_assets_are_served_without_a_token(server: str) -> None:
    page = httpx.get(server + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
    assert assets, page.text
    for path in assets:
        asset = httpx.get(server + path)
        assert asset.status_code == 200, path
        assert "immutable" in asset.headers["cache-control"]
    assert httpx.get(server + "/assets/nope.js").status_code == 404


def test_graphiql_is_served_from_the_package(server: str) -> None:
    """strawberry's own GraphiQL page loads React and GraphiQL from a CDN: blank offline. Ours does not."""
    page = httpx.get(server + "/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "<title>provgraph GraphiQL</title>" in page.text
    assert not re.search(r"https?://", page.text), "GraphiQL must not load anything from elsewhere"
    scripts = re.findall(r'src="([^"]+)"', page.text)
    assert scripts and all(s.startswith("/assets/") for s in scripts)
    bundle = httpx.get(server + scripts[0]).text
    assert "unpkg.com" not in bundle and "cdn.jsdelivr" not in bundle


def handler(ctx: pg.Context, n: int = 1) -> dict[str, int]:
    """A handler whose module (this file) becomes the run's code snapshot."""
    return {"n": n}


SNAPSHOT = "query($id: ID!) { codeSnapshot(runId: $id) { codeHash entrypoint size text } }"


@pytest.fixture
def runs(settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    """A real run (snapshot kept), a forged run naming a 600 kB object as its code, one naming nothing."""
    backend = pg.Backend(settings.model_copy(update={"project": "demo"}))
    real = pg.run(handler, backend=backend).raise_for_state()
    big, _ = ArtifactStore(settings.artifact_url).put_bytes(b"x" * 600_000)
    for run_id, code in [("forged-big", big), ("forged-missing", content_hash("nothing"))]:
        for event in run_events(run_id, namespace="demo", job="forged", code_hash=code):
            backend.transport.emit(event)
    backend.close()
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["demo"])[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        yield url, {"real": real.run_id, "token": token}


def test_code_snapshot_of_a_run(runs: tuple[str, dict[str, str]]) -> None:
    url, ids = runs
    snap = graphql_data(url, ids["token"], SNAPSHOT, id=ids["real"])["codeSnapshot"]
    source = Path(__file__).read_bytes()
    assert snap["text"] == source.decode()
    assert snap["size"] == len(source)
    assert snap["codeHash"] == "sha256:" + hashlib.sha256(source).hexdigest()
    assert snap["entrypoint"] == "test_ui.py:handler"


def test_code_snapshot_never_reads_a_large_object(runs: tuple[str, dict[str, str]]) -> None:
    url, ids = runs
    snap = graphql_data(url, ids["token"], SNAPSHOT, id="forged-big")["codeSnapshot"]
    assert snap["size"] == 600_000
    assert snap["text"] is None
    assert graphql_data(url, ids["token"], SNAPSHOT, id="forged-missing")["codeSnapshot"] is None
    assert graphql_data(url, ids["token"], SNAPSHOT, id="no-such-run")["codeSnapshot"] is None


def test_features_are_the_schema_introspected_once_behind_a_token(runs: tuple[str, dict[str, str]]) -> None:
    """The UI adapts to the schema's fields; the server answers them from one introspection per process."""
    url, ids = runs
    assert httpx.get(url + "/features.json").status_code == 401  # the UI's sign-in check
    auth = {"authorization": f"Bearer {ids['token']}"}
    first = httpx.get(url + "/features.json", headers=auth)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert httpx.get(url + "/features.json", headers=auth).content == first.content
    introspected = graphql_data(url, ids["token"], FEATURES_QUERY)
    assert first.json() == introspected
    query = {t["name"]: t["fields"] for t in first.json()["__schema"]["types"]}["Query"]
    runs_field = next(f for f in query if f["name"] == "runs")
    assert {"filter", "after", "project"} <= {a["name"] for a in runs_field["args"]}
