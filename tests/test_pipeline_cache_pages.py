"""The cache decision reads a job's candidates in two pages (`cache.FIRST_PAGE`, then the rest of
`cache.CANDIDATES`): a source below the first page is still found, one older than the candidates is not."""

from __future__ import annotations

from provgraph import Backend, Context, run
from provgraph.events.facets import JobRef, ParentRunFacet, RunRef
from provgraph.pipelines import cache, pipeline, step
from provgraph.pipelines.engine import prepare


def tick(ctx: Context, n: int = 0) -> dict[str, int]:
    ctx.log_artifact("out", body=str(n))
    return {"n": n}


@pipeline
def one(n: int) -> None:
    step(tick, params={"n": n}, outputs=["out"])


def _key(backend: Backend, n: int) -> cache.StepKey:
    parent = ParentRunFacet(run=RunRef(run_id="p"), job=JobRef(namespace="default", name="one"))
    return prepare(one.build({"n": n}).steps["tick"], {"n": n}, {}, backend, "default", parent).key


def test_source_below_the_first_page_is_found_and_older_than_the_candidates_is_not(backend: Backend) -> None:
    run(tick, params={"n": -1}, backend=backend).raise_for_state()
    source = run(tick, params={"n": 7}, backend=backend).raise_for_state()
    for n in range(100, 100 + cache.CANDIDATES - 1):  # newer runs with other params: the source is 20th newest
        run(tick, params={"n": n}, backend=backend).raise_for_state()
    found = cache.find_cached(backend.graph(), backend, "default", _key(backend, 7))
    assert found is not None and found.run_id == source.run_id
    assert cache.find_cached(backend.graph(), backend, "default", _key(backend, -1)) is None  # 21st newest
    run(tick, params={"n": 8}, backend=backend).raise_for_state()
    assert cache.find_cached(backend.graph(), backend, "default", _key(backend, 7)) is None  # now 21st newest
