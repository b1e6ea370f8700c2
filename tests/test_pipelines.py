"""Pipelines on the local engine (embedded SQLite): DAGs of tracked runs, caching from the graph,
failures with SKIPPED dependants and resume, the rerun plan, `stale`, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from provgraph import Backend
from provgraph._naming import parse_store_uri
from provgraph.events.model import RunState
from provgraph.graph.ids import dataset_node_id
from provgraph.pipelines import PipelineError, pipeline, run_pipeline, step
from provgraph.pipelines.dsl import default_name
from provgraph.pipelines.plan import plan_rerun, stale
from provgraph.pipelines.status import is_pipeline_run, steps_of
from tests import pipeline_steps as ps


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    path = tmp_path / "raw.csv"
    path.write_text("1 2 3 4 5 6")
    return path


def _states(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: s.state for name, s in result.steps.items()}


def test_three_step_pipeline_is_a_run_with_its_steps_as_children(backend: Backend, raw: Path) -> None:
    result = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    assert _states(result) == {"prepare": "COMPLETE", "train": "COMPLETE", "evaluate": "COMPLETE"}
    graph = backend.graph()
    run = graph.run(result.run_id)
    assert run is not None and run.job_name == "three" and run.state == RunState.COMPLETE
    assert is_pipeline_run(run) and run.params == {"raw": str(raw), "lr": 0.1}
    children = graph.children(result.run_id)
    assert [(c.job_name, c.state, c.parent_run_id) for c in children] == [
        ("prepare", RunState.COMPLETE, result.run_id),
        ("train", RunState.COMPLETE, result.run_id),
        ("evaluate", RunState.COMPLETE, result.run_id),
    ]
    evaluate = graph.run(result.steps["evaluate"].run_id or "")
    assert evaluate is not None
    assert {i.binding: i.version for i in evaluate.inputs} == {
        "model": result.steps["train"].outputs["model"].rpartition("@")[2],
        "test_set": result.steps["prepare"].outputs["test_set"].rpartition("@")[2],
    }
    steps = {s.name: s for s in steps_of(run, children)}
    assert steps["evaluate"].upstream == ["prepare", "train"] and steps["evaluate"].state == "COMPLETE"
    assert run.results["pipeline"] == f"{Path(ps.__file__)}:three"


def test_identical_rerun_reuses_every_step_cached_from_the_original(backend: Backend, raw: Path) -> None:
    first = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    again = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    assert _states(again) == {"prepare": "CACHED", "train": "CACHED", "evaluate": "CACHED"}
    graph = backend.graph()
    for name, st in again.steps.items():
        original = first.steps[name]
        assert st.cached_from == original.run_id and st.outputs == original.outputs
        cached = graph.run(st.run_id or "")
        assert cached is not None and cached.state == RunState.COMPLETE and cached.cached_from == original.run_id
        source = graph.run(original.run_id or "")
        assert source is not None
        assert [(o.binding, o.version) for o in cached.outputs] == [(o.binding, o.version) for o in source.outputs]
        assert cached.results == source.results and cached.parent_run_id == again.run_id
    # opt out for the whole run: every step executes again
    fresh = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend, cache=False).raise_for_state()
    assert _states(fresh) == {"prepare": "COMPLETE", "train": "COMPLETE", "evaluate": "COMPLETE"}


def test_a_step_calling_another_function_of_the_same_file_is_not_reused(backend: Backend, tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text("10")
    first = run_pipeline(ps.either, {"seed": str(seed)}, backend=backend).raise_for_state()
    other = run_pipeline(ps.either, {"seed": str(seed), "op": "subtract"}, backend=backend).raise_for_state()
    assert other.steps["op"].state == "COMPLETE" and other.steps["op"].results == {"n": 9}
    assert first.steps["op"].results == {"n": 11}
    plan = plan_rerun(first.run_id, backend, {"op": "subtract"})
    [planned] = plan.steps
    assert planned.action == "reuse" and planned.cached_from == other.steps["op"].run_id
    # each run keeps the function it called, though both share one job version (one file, one hash)
    graph = backend.graph()
    ran = {graph.run(r.steps["op"].run_id or "").entrypoint for r in (first, other)}  # type: ignore[union-attr]
    assert ran == {"pipeline_steps.py:add", "pipeline_steps.py:subtract"}


def test_an_input_given_as_none_is_not_given(backend: Backend, tmp_path: Path) -> None:
    """kfp users pass None for an optional input: the handler's default applies, nothing is refused."""
    seed, extra = tmp_path / "seed.txt", tmp_path / "extra.txt"
    seed.write_text("10")
    extra.write_text("5")
    alone = run_pipeline(ps.optional, {"seed": str(seed)}, backend=backend).raise_for_state()
    both = run_pipeline(ps.optional, {"seed": str(seed), "extra": str(extra)}, backend=backend).raise_for_state()
    assert (alone.steps["maybe_add"].results, both.steps["maybe_add"].results) == ({"n": 10}, {"n": 15})


