"""The lineage query contract: every store (SQLite, Neo4j) must pass this file unchanged."""

from __future__ import annotations

import random
from datetime import timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provgraph.events.errors import Inadmissible, NotFound
from provgraph.events.facets import ErrorMessageRunFacet, ReproducesRunFacet
from provgraph.events.model import Dataset, EventType, Job, Run, RunEvent, RunFacets, RunState
from provgraph.events.synthetic import EPOCH, chain, content_hash, dataset, run_events
from provgraph.graph.contract import LineageBounds, LineageStore, RunFilter
from provgraph.graph.ids import NodeId, parse_node_id
from provgraph.graph.projection import minted_version
from provgraph.graph.views import Direction

RAW = dataset("file", "/data/raw.csv", content_hash("raw"), "raw")


def _flow() -> list[RunEvent]:
    """prepare(raw) -> clean; train(clean) -> model; evaluate(model, clean) -> report."""
    clean_v, model_v, report_v = content_hash("clean"), content_hash("model"), content_hash("report")
    return [
        *run_events(
            "prep-1",
            namespace="demo",
            job="prepare",
            params={"frac": 0.8},
            inputs=[RAW],
            outputs=[dataset("store://demo", "clean", clean_v, "clean", output=True, size=10)],
            start=EPOCH,
        ),
        *run_events(
            "train-1",
            namespace="demo",
            job="train",
            params={"lr": 0.1},
            inputs=[dataset("store://demo", "clean", clean_v, "data")],
            outputs=[dataset("store://demo", "model", model_v, "model", kind="model", output=True)],
            metrics=[("loss", 0.5, 1), ("loss", 0.3, 2)],
            results={"accuracy": 0.93},
            start=EPOCH + timedelta(minutes=1),
        ),
        *run_events(
            "eval-1",
            namespace="demo",
            job="evaluate",
            inputs=[
                dataset("store://demo", "model", model_v, "model", kind="model"),
                dataset("store://demo", "clean", clean_v, "data"),
            ],
            outputs=[dataset("store://demo", "report", report_v, "report", output=True)],
            start=EPOCH + timedelta(minutes=2),
        ),
    ]


MODEL = NodeId.dataset("store://demo", "model", content_hash("model"))


def test_run_lookup_has_everything_the_run_recorded(store: LineageStore) -> None:
    store.apply(_flow())
    run = store.run("train-1")
    assert run is not None
    assert (run.namespace, run.job_name, run.state) == ("demo", "train", "COMPLETE")
    assert run.params == {"lr": 0.1}
    assert run.results == {"accuracy": 0.93}
    assert run.metrics == {"loss": 0.3}  # the latest step wins
    assert [(i.name, i.binding) for i in run.inputs] == [("clean", "data")]
    assert [(o.name, o.binding, o.kind) for o in run.outputs] == [("model", "model", "model")]
    assert run.job_version is not None and run.job_version.code_hash == content_hash("train")
    assert run.started_at is not None and run.ended_at is not None and run.started_at < run.ended_at
    assert run.runtime["kind"] == "local"
    assert store.run("no-such-run") is None


def test_a_runs_project_never_changes_and_artifacts_stay_in_theirs(store: LineageStore) -> None:
    store.apply(_flow())
    before = store.dump()
    hijack = run_events("train-1", namespace="mallory", job="train", params={"lr": 9.9}, final=EventType.FAIL)
    with pytest.raises(
        Inadmissible,
        match="event refused by the graph: run 'train-1' belongs to project 'demo';"
        " an event with job namespace 'mallory' may not write to it",
    ):
        store.apply(hijack[-1:])
    with pytest.raises(Inadmissible, match="run 'new-1' belongs to project 'demo'"):
        store.apply(run_events("new-1", namespace="demo") + run_events("new-1", namespace="mallory"))
    planted = dataset("store://demo", "model", content_hash("evil"), "model", output=True)
    with pytest.raises(Inadmissible, match="run 'm-1' of project 'mallory' may not write store://demo/model"):
        store.apply(run_events("m-1", namespace="mallory", outputs=[planted]))
    unpinned = dataset("store://demo", "model", "latest", "model")
    with pytest.raises(Inadmissible, match="input store://demo/model: version 'latest' is not a content hash"):
        store.apply(run_events("m-2", namespace="demo", inputs=[unpinned]))
    assert store.dump() == before
    assert store.run_owners(["train-1", "prep-1", "new-1", "m-1"]) == {"train-1": "demo", "prep-1": "demo"}


