"""Pipeline records on every store: step runs are children of their pipeline run (the OpenLineage
`parent` facet, CHILD_OF), and a cached step run names the run it reused (CACHED_FROM)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from provgraph.events.facets import CachedFromRunFacet, JobRef, ParentRunFacet, RunRef
from provgraph.events.model import RunEvent
from provgraph.events.synthetic import EPOCH, content_hash, dataset, run_events
from provgraph.graph.contract import LineageStore

KEY = "sha256:" + "c" * 64


def _with(events: list[RunEvent], **facets: Any) -> list[RunEvent]:
    return [
        e.model_copy(update={"run": e.run.model_copy(update={"facets": e.run.facets.model_copy(update=facets)})})
        for e in events
    ]


def _parent(run_id: str) -> ParentRunFacet:
    return ParentRunFacet(run=RunRef(run_id=run_id), job=JobRef(namespace="demo", name="flow"))


def _pipeline() -> tuple[list[RunEvent], ...]:
    model = dataset("store://demo", "model", content_hash("model"), "model", output=True, size=3)
    pipe = run_events("pipe-1", namespace="demo", job="flow", start=EPOCH)
    steps = [
        _with(
            run_events(
                f"step-{i}",
                namespace="demo",
                job=f"s{i}",
                outputs=[model] if i == 0 else [],
                start=EPOCH + timedelta(seconds=3 - i),
            ),
            parent=_parent("pipe-1"),
        )
        for i in range(3)
    ]
    pipe2 = run_events("pipe-2", namespace="demo", job="flow", start=EPOCH + timedelta(minutes=1))
    cached = _with(
        run_events("step-0b", namespace="demo", job="s0", outputs=[model], start=EPOCH + timedelta(minutes=1)),
        parent=_parent("pipe-2"),
        cached_from=CachedFromRunFacet(run_id="step-0", cache_key=KEY),
    )
    return pipe, *steps, pipe2, cached


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "children-first"])
def test_children_and_cached_from_whichever_order_events_arrive(store: LineageStore, reverse: bool) -> None:
    batches = list(_pipeline())
    for batch in reversed(batches) if reverse else batches:
        store.apply(batch)
    children = store.children("pipe-1")
    # oldest first (step-2 started first), each with its parent
    assert [(c.run_id, c.job_name, c.parent_run_id) for c in children] == [
        ("step-2", "s2", "pipe-1"),
        ("step-1", "s1", "pipe-1"),
        ("step-0", "s0", "pipe-1"),
    ]
    assert [c.run_id for c in store.children("pipe-1", first=1)] == ["step-2"]
    assert [c.run_id for c in store.children("pipe-2")] == ["step-0b"]
    assert store.children("step-0") == [] and store.children("nobody") == []
    cached = store.run("step-0b")
    assert cached is not None and cached.cached_from == "step-0" and cached.parent_run_id == "pipe-2"
    assert [(o.name, o.version) for o in cached.outputs] == [("model", content_hash("model"))]
    original = store.run("step-0")
    assert original is not None and original.cached_from is None
    rows = {r["run_id"]: r["cached_from"] for r in store.dump()["run"]}
    assert rows["step-0b"] == "step-0" and rows["step-0"] is None


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "intruder-first"])
def test_a_run_of_another_project_is_no_child(store: LineageStore, reverse: bool) -> None:
    """A run naming another project's run as its parent is not its child: its pipeline's status,
    plan, controller and reproduction read `children`, so no project adds steps to another's."""
    pipe, step = run_events("pipe-1", namespace="demo", job="flow", start=EPOCH), _pipeline()[1]
    intruder = _with(run_events("intruder", namespace="other", job="s0", start=EPOCH), parent=_parent("pipe-1"))
    batches = [pipe, step, intruder]
    for batch in reversed(batches) if reverse else batches:
        store.apply(batch)
    assert [c.run_id for c in store.children("pipe-1")] == ["step-0"]
    seen = store.run("intruder")
    assert seen is not None and seen.parent_run_id == "pipe-1"  # its own record keeps what it said
