"""The web UI in real Chromium against a real `provgraph serve` (with tokens) on a seeded embedded store.

Each test leaves a screenshot in tests/output/ui/. Every request a page makes must go to the server
itself: the UI and GraphiQL ship in the package and work offline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, Playwright, expect, sync_playwright

import provgraph as pg
from provgraph import demo_flow
from provgraph.api.auth import TokenStore
from tests.browser import BrowserMissing, launch, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUTPUT = Path(__file__).parent / "output" / "ui"


def broken(ctx: pg.Context, data: pg.DataItem) -> None:
    ctx.log_result("rows", len(data.get()))
    raise ValueError("bad x")


@dataclass
class Seeded:
    url: str
    token: str
    other_token: str
    prepare: str
    train: list[str]
    evaluate: str
    failed: str


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """demo: prepare -> train (twice, shrink 0 and 0.3) -> evaluate, and one failed run; two tokens."""
    root = tmp_path_factory.mktemp("ui")
    home = root / "home"
    saved = {k: os.environ.pop(k) for k in [n for n in os.environ if n.startswith("PROVGRAPH_")]}
    os.environ["PROVGRAPH_HOME"] = str(home)
    try:
        settings = pg.load_settings()
        backend = pg.Backend(settings)
        raw = root / "raw.csv"
        raw.write_bytes(demo_flow.make_raw_csv())
        prep = pg.run(demo_flow.prepare, inputs={"raw": str(raw)}, project="demo", backend=backend)
        trains = [
            pg.run(
                demo_flow.train,
                params={"shrink": s},
                inputs={"train_set": prep.raise_for_state().outputs["train_set"]},
                project="demo",
                backend=backend,
            ).raise_for_state()
            for s in (0.0, 0.3)
        ]
        ev = pg.run(
            demo_flow.evaluate,
            inputs={"model": trains[0].outputs["model"], "test_set": prep.outputs["test_set"]},
            project="demo",
            backend=backend,
        ).raise_for_state()
        bad = pg.run(broken, inputs={"data": str(raw)}, project="demo", backend=backend)
        assert bad.state == "FAIL"
        backend.close()
        tokens = TokenStore(settings.tokens_db)
        token = tokens.create(["demo"], name="ui")[1]
        other = tokens.create(["other"], name="other")[1]
        tokens.close()
    finally:
        os.environ.pop("PROVGRAPH_HOME", None)
        os.environ.update(saved)
    with serve(home, extra_env={"PROVGRAPH_API_REPRODUCE_ON_HOST": "true"}) as url:  # its Reproduce button
        yield Seeded(url, token, other, prep.run_id, [t.run_id for t in trains], ev.run_id, bad.run_id)


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
    elsewhere: list[str] = []
    pg_page.on("request", lambda r: None if r.url.startswith(seeded.url) else elsewhere.append(r.url))
    errors: list[str] = []
    pg_page.on("pageerror", lambda e: errors.append(str(e)))
    yield pg_page
    OUTPUT.mkdir(parents=True, exist_ok=True)
    pg_page.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()
    browser.close()
    assert elsewhere == [], f"the page reached beyond its server: {elsewhere}"
    assert errors == [], f"uncaught errors in the page: {errors}"


def sign_in(page: Page, seeded: Seeded, path: str = "/") -> None:
    """Open the UI; it asks for a token (the server requires one) and keeps it for the tab."""
    page.goto(seeded.url + path)
    page.get_by_placeholder("pgt_…").fill(seeded.token)
    page.get_by_role("button", name="Use token").click()


def run_rows(page: Page) -> list[str]:
    page.wait_for_selector("table.runs[data-loading='0']")
    return [r.get_attribute("data-run") or "" for r in page.locator("table.runs tbody tr").all()]


def test_runs_page_loads_and_filters(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded)
    all_runs = {seeded.prepare, *seeded.train, seeded.evaluate, seeded.failed}
    expect(page.locator("table.runs tbody tr")).to_have_count(len(all_runs))
    assert set(run_rows(page)) == all_runs

    page.locator("select[name=state]").select_option("FAIL")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(1)
    assert run_rows(page) == [seeded.failed]
    expect(page.locator("table.runs tbody tr .state")).to_have_text("FAIL")

    page.get_by_role("button", name="clear").click()
    page.locator("input[name=job]").fill("train")
    page.locator("input[name=where]").fill("params.shrink > 0.1")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(1)
    assert run_rows(page) == [seeded.train[1]]
    assert "job=train" in page.url  # filters live in the URL: a reload or a shared link keeps them


def test_sorting_by_a_param(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, "/#/runs?job=train")
    expect(page.locator("table.runs tbody tr")).to_have_count(2)
    header = page.locator("th[data-col='params.shrink']")
    header.click()
    assert run_rows(page) == seeded.train  # shrink 0, then 0.3
    header.click()
    assert run_rows(page) == list(reversed(seeded.train))


def test_other_projects_token_sees_nothing(page: Page, seeded: Seeded) -> None:
    page.goto(seeded.url + "/")
    page.get_by_placeholder("pgt_…").fill(seeded.other_token)
    page.get_by_role("button", name="Use token").click()
    expect(page.get_by_text("no runs match")).to_be_visible()
    page.goto(f"{seeded.url}/#/run/{seeded.train[0]}")
    expect(page.get_by_text(f"No run {seeded.train[0]}")).to_be_visible()


def test_wrong_token_asks_again(page: Page, seeded: Seeded) -> None:
    page.goto(seeded.url + "/")
    page.get_by_placeholder("pgt_…").fill("pgt_00000000_nope")
    page.get_by_role("button", name="Use token").click()
    expect(page.get_by_text("invalid or revoked API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('provgraph.token')") is None


def test_open_a_run(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded)
    page.locator(f"tr[data-run='{seeded.train[1]}'] a").click()
    expect(page.locator("h1")).to_contain_text("train")
    expect(page.locator("h1 .state")).to_have_text("COMPLETE")
    params = page.locator("h2:text('Parameters') + table")
    expect(params).to_contain_text("shrink")
    expect(params).to_contain_text("0.3")
    inputs = page.locator("h2:text('Inputs') + table")
    expect(inputs).to_contain_text("train_set")
    expect(inputs).to_contain_text("sha256:")
    outputs = page.locator("h2:text('Outputs') + table")
    expect(outputs).to_contain_text("model")
    expect(page.locator("h2:text('Code') + table")).to_contain_text("sha256:")
    expect(page.locator("h2:text('Environment') + table")).to_be_visible()
    page.get_by_test_id("show-source").click()
    expect(page.get_by_test_id("source")).to_contain_text("def train(ctx: Context, train_set: DataItem")
    # The input links to its artifact page, which names the run that produced it.
    inputs.get_by_role("link", name=re.compile("train_set")).click()
    expect(page.get_by_test_id("artifact")).to_contain_text("prepare")


def test_failed_run_shows_its_error(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, f"/#/run/{seeded.failed}")
    expect(page.locator("h1 .state")).to_have_text("FAIL")
    expect(page.locator("pre.error")).to_contain_text("bad x")
    expect(page.get_by_test_id("traceback")).to_contain_text('raise ValueError("bad x")')


def _node_position(page: Page, node_id: str) -> tuple[float, float]:
    """Where Cytoscape drew the node, in page coordinates (the graph is a canvas: a click goes there)."""
    pos = page.evaluate(
        "id => { const n = window.__provgraph.cy.getElementById(id); const p = n.renderedPosition();"
        " return n.length ? [p.x, p.y] : null; }",
        node_id,
    )
    assert pos is not None, f"{node_id} is not drawn"
    box = page.get_by_test_id("graph").bounding_box()
    assert box is not None
    assert 0 <= pos[0] <= box["width"] and 0 <= pos[1] <= box["height"], f"{node_id} is drawn out of view at {pos}"
    return box["x"] + pos[0], box["y"] + pos[1]


def _click_node(page: Page, node_id: str) -> None:
    layouts = int(page.get_by_test_id("graph").get_attribute("data-layouts") or 0)
    page.mouse.click(*_node_position(page, node_id))
    expect(page.get_by_test_id("selected")).to_have_attribute("data-node", node_id)
    # The click expands the node: one more walk merged and laid out.
    expect(page.get_by_test_id("graph")).not_to_have_attribute("data-layouts", str(layouts))


def _drawn(page: Page) -> set[str]:
    return set(page.evaluate("window.__provgraph.cy.nodes().map(n => n.id())"))


def test_lineage_two_hops_by_clicking(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, "/#/lineage")
    page.get_by_placeholder("find a run, job or dataset").fill("model")
    page.get_by_role("button", name="Search").click()
    page.locator("ul.hits button", has_text="dataset: model").first.click()
    page.locator("select[name=depth]").select_option("1")
    # One dataset hop: both versions of the model, the runs that wrote them, and what they read.
    expect(page.get_by_test_id("graph")).to_have_attribute("data-nodes", "5")
    train = f"run:{seeded.train[0]}"
    assert {train, f"run:{seeded.train[1]}"} <= _drawn(page)
    model = page.evaluate(f"window.__provgraph.cy.getElementById('{train}').outgoers('node')[0].id()")
    assert model.startswith("dataset:store://demo:model@sha256:")
    train_set = next(n for n in _drawn(page) if "train_set" in n)
    prepare = f"run:{seeded.prepare}"
    assert prepare not in _drawn(page)

    _click_node(page, model)
    page.get_by_test_id("path-from").click()
    _click_node(page, train_set)  # the next hop: the run that wrote train_set appears
    assert prepare in _drawn(page)
    _click_node(page, prepare)
    expect(page.get_by_test_id("selected")).to_contain_text("prepare")
    # The path model <- train <- train_set <- prepare, highlighted.
    expect(page.get_by_test_id("path")).to_contain_text("3 edges")
    highlighted = page.evaluate("window.__provgraph.cy.edges('.path').length")
    assert highlighted == 3


def test_lineage_marks_failed_runs(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, f"/#/lineage?node=run:{seeded.failed}&direction=UPSTREAM&depth=1")
    expect(page.get_by_test_id("graph")).to_have_attribute("data-nodes", "2")
    classes = page.evaluate(f"window.__provgraph.cy.getElementById('run:{seeded.failed}').classes()")
    assert "failed" in classes


def test_compare_two_runs(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, "/#/runs?job=train")
    for run_id in seeded.train:
        page.get_by_label(f"select {run_id}").check()
    page.get_by_test_id("compare-selected").click()
    table = page.locator("table.compare")
    expect(table.locator("thead th a")).to_have_count(2)
    shrink = table.locator("tr[data-key='params.shrink']")
    expect(shrink).to_have_class("differs")
    expect(shrink.locator("td")).to_have_text(["0", "0.3"])
    expect(table.locator("tr[data-key='inputs.train_set']")).not_to_have_class("differs")
    page.get_by_label("only differences").check()
    expect(table.locator("tr[data-key='inputs.train_set']")).to_have_count(0)
    expect(shrink).to_be_visible()


def test_reproduce_shows_verdict(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, f"/#/run/{seeded.train[0]}")
    page.get_by_test_id("reproduce").click()
    expect(page.get_by_test_id("verdict")).to_have_text("REPRODUCED", timeout=120_000)


def test_graphiql_offline(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded)
    expect(page.locator("table.runs tbody tr").first).to_be_visible()
    page.goto(seeded.url + "/graphql")  # same tab: the token comes along in the headers pane
    expect(page.locator(".graphiql-container")).to_be_visible()
    expect(page.locator(".graphiql-editor-tool")).to_be_attached()
    page.get_by_role("button", name=re.compile("Headers")).click()
    expect(page.locator(".graphiql-editor-tool")).to_contain_text(seeded.token[:12])


def test_insecure_local_serves_its_own_pages(playwright: Playwright, tmp_path: Path) -> None:
    """`serve --insecure-local` answers only requests whose Host and Origin name this machine: the
    UI it serves is such a page, and works without a token."""
    settings = pg.load_settings(home=tmp_path / "home")
    backend = pg.Backend(settings)
    done = pg.run(broken, inputs={"data": str(Path(__file__))}, project="demo", backend=backend)
    backend.close()
    with serve(tmp_path / "home", insecure_local=True) as url:
        try:
            browser = launch(playwright)
        except BrowserMissing as exc:
            pytest.fail(str(exc))
        page = browser.new_page()
        page.goto(url + "/")
        assert run_rows(page) == [done.run_id]
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "insecure_local.png"), full_page=True)
        browser.close()