def test_failed_run_keeps_its_events_and_error(store: LineageStore) -> None:
    events = run_events("bad-1", job="train", inputs=[RAW], final=EventType.FAIL)
    last = events[-1]
    facets = last.run.facets.model_copy(update={"error_message": ErrorMessageRunFacet(message="boom")})
    events[-1] = last.model_copy(update={"run": Run(run_id="bad-1", facets=facets)})
    store.apply(events)
    run = store.run("bad-1")
    assert run is not None and run.state == "FAIL" and run.error == "boom"
    assert [i.name for i in run.inputs] == ["/data/raw.csv"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), dup=st.integers(0, 5))
def test_projection_ignores_order_and_duplicates(store: LineageStore, seed: int, dup: int) -> None:
    events = _flow()
    store.reset()
    store.apply(events)
    expected = store.dump()
    rng = random.Random(seed)
    shuffled = events + rng.sample(events, k=min(dup, len(events)))
    rng.shuffle(shuffled)
    store.reset()
    for i in range(0, len(shuffled), 3):
        store.apply(shuffled[i : i + 3])
    assert store.dump() == expected


def test_runs_filter_and_paginate_newest_first(store: LineageStore) -> None:
    store.apply(_flow())
    assert [r.run_id for r in store.runs()] == ["eval-1", "train-1", "prep-1"]
    assert [r.run_id for r in store.runs(RunFilter(job="train"))] == ["train-1"]
    assert [r.run_id for r in store.runs(RunFilter(project="nope"))] == []
    assert [r.run_id for r in store.runs(RunFilter(state=RunState.COMPLETE), first=2)] == ["eval-1", "train-1"]
    assert [r.run_id for r in store.runs(first=2, after="train-1")] == ["prep-1"]
    since = EPOCH + timedelta(seconds=30)
    assert [r.run_id for r in store.runs(RunFilter(since=since, until=since + timedelta(minutes=1)))] == ["train-1"]
    # the same instants at another offset, and naive (UTC)
    east = since.astimezone(timezone(timedelta(hours=5)))
    assert east.hour != since.hour
    assert [r.run_id for r in store.runs(RunFilter(since=east, until=east + timedelta(minutes=1)))] == ["train-1"]
    naive = since.replace(tzinfo=None)
    assert [r.run_id for r in store.runs(RunFilter(since=naive, until=naive + timedelta(minutes=1)))] == ["train-1"]


def test_job_dataset_and_version_lookups(store: LineageStore) -> None:
    store.apply(_flow())
    store.apply(
        run_events(
            "train-2",
            namespace="demo",
            job="train",
            code_hash="sha256:other",
            start=EPOCH + timedelta(minutes=5),
        )
    )
    job = store.job("demo", "train")
    assert job is not None and job.run_count == 2
    assert sorted(v.code_hash for v in job.versions) == sorted([content_hash("train"), "sha256:other"])
    assert store.job("demo", "nope") is None

    ds = store.dataset("store://demo", "model")
    assert ds is not None and ds.kind == "model" and [v.version for v in ds.versions] == [content_hash("model")]
    dsv = store.dataset_version("store://demo", "clean", content_hash("clean"))
    assert dsv is not None and dsv.size == 10
    latest = store.latest_version("store://demo", "clean")
    assert latest is not None and latest.version == content_hash("clean")
    assert store.dataset("file", "/nope") is None


