"""The web UI in real Chromium (Debian's, driven by Playwright) against a real `provgraph serve`.

  - Runs page with BENCH_RUNS (100,000) runs in the embedded store: first paint (navigation start to the
    first page of rows drawn) and filter response (the state filter applied to the table redrawn), median
    of BENCH_N (5) tries each. Targets (issue 14): < 1 s and < 300 ms.
  - Lineage explorer on a ~2,000-node neighbourhood (a dataset read by 10 runs, whose outputs are read
    by 10 runs each, then 9: 2,021 nodes downstream at depth 6): Cytoscape + dagre layout time as the
    page measures it, and the whole walk-to-drawn time. Target: layout < 500 ms.

The loaded home (event log + projected graph) is built once and cached under PROVGRAPH_INFRA_DIR
(`.infra/`, git-ignored) as `bench-ui-<runs>/`: loading 100k runs takes 7-20 minutes on this machine.
The first paint is split into the page's two API requests (the schema's features, then the runs
page) as the browser's resource timing saw them, so a slow paint names its part.

Run: `.venv/bin/python bench/bench_ui.py` (BENCH_RUNS=20000 for a quick look).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provgraph.api.auth import TokenStore  # noqa: E402
from provgraph.events.settings import Settings  # noqa: E402
from provgraph.events.synthetic import content_hash, dataset, run_events, workload  # noqa: E402
from provgraph.events.transport.sqlite import SqliteEventLog  # noqa: E402
from provgraph.graph.factory import embedded_projector  # noqa: E402
from tests.browser import launch, serve  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "100000"))
N = int(os.environ.get("BENCH_N", "5"))
FANS = (10, 10, 9)
INFRA = Path(os.environ.get("PROVGRAPH_INFRA_DIR", REPO / ".infra"))


def neighbourhood() -> list[object]:
    """A dataset whose downstream at depth 2*len(FANS) holds 1 + 2*(10 + 100 + 900) nodes."""
    events: list[object] = []
    frontier = [("/fan/root.csv", content_hash("fan-root"))]
    for level, fan in enumerate(FANS):
        nxt = []
        for p, (name, version) in enumerate(frontier):
            for k in range(fan):
                run_id = f"fan-{level}-{p}-{k}"
                out = (f"/fan/{level}/{p}/{k}.parquet", content_hash(run_id))
                events += run_events(
                    run_id,
                    namespace="fan",
                    job=f"step{level}",
                    inputs=[dataset("file", name, version, "in")],
                    outputs=[dataset("file", *out, "out", output=True)],
                )
                nxt.append(out)
        frontier = nxt
    return events


def cached_home() -> Path:
    """The loaded home for RUNS runs, built on first use into a scratch folder and then renamed into place."""
    home = INFRA / f"bench-ui-{RUNS}"
    if home.is_dir():
        print(f"home: {home} (cached)", flush=True)
        return home
    scratch = INFRA / f"bench-ui-{RUNS}.building"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    print(f"loading {RUNS:,} runs + the lineage neighbourhood: {load(scratch):.1f} s", flush=True)
    scratch.rename(home)
    return home


def load(home: Path) -> float:
    start = time.perf_counter()
    log = SqliteEventLog(home / "events.db")
    events = workload(RUNS, namespace="bench")
    while batch := list(islice(events, 5000)):
        log.append(batch)
    log.append(neighbourhood())  # type: ignore[arg-type]
    log.close()
    embedded_projector(Settings(home=home)).sync()
    return time.perf_counter() - start


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples):7.1f} ms (min {min(samples):.1f}, max {max(samples):.1f})"


def api_ms(page: Page) -> list[float]:
    """Request-to-last-byte of this navigation's API fetches in order: the features, then the runs page."""
    return list(
        page.evaluate(
            "performance.getEntriesByType('resource')"
            ".filter(e => e.name.endsWith('/graphql') || e.name.endsWith('/features.json'))"
            ".map(e => e.responseEnd - e.requestStart)"
        )
    )


def runs_page(page: Page, url: str) -> tuple[list[float], list[float], list[list[float]]]:
    paint: list[float] = []
    filtered: list[float] = []
    requests: list[list[float]] = []
    for _ in range(N):
        page.goto("about:blank")  # a full load each time: a hash change alone would not reload the app
        page.goto(url + "/#/runs")
        page.wait_for_selector("table.runs[data-loading='0'] tbody tr")
        paint.append(page.evaluate("performance.now()"))  # since this navigation started
        requests.append(api_ms(page))
        state = "FAIL" if len(filtered) % 2 else "COMPLETE"
        page.locator("select[name=state]").select_option(state)
        t0 = page.evaluate("performance.now()")
        page.get_by_role("button", name="Filter").click()
        # The table carries the key of the request its rows answer.
        page.wait_for_function(
            's => document.querySelector(\'table.runs\').dataset.loaded.includes(`"state":"${s}"`)', arg=state
        )
        filtered.append(page.evaluate("performance.now()") - t0)
    return paint, filtered, requests


def lineage(page: Page, url: str) -> tuple[list[float], list[float], list[float], int]:
    layout, walk, total, nodes = [], [], [], 0
    node = f"dataset:file:/fan/root.csv@{content_hash('fan-root')}"
    for _ in range(N):
        page.goto("about:blank")
        page.goto(url + "/#/runs")
        page.wait_for_selector("table.runs")
        t0 = page.evaluate("performance.now()")
        page.goto(f"{url}/#/lineage?node={node}&direction=DOWNSTREAM&depth={2 * len(FANS)}")
        page.wait_for_function(
            "() => Number(document.querySelector('[data-testid=graph]')?.dataset.nodes) > 1000", timeout=120_000
        )
        total.append(page.evaluate("performance.now()") - t0)
        layout.append(float(page.get_by_test_id("graph").get_attribute("data-layout-ms") or "nan"))
        walk.append(float(page.get_by_test_id("graph").get_attribute("data-walk-ms") or "nan"))
        nodes = int(page.get_by_test_id("graph").get_attribute("data-nodes") or 0)
    return layout, walk, total, nodes


def main() -> None:
    home = cached_home()
    tokens = TokenStore(Settings(home=home).tokens_db)
    token = tokens.create(["bench", "fan"])[1]
    tokens.close()
    with serve(home) as url, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # Signed in through the form, as a user is: the tab keeps the token for the reloads below.
        page.goto(url + "/")
        page.get_by_placeholder("pgt_…").fill(token)
        page.get_by_role("button", name="Use token").click()
        page.wait_for_selector("table.runs")
        paint, filtered, requests = runs_page(page, url)
        print(f"runs page, {RUNS:,} runs: first paint {median_ms(paint)}  [target < 1000 ms]")
        for i, name in enumerate(("/features.json", "the runs page's query")):
            print(f"  of which {name}: {median_ms([r[i] for r in requests if len(r) > i])}")
        print(f"runs page, {RUNS:,} runs: filter response {median_ms(filtered)}  [target < 300 ms]")
        layout, walk, total, nodes = lineage(page, url)
        print(f"lineage explorer, {nodes:,} nodes: layout {median_ms(layout)}  [target < 500 ms]")
        print(f"lineage explorer, {nodes:,} nodes: server walk + transfer {median_ms(walk)}")
        print(f"lineage explorer, {nodes:,} nodes: walk + layout + draw {median_ms(total)}")
        browser.close()


if __name__ == "__main__":
    main()
