"""The web UI's registry, metric charts and pipeline DAG in real Chromium, against a real `provgraph serve`
(with tokens) on an embedded store seeded by real runs. Screenshots go to tests/output/ui/."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright, expect, sync_playwright

import provgraph as pg
from provgraph.api.auth import TokenStore
from provgraph.events.artifacts import sha256_bytes
from provgraph.pipelines import run_pipeline
from tests import ui_steps
from tests.browser import BrowserMissing, launch, serve
from tests.helpers import graphql, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUTPUT = Path(__file__).parent / "output" / "ui"
expect.set_options(timeout=20_000)  # a loaded 2-core machine: pages take seconds


@dataclass
class Seeded:
    url: str
    token: str
    home: Path
    curve: str
    models: list[str]
    """Runs that logged store://demo/model v1, v2."""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("ui-registry")
    home = root / "home"
    saved = {k: os.environ.pop(k) for k in [n for n in os.environ if n.startswith("PROVGRAPH_")]}
    os.environ["PROVGRAPH_HOME"] = str(home)
    try:
        settings = pg.load_settings()
        backend = pg.Backend(settings)
        curve = pg.run(ui_steps.curve, project="demo", backend=backend).raise_for_state()
        models = [
            pg.run(ui_steps.train, params={"body": b}, project="demo", backend=backend).raise_for_state()
            for b in ("w1", "w2")
        ]
        pg.tag(f"store://demo/model@{sha256_bytes(b'w1')}", "production", backend=backend)
        backend.close()
        tokens = TokenStore(settings.tokens_db)
        token = tokens.create(["demo"], name="ui")[1]
        tokens.close()
    finally:
        os.environ.pop("PROVGRAPH_HOME", None)
        os.environ.update(saved)
    with serve(home) as url:
        yield Seeded(url, token, home, curve.run_id, [m.run_id for m in models])


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture
def page(playwright: Playwright, seeded: Seeded, request: pytest.FixtureRequest) -> Iterator[Page]:
    try:
        browser = launch(playwright)
    except BrowserMissing as exc:
        pytest.fail(str(exc))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg_page = context.new_page()
    errors: list[str] = []
    pg_page.on("pageerror", lambda e: errors.append(str(e)))
    yield pg_page
    OUTPUT.mkdir(parents=True, exist_ok=True)
    pg_page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()
    browser.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def sign_in(page: Page, seeded: Seeded, path: str) -> None:
    page.goto(seeded.url + path)
    page.get_by_placeholder("pgt_…").fill(seeded.token)
    page.get_by_role("button", name="Use token").click()


def test_artifact_page_shows_versions_metadata_and_moves_an_alias(page: Page, seeded: Seeded) -> None:
    v1, v2 = sha256_bytes(b"w1"), sha256_bytes(b"w2")
    sign_in(page, seeded, "/#/artifacts?ns=store%3A%2F%2Fdemo&name=model")
    artifact = page.get_by_test_id("artifact")
    expect(artifact.locator("tbody tr[data-version]")).to_have_count(2)
    expect(artifact.locator(f"tr[data-version='{v1}'] .aliases")).to_have_text("production")
    expect(artifact.locator(f"tr[data-version='{v2}'] .aliases")).to_have_text("")
    producer = artifact.locator(f"tr[data-version='{v2}'] a[href='#/run/{seeded.models[1]}']")
    expect(producer).to_have_text("train")  # the producing run, by its job
    meta = page.get_by_test_id("meta")  # the latest version's metadata
    expect(meta.locator("tr[data-meta='framework'] td")).to_have_text("sklearn")
    expect(meta.locator("tr[data-meta='metrics'] td")).to_contain_text('"accuracy": 0.91')
    history = page.get_by_test_id("tag-history").locator("tr")
    expect(history).to_have_count(1)

    form = page.get_by_test_id("tag-form")
    form.locator("input[name=alias]").fill("production")
    form.locator("select[name=version]").select_option(v2)
    form.get_by_role("button", name="Move alias").click()

    expect(history).to_have_count(2)
    expect(history.nth(0).locator(".alias-name")).to_have_text("production")
    expect(history.nth(0)).to_contain_text(v2[:19])
    expect(history.nth(0)).to_contain_text("token:")  # who moved it: this session's token
    expect(history.nth(1)).to_contain_text(v1[:19])
    expect(artifact.locator(f"tr[data-version='{v2}'] .aliases")).to_have_text("production")
    expect(artifact.locator(f"tr[data-version='{v1}'] .aliases")).to_have_text("")


def test_metric_logged_at_three_steps_is_a_chart_of_three_points(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, f"/#/run/{seeded.curve}")
    chart = page.locator(".chart[data-metric='loss']")
    expect(chart).to_have_attribute("data-points", "0:0.9 1:0.5 2:0.25")
    expect(chart.locator("canvas")).to_have_count(1)  # drawn by uPlot
    expect(chart).to_contain_text("loss")


def _pipeline_run(url: str, token: str) -> dict[str, Any] | None:
    query = 'query { runs(job: "gated_pair", project: "demo") { nodes { runId state } } }'
    nodes = graphql(url, token, query)["data"]["runs"]["nodes"]
    return nodes[0] if nodes else None


def test_pipeline_dag_shows_step_states_live(page: Page, seeded: Seeded, tmp_path: Path) -> None:
    raw, gate = tmp_path / "raw.txt", tmp_path / "gate"
    raw.write_text("1 2 3")
    done: list[Any] = []

    def run() -> None:
        backend = pg.Backend(pg.Settings(home=seeded.home))
        try:
            done.append(
                run_pipeline(ui_steps.gated_pair, {"raw": str(raw), "gate": str(gate)}, project="demo", backend=backend)
            )
        finally:
            backend.close()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        started = wait_for("the pipeline run", lambda: _pipeline_run(seeded.url, seeded.token), timeout=120)
        sign_in(page, seeded, f"/#/run/{started['runId']}")
        dag = page.get_by_test_id("pipeline")
        expect(dag.get_by_test_id("pipeline-dag").locator("canvas").first).to_be_visible()
        expect(dag.locator("tr[data-step='seed']")).to_have_attribute("data-state", "COMPLETE", timeout=60_000)
        running = re.compile("^(START|RUNNING)$")
        expect(dag.locator("tr[data-step='gated']")).to_have_attribute("data-state", running, timeout=60_000)
        expect(dag).to_have_attribute("data-live", "1")
        page.screenshot(path=str(OUTPUT / "test_pipeline_dag_running.png"), full_page=True)
        gate.touch()
        # no reload: the page polls `pipeline(runId)` while the run is going
        expect(dag.locator("tr[data-step='gated']")).to_have_attribute("data-state", "COMPLETE", timeout=60_000)
        expect(dag).to_have_attribute("data-live", "0", timeout=30_000)
    finally:
        gate.touch()
        worker.join(timeout=120)
    assert done and done[0].state == "COMPLETE"