def test_produced_by_answers_what_made_this_model(store: LineageStore) -> None:
    store.apply(_flow())
    ns, name, version = MODEL.key
    run = store.produced_by(ns, name, version)
    assert run is not None and run.run_id == "train-1"
    assert run.params == {"lr": 0.1}
    assert run.job_version is not None and run.job_version.code_hash == content_hash("train")
    assert store.produced_by("file", "/data/raw.csv", content_hash("raw")) is None


def test_upstream_lineage_of_a_model(store: LineageStore) -> None:
    store.apply(_flow())
    g = store.lineage(MODEL, Direction.UPSTREAM, depth=10)
    hops = {n.id: n.hop for n in g.nodes}
    assert hops == {
        str(MODEL): 0,
        "run:train-1": 1,
        f"dataset:store://demo:clean@{content_hash('clean')}": 2,
        "run:prep-1": 3,
        f"dataset:file:/data/raw.csv@{content_hash('raw')}": 4,
    }
    assert not g.partial
    assert ("run:train-1", str(MODEL), "WROTE") in {(e.source, e.target, e.kind) for e in g.edges}


def test_downstream_lineage_of_the_raw_dataset(store: LineageStore) -> None:
    store.apply(_flow())
    g = store.lineage(parse_node_id("dataset:file:/data/raw.csv"), Direction.DOWNSTREAM, depth=10)
    ids = {n.id for n in g.nodes}
    assert {"run:prep-1", "run:train-1", "run:eval-1", str(MODEL)} <= ids
    assert f"dataset:store://demo:report@{content_hash('report')}" in ids


def test_depth_bounds_the_walk(store: LineageStore) -> None:
    store.apply(chain(8))
    end = NodeId.dataset("file", "/r/step7.parquet", content_hash("r-7"))
    # depth counts dataset hops: 3 of them are 6 edges, from step 7 back to step 4
    g = store.lineage(end, Direction.UPSTREAM, depth=3)
    assert max(n.hop for n in g.nodes) == 6
    assert len(g.nodes) == 7
    assert [n.id for n in g.nodes if n.hop == 6] == [f"dataset:file:/r/step4.parquet@{content_hash('r-4')}"]
    assert g.partial and g.partial_reasons == ["depth"]
    full = store.lineage(end, Direction.UPSTREAM, depth=100)
    assert len(full.nodes) == 17 and full.depth <= store.bounds.max_depth
    assert not full.partial and full.partial_reasons == []
    # exactly deep enough: nothing is cut, so the answer is whole
    whole = store.lineage(end, Direction.UPSTREAM, depth=8)
    assert len(whole.nodes) == 17 and not whole.partial


def test_fan_out_cap_marks_the_answer_partial(store: LineageStore) -> None:
    raw = dataset("file", "/fan/raw.csv", content_hash("fan"), "data")
    for i in range(7):
        store.apply(run_events(f"fan-{i}", job="consumer", inputs=[raw]))
    g = store.lineage(
        parse_node_id(f"dataset:file:/fan/raw.csv@{content_hash('fan')}"),
        Direction.DOWNSTREAM,
        depth=2,
        fan_out=5,
    )
    assert g.partial and g.cut_reasons and g.partial_reasons == ["fanOut"]
    assert len([n for n in g.nodes if n.kind == "run"]) == 5
    g = store.lineage(
        parse_node_id(f"dataset:file:/fan/raw.csv@{content_hash('fan')}"),
        Direction.DOWNSTREAM,
        depth=2,
        fan_out=7,
    )
    assert not g.partial and len([n for n in g.nodes if n.kind == "run"]) == 7