def test_nested_fan_outs_name_their_steps_apart(backend: Backend, tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text("1")
    result = run_pipeline(ps.grid, {"seed": str(seed)}, backend=backend).raise_for_state()
    assert sorted(result.steps) == ["add-0", "add-1", "add-2-0", "add-2-1"]


def test_changed_param_reruns_only_the_steps_it_reaches(backend: Backend, raw: Path) -> None:
    run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    changed = run_pipeline(ps.three, {"raw": str(raw), "lr": 0.2}, backend=backend).raise_for_state()
    assert _states(changed) == {"prepare": "CACHED", "train": "COMPLETE", "evaluate": "COMPLETE"}


def test_failed_step_skips_its_dependants_and_a_rerun_resumes_from_it(
    backend: Backend, raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fix = tmp_path / "fixed"
    monkeypatch.setenv("PIPELINE_TEST_FIX", str(fix))
    failed = run_pipeline(ps.failing, {"raw": str(raw)}, backend=backend)
    assert failed.state == RunState.FAIL
    assert _states(failed) == {"prepare": "COMPLETE", "train": "COMPLETE", "boom": "FAIL", "evaluate": "SKIPPED"}
    assert failed.steps["evaluate"].reason == "upstream step boom FAIL"
    assert failed.steps["evaluate"].run_id is None
    assert failed.error == "PipelineFailed: step boom ended FAIL: RuntimeError: boom"
    recorded = backend.graph().run(failed.run_id)
    assert recorded is not None and recorded.state == RunState.FAIL
    assert recorded.results["steps"][3]["name"] == "evaluate"  # the DAG is recorded on FAIL too
    assert recorded.results["steps"][3]["state"] == "SKIPPED"
    # a failed run is never a cache source: after the fix, the plan resumes from the failed step
    fix.write_text("yes")
    plan = plan_rerun(failed.run_id, backend)
    assert [(s.name, s.action, s.reasons) for s in plan.steps] == [
        ("prepare", "reuse", []),
        ("train", "reuse", []),
        ("boom", "run", ["previous run of boom ended FAIL"]),
        ("evaluate", "run?", ["upstream step boom re-runs; reused if its outputs come out unchanged"]),
    ]
    resumed = run_pipeline(plan.spec, plan.params, backend=backend).raise_for_state()
    assert _states(resumed) == {"prepare": "CACHED", "train": "CACHED", "boom": "COMPLETE", "evaluate": "COMPLETE"}


def test_plan_after_changing_one_input_file_names_the_change(backend: Backend, raw: Path) -> None:
    from provgraph.events.artifacts import sha256_bytes

    first = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    before = sha256_bytes(raw.read_bytes())
    raw.write_text("1 2 3 4 5 7")
    after = sha256_bytes(raw.read_bytes())
    plan = plan_rerun(first.run_id, backend)
    short = lambda d: f"sha256:{d.removeprefix('sha256:')[:8]}…"  # noqa: E731
    assert [(s.name, s.action, s.reasons) for s in plan.steps] == [
        ("prepare", "run", [f"input raw.csv changed {short(before)} → {short(after)}"]),
        ("train", "run?", ["upstream step prepare re-runs; reused if its outputs come out unchanged"]),
        (
            "evaluate",
            "run?",
            [
                "upstream step prepare re-runs; reused if its outputs come out unchanged",
                "upstream step train re-runs; reused if its outputs come out unchanged",
            ],
        ),
    ]
    # the train set (every other row) is unchanged, so train is reused once prepare has re-run
    rerun = run_pipeline(plan.spec, plan.params, backend=backend).raise_for_state()
    assert _states(rerun) == {"prepare": "COMPLETE", "train": "CACHED", "evaluate": "COMPLETE"}
    param_plan = plan_rerun(first.run_id, backend, {"lr": 0.5})
    assert [(s.name, s.action, s.reasons) for s in param_plan.steps][1] == (
        "train",
        "run",
        ["param lr changed 0.1 → 0.5"],
    )


def test_stale_lists_what_was_made_from_an_older_version(backend: Backend, raw: Path) -> None:
    first = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    assert stale(str(raw), backend).stale_runs == []
    raw.write_text("9 9 9 9")
    found = stale(str(raw), backend)
    assert {n.id.removeprefix("run:") for n in found.stale_runs} == {
        first.steps[n].run_id for n in ("prepare", "train", "evaluate")
    }
    produced = [uri for n in ("prepare", "train", "evaluate") for uri in first.steps[n].outputs.values()]
    expected = set()
    for uri in produced:
        ref = parse_store_uri(uri)
        expected.add(dataset_node_id(ref.namespace, ref.key, ref.version))
    assert {n.id for n in found.stale_datasets} == expected and len(expected) == 4


def test_fan_out_and_conditions(backend: Backend, raw: Path) -> None:
    result = run_pipeline(ps.fanned, {"raw": str(raw)}, backend=backend).raise_for_state()
    assert _states(result) == {
        "prepare": "COMPLETE",
        **{f"train-{i}": "COMPLETE" for i in range(3)},
        **{f"evaluate-{i}": "COMPLETE" for i in range(3)},
    }
    params = {backend.graph().run(result.steps[f"train-{i}"].run_id or "").params["lr"] for i in range(3)}  # type: ignore[union-attr]
    assert params == {0.01, 0.05, 0.2}
    skipped = run_pipeline(ps.conditional, {"raw": str(raw), "threshold": 1e9}, backend=backend).raise_for_state()
    assert skipped.steps["evaluate"].state == "SKIPPED"
    assert skipped.steps["evaluate"].reason == "condition train.results['weight'] > 1000000000.0 is false"
    assert skipped.steps["after-evaluate"].reason == "upstream step evaluate SKIPPED"


def test_independent_steps_run_in_parallel_processes(backend: Backend, tmp_path: Path) -> None:
    folder = tmp_path / "meet"
    folder.mkdir()
    result = run_pipeline(ps.parallel, {"folder": str(folder)}, backend=backend, parallelism=3).raise_for_state()
    assert _states(result) == {f"rendezvous-{i}": "COMPLETE" for i in range(3)}


def test_twenty_step_dag(backend: Backend, tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text("0")
    result = run_pipeline(ps.chain, {"seed": str(seed)}, backend=backend).raise_for_state()
    assert len(result.steps) == 20 and set(_states(result).values()) == {"COMPLETE"}
    assert result.steps["add-19"].results == {"n": 1 + sum(range(1, 20))}
    assert len(backend.graph().children(result.run_id)) == 20


def test_retries_rerun_a_failed_step(backend: Backend, tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text("5")
    result = run_pipeline(
        ps.retried, {"seed": str(seed), "marker": str(tmp_path / "count")}, backend=backend
    ).raise_for_state()
    assert result.steps["flaky"].attempts == 2 and result.steps["flaky"].results == {"attempts": 2}
    states = sorted(c.state for c in backend.graph().children(result.run_id))
    assert states == [RunState.COMPLETE, RunState.FAIL]


# -- refused before anything runs ---------------------------------------------------------------


def _refused(backend: Backend, func: object, message: str, **params: object) -> None:
    with pytest.raises(PipelineError) as caught:
        run_pipeline(func, dict(params), backend=backend)  # type: ignore[arg-type]
    assert str(caught.value) == message
    assert backend.graph().runs() == []


def test_unknown_output_is_refused_naming_the_step(backend: Backend, raw: Path) -> None:
    @pipeline
    def bad(raw: str) -> None:
        prep = step(ps.prepare, inputs={"raw": raw}, outputs=["train_set"])
        step(ps.train, inputs={"train_set": prep.outputs["nope"]})

    _refused(backend, bad, "step 'prepare' declares no output 'nope' (declared: train_set)", raw=str(raw))


def test_cycle_is_refused_naming_the_steps(backend: Backend, raw: Path) -> None:
    @pipeline
    def looped(raw: str) -> None:
        a = step(ps.add, name="a", inputs={"x": raw}, outputs=["y"])
        b = step(ps.add, name="b", inputs={"x": a.outputs["y"]}, outputs=["y"])
        a.after(b)

    _refused(backend, looped, "steps 'a', 'b', 'a' form a cycle", raw=str(raw))


def test_type_mismatches_and_missing_arguments_are_refused(backend: Backend, raw: Path) -> None:
    @pipeline
    def output_as_float(raw: str) -> None:
        prep = step(ps.prepare, inputs={"raw": raw}, outputs=["train_set"])
        step(ps.train, inputs={"train_set": prep.outputs["train_set"], "lr": prep.outputs["train_set"]})

    _refused(
        backend,
        output_as_float,
        "step 'train': input 'lr' is a dataset (output 'train_set' of step 'prepare') but train() takes lr: float",
        raw=str(raw),
    )

    @pipeline
    def bad_param(raw: str) -> None:
        step(ps.prepare, params={"scale": "lots"}, inputs={"raw": raw})

    _refused(backend, bad_param, "step 'prepare': param scale='lots' is not a valid int", raw=str(raw))

    @pipeline
    def missing(raw: str) -> None:
        step(ps.train)

    _refused(backend, missing, "step 'train': train() needs 'train_set': pass it as a param or input", raw=str(raw))

    @pipeline
    def output_as_param(raw: str) -> None:
        prep = step(ps.prepare, inputs={"raw": raw}, outputs=["train_set"])
        step(ps.train, params={"lr": prep.outputs["train_set"]}, inputs={"train_set": raw})

    _refused(
        backend,
        output_as_param,
        "step 'train': param 'lr' is output 'train_set' of step 'prepare'; pass outputs as inputs",
        raw=str(raw),
    )
    _refused(backend, ps.three, "pipeline 'three' needs param 'raw' (-p raw=…)")


def test_hub_steps_are_passed_to_provgraph_run(backend: Backend) -> None:
    @pipeline
    def hubbed() -> None:
        step("hub://describe", params={"n": 1})

    result = run_pipeline(hubbed, backend=backend)
    assert result.state == RunState.FAIL
    assert result.steps["describe"].state == "FAIL"
    # a step is named after the function, whatever source and version the URI names
    assert [default_name(h) for h in ("hub://a/shout:0.1.0", "hub://shout", "hub://a/shout", "f.py:fn")] == [
        "shout",
        "shout",
        "shout",
        "fn",
    ]


def test_a_hub_step_reads_a_file_and_feeds_the_next_step(backend: Backend, tmp_path: Path) -> None:
    from provgraph._hub import add_source
    from tests.hubkit import TABLE, build_hub

    build_hub(str(tmp_path / "hub"))
    add_source(backend.settings, "local", str(tmp_path / "hub"))
    table = tmp_path / "table.csv"
    table.write_bytes(TABLE)
    first = run_pipeline(ps.described, {"table": str(table)}, backend=backend).raise_for_state()
    assert [(n, s.state) for n, s in first.steps.items()] == [("describe", "COMPLETE"), ("lines", "COMPLETE")]
    assert first.steps["describe"].results["rows"] == 3 and first.steps["lines"].results == {"lines": 4}
    hubbed = backend.graph().run(first.steps["describe"].run_id or "")
    assert hubbed is not None and hubbed.parent_run_id == first.run_id
    assert (hubbed.runtime["function"]["name"], hubbed.runtime["function"]["hub_source"]) == ("describe", "local")
    # the hub step is never cached; its identical output makes the step after it a cache hit
    again = run_pipeline(ps.described, {"table": str(table)}, backend=backend).raise_for_state()
    assert [(n, s.state) for n, s in again.steps.items()] == [("describe", "COMPLETE"), ("lines", "CACHED")]
    assert again.steps["lines"].cached_from == first.steps["lines"].run_id


def test_whole_pipeline_reproduce_gives_a_verdict_per_step_and_overall(backend: Backend, raw: Path) -> None:
    from provgraph.pipelines.reproduce import reproduce_pipeline

    first = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    cached = run_pipeline(ps.three, {"raw": str(raw)}, backend=backend).raise_for_state()
    for run in (first, cached):  # a cached step is re-executed too, never reused
        found = reproduce_pipeline(run.run_id, backend)
        assert found.verdict == "REPRODUCED"
        assert [(s.step, s.original_run_id, s.verdict) for s in found.steps] == [
            (n, run.steps[n].run_id, "REPRODUCED") for n in ("prepare", "train", "evaluate")
        ]
        assert all(
            s.result is not None and s.result.run_id not in (run.steps[s.step].run_id, run.steps[s.step].cached_from)
            for s in found.steps
        )


def test_hyperparameter_grid_with_selector_promotes_the_best_child(backend: Backend, tmp_path: Path) -> None:
    import provgraph

    data = tmp_path / "train.txt"
    data.write_text("1 2 3")
    result = provgraph.run(
        ps.train,
        inputs={"train_set": str(data)},
        hyperparams={"lr": [0.01, 0.05, 0.2]},
        strategy="grid",
        selector="max.accuracy",
        backend=backend,
    ).raise_for_state()
    table = result.results["iterations"]
    assert [(row["iteration"], row["lr"], row["state"], row["best"]) for row in table] == [
        (1, 0.01, "COMPLETE", False),
        (2, 0.05, "COMPLETE", True),  # accuracy 1 / (1 + |lr - 0.05|) is highest at 0.05
        (3, 0.2, "COMPLETE", False),
    ]
    best = table[1]
    assert result.results["best_iteration"] == 2 and result.results["best_run_id"] == best["run_id"]
    graph = backend.graph()
    children = graph.children(result.run_id)
    assert sorted(c.params["lr"] for c in children) == [0.01, 0.05, 0.2]
    best_run = graph.run(best["run_id"])
    assert best_run is not None
    assert result.outputs == {"model": f"store://default/model@{best_run.outputs[0].version}"}
    parent = graph.run(result.run_id)
    assert parent is not None and [(o.name, o.version) for o in parent.outputs] == [
        ("model", best_run.outputs[0].version)
    ]
    with pytest.raises(provgraph.ConfigError) as caught:
        provgraph.run(ps.train, hyperparams={"lr": [0.1]}, selector="best.accuracy", backend=backend)
    assert str(caught.value) == "selector 'best.accuracy' must look like max.<result> or min.<result>"