def test_lineage_from_a_run_and_from_a_job(store: LineageStore) -> None:
    store.apply(_flow())
    g = store.lineage(NodeId.run("train-1"), Direction.DOWNSTREAM, depth=1)
    assert {n.id for n in g.nodes} == {"run:train-1", str(MODEL)}
    assert g.partial_reasons == ["depth"]  # eval-1 read the model
    g = store.lineage(NodeId.job("demo", "evaluate"), Direction.UPSTREAM, depth=1)
    assert {n.id for n in g.nodes if n.hop == 1} == {
        str(MODEL),
        f"dataset:store://demo:clean@{content_hash('clean')}",
    }


def test_server_side_bounds_cap_what_clients_ask(store: LineageStore) -> None:
    store.bounds = LineageBounds(max_depth=2, max_fan_out=3)
    store.apply(chain(4))
    g = store.lineage(NodeId.run("r-000003"), Direction.UPSTREAM, depth=50, fan_out=1000)
    assert g.depth == 2 and max(n.hop for n in g.nodes) == 3  # from a run: 2 dataset hops = 3 edges


def test_unknown_node_is_not_found(store: LineageStore) -> None:
    with pytest.raises(NotFound):
        store.lineage(NodeId.run("ghost"), Direction.UPSTREAM)
    with pytest.raises(NotFound):
        store.lineage(parse_node_id("dataset:file:/ghost.csv"), Direction.UPSTREAM)


def test_events_from_other_openlineage_producers(store: LineageStore) -> None:
    """No provgraph facets at all: jobs, runs and unversioned datasets still land in the graph."""
    start = RunEvent(
        event_type=EventType.START,
        event_time=EPOCH,
        run=Run(run_id="ext-1"),
        job=Job(namespace="airflow", name="etl.load"),
        inputs=[Dataset(namespace="postgres://db:5432", name="public.orders")],
    )
    done = RunEvent(
        event_type=EventType.COMPLETE,
        event_time=EPOCH + timedelta(seconds=5),
        run=Run(run_id="ext-1"),
        job=Job(namespace="airflow", name="etl.load"),
        outputs=[Dataset(namespace="s3://lake", name="orders/2026")],
    )
    store.apply([done, start])
    run = store.run("ext-1")
    assert run is not None and run.state == "COMPLETE" and run.code_hash is None and run.job_version is None
    # the output named no version: it gets the one minted for this run
    out = f"dataset:s3://lake:orders/2026@{minted_version('ext-1')}"
    g = store.lineage(parse_node_id(out), Direction.UPSTREAM, depth=1)
    assert "dataset:postgres://db:5432:public.orders@unversioned" in {n.id for n in g.nodes}
    assert store.job("airflow", "etl.load") is not None


def test_reproduction_is_visible_on_the_run(store: LineageStore) -> None:
    store.apply(_flow())
    events = run_events("train-1-r", namespace="demo", job="train", start=EPOCH + timedelta(hours=1))
    last = events[-1]
    facets: RunFacets = last.run.facets.model_copy(
        update={
            "reproduces": ReproducesRunFacet(run_id="train-1", verdict="DIVERGED", differences=[{"output": "model"}])
        }
    )
    events[-1] = last.model_copy(update={"run": Run(run_id="train-1-r", facets=facets)})
    store.apply(events)
    run = store.run("train-1-r")
    assert run is not None and run.reproduces is not None
    assert (run.reproduces.original_run_id, run.reproduces.verdict) == ("train-1", "DIVERGED")
    assert run.reproduces.differences == [{"output": "model"}]


def test_search_finds_jobs_runs_and_datasets(store: LineageStore) -> None:
    store.apply(_flow())
    found = store.search("trai")
    assert "job:demo:train" in found and "run:train-1" in found
    assert store.search("model", kinds=["dataset"]) == ["dataset:store://demo:model"]


def test_reset_then_reapply_gives_an_identical_dump(store: LineageStore) -> None:
    events = _flow() + chain(3)
    store.apply(events)
    before = store.dump()
    store.reset()
    assert store.run("train-1") is None
    store.apply(events)
    assert store.dump() == before
