# ruff: noqa: F811 - the launcher tests' fixtures, imported below, are the tests' parameters
"""The kubernetes pipeline engine: launcher + pipeline controller on the real Kafka broker and the
real Kubernetes API server (KWOK). KWOK runs no containers: the test executes each Job's pod
command locally with only the Job's environment (`run_like_the_pod`), as the launcher tests do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph.events.model import EventType
from provgraph.graph.contract import LineageStore
from provgraph.graph.views import RunView
from provgraph.pipelines import run_pipeline
from provgraph.pipelines.remote import step_run_id, submit_pipeline
from provgraph.services.launcher import job_name
from provgraph.services.pipeline_controller import Controller
from tests import pipeline_steps
from tests.helpers import holds_for, wait_for
from tests.test_launcher import (  # noqa: F401 - fixtures
    IMAGE,
    Cluster,
    Lineage,
    cluster,
    launcher,
    lineage,
    lsettings,
    namespace,
    run_like_the_pod,
)

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.slow]

STEPS = ["prepare", "train", "evaluate"]


@contextmanager
def controller(settings: pg.Settings) -> Iterator[Controller]:
    """The pipeline controller's loop in a thread; stopped after."""
    c = Controller(settings)
    thread = threading.Thread(target=c.run, name="pipeline-controller", daemon=True)
    thread.start()
    try:
        yield c
    finally:
        c.stop()
        thread.join(30)
        c.close()


class Pods:
    """Executes every Job of the namespace once, as its pod would (KWOK runs no containers)."""

    def __init__(self, cluster: Cluster, namespace: str, home: Path) -> None:
        self.cluster, self.namespace, self.home = cluster, namespace, home
        self.executed: list[str] = []

    def run_new(self) -> list[str]:
        new = []
        for job in sorted(self.cluster.jobs(self.namespace), key=lambda j: j["metadata"]["creationTimestamp"]):
            name = job["metadata"]["name"]
            if name not in self.executed:
                self.executed.append(name)
                run_like_the_pod(job, self.home / name)
                new.append(name)
        return new


def submit(settings: pg.Settings, raw: Path) -> str:
    backend = pg.Backend(settings)
    try:
        return submit_pipeline(pipeline_steps.three, {"raw": str(raw)}, backend=backend, image=IMAGE).run_id
    finally:
        backend.close()


def shape(graph: LineageStore, run_id: str) -> list[tuple[Any, ...]]:
    """A pipeline run's steps as a local run would record them: names, states, bindings, versions, results."""
    run = graph.run(run_id)
    assert run is not None
    recorded = [(s["name"], s["state"], s.get("upstream", [])) for s in run.results["steps"]]
    details = [graph.run(c.run_id) for c in graph.children(run_id)]
    children = sorted((c for c in details if c is not None), key=lambda c: STEPS.index(c.job_name))
    return [
        *recorded,
        *(
            (
                c.job_name,
                c.state,
                c.parent_run_id,
                sorted((i.binding, i.version) for i in c.inputs),
                sorted((o.binding, o.version) for o in c.outputs),
                c.results,
                c.params,
            )
            for c in children
        ),
    ]


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    path = tmp_path / "raw.txt"
    path.write_text("1 2 3 4 5 6")
    return path


def test_a_three_step_pipeline_runs_as_jobs_and_records_the_graph_of_a_local_run(
    lsettings: pg.Settings,
    cluster: Cluster,
    namespace: str,
    lineage: Lineage,
    raw: Path,
    tmp_path: Path,
    settings: pg.Settings,
) -> None:
    pods = Pods(cluster, namespace, tmp_path / "pods")
    with launcher(lsettings), controller(lsettings):
        run_id = submit(lsettings, raw)

        def finished() -> RunView | None:
            pods.run_new()
            lineage.catch_up()
            run = lineage.store.run(run_id)
            return run if run is not None and run.state.is_terminal else None

        run = wait_for("the pipeline run to end", finished, timeout=120)
    assert (run.state, run.error) == ("COMPLETE", None), run.results
    assert run.runtime["kind"] == "pipeline"
    assert pods.executed == [job_name(step_run_id(run_id, s, 1)) for s in STEPS]  # one Job per step, in order
    assert {c.runtime["kind"] for c in lineage.store.children(run_id)} == {"kubernetes"}

    local = pg.Backend(settings.model_copy(update={"home": tmp_path / "local"}))
    try:
        here = run_pipeline(pipeline_steps.three, {"raw": str(raw)}, backend=local).raise_for_state()
        expected = shape(local.graph(), here.run_id)
    finally:
        local.close()
    got = shape(lineage.store, run_id)
    # the same DAG: steps, states, CHILD_OF, input and output content hashes, results, params
    assert got[:3] == expected[:3]
    assert [g[:1] + g[1:2] + g[3:] for g in got[3:]] == [e[:1] + e[1:2] + e[3:] for e in expected[3:]]
    assert {g[2] for g in got[3:]} == {run_id}


def test_a_failed_step_skips_its_dependants_and_fails_the_pipeline_run(
    lsettings: pg.Settings,
    cluster: Cluster,
    namespace: str,
    lineage: Lineage,
    raw: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PIPELINE_TEST_FIX", raising=False)
    pods = Pods(cluster, namespace, tmp_path / "pods")
    backend = pg.Backend(lsettings)
    with launcher(lsettings), controller(lsettings):
        try:
            run_id = submit_pipeline(pipeline_steps.failing, {"raw": str(raw)}, backend=backend, image=IMAGE).run_id
        finally:
            backend.close()

        def finished() -> RunView | None:
            pods.run_new()
            lineage.catch_up()
            run = lineage.store.run(run_id)
            return run if run is not None and run.state.is_terminal else None

        run = wait_for("the pipeline run to end", finished, timeout=120)
    states = {s["name"]: (s["state"], s.get("reason")) for s in run.results["steps"]}
    assert run.state == "FAIL" and run.error == "step boom ended FAIL: RuntimeError: boom"
    assert states == {
        "prepare": ("COMPLETE", None),
        "train": ("COMPLETE", None),
        "boom": ("FAIL", "RuntimeError: boom"),
        "evaluate": ("SKIPPED", "upstream step boom FAIL"),
    }
    assert len(pods.executed) == 3  # no Job for the skipped step


def test_an_identical_pipeline_run_reuses_every_step_without_a_job(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, raw: Path, tmp_path: Path
) -> None:
    pods = Pods(cluster, namespace, tmp_path / "pods")
    with launcher(lsettings), controller(lsettings):
        runs = []
        for _ in range(2):
            run_id = submit(lsettings, raw)

            def finished(run_id: str = run_id) -> RunView | None:
                pods.run_new()
                lineage.catch_up()
                run = lineage.store.run(run_id)
                return run if run is not None and run.state.is_terminal else None

            runs.append(wait_for("the pipeline run to end", finished, timeout=120))
    first, second = runs
    assert first.state == second.state == "COMPLETE"
    assert [s["state"] for s in second.results["steps"]] == ["CACHED"] * 3
    assert len(pods.executed) == 3  # the second run made no Job
    cached = {c.job_name: c.cached_from for c in lineage.store.children(second.run_id)}
    original = {c.job_name: c.run_id for c in lineage.store.children(first.run_id)}
    assert cached == original


def _controller_process(settings: pg.Settings, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env |= {
        "PROVGRAPH_HOME": str(cwd / "controller-home"),
        "PROVGRAPH_TRANSPORT": "kafka",
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "PROVGRAPH_ARTIFACT_STORE": settings.artifact_url,
    }
    cli = Path(sys.executable).parent / "provgraph"
    return subprocess.Popen(
        [str(cli), "pipeline-controller"],
        env=env,
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def caught_up(proc: subprocess.Popen[str]) -> None:
    """Wait until the controller has replayed the topic and decides (it logs it on stderr)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if "caught up; following" in line:
            return
    raise AssertionError(f"the controller exited ({proc.wait()}) before catching up")


def test_a_killed_controller_resumes_and_every_step_runs_exactly_once(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, raw: Path, tmp_path: Path
) -> None:
    pods = Pods(cluster, namespace, tmp_path / "pods")
    with launcher(lsettings):
        first = _controller_process(lsettings, tmp_path)
        run_id = submit(lsettings, raw)
        jobs = {s: job_name(step_run_id(run_id, s, 1)) for s in STEPS}
        wait_for("the first step's Job", lambda: cluster.job(namespace, jobs["prepare"]), timeout=90)
        assert pods.run_new() == [jobs["prepare"]]
        wait_for("the second step's Job", lambda: cluster.job(namespace, jobs["train"]), timeout=90)
        first.send_signal(signal.SIGKILL)  # mid-pipeline: train requested, not yet run
        first.wait(10)
        assert first.stderr is not None
        first.stderr.close()

        second = _controller_process(lsettings, tmp_path)
        try:
            caught_up(second)

            def two_jobs() -> bool:
                return {j["metadata"]["name"] for j in cluster.jobs(namespace)} == {jobs["prepare"], jobs["train"]}

            holds_for("no re-request of a step after the restart", two_jobs, 3.0)
            assert pods.run_new() == [jobs["train"]]
            wait_for("the third step's Job", lambda: cluster.job(namespace, jobs["evaluate"]), timeout=90)
            assert pods.run_new() == [jobs["evaluate"]]

            def finished() -> RunView | None:
                lineage.catch_up()
                run = lineage.store.run(run_id)
                return run if run is not None and run.state.is_terminal else None

            run = wait_for("the pipeline run to end", finished, timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert run.state == "COMPLETE"
    assert sorted(j["metadata"]["name"] for j in cluster.jobs(namespace)) == sorted(jobs.values())
    children = lineage.store.children(run_id)
    assert sorted(c.job_name for c in children) == sorted(STEPS) and {c.state for c in children} == {"COMPLETE"}
    starts = [e.run.run_id for e in lineage.events if e.event_type == EventType.START]
    assert sorted(starts) == sorted(step_run_id(run_id, s, 1) for s in STEPS)  # each step executed once


def test_a_hub_step_runs_as_a_job_from_the_code_the_client_resolved(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, tmp_path: Path
) -> None:
    from provgraph._hub import add_source
    from tests.hubkit import TABLE, build_hub

    build_hub(str(tmp_path / "hub"))
    add_source(lsettings, "local", str(tmp_path / "hub"))
    table = tmp_path / "table.csv"
    table.write_bytes(TABLE)
    pods = Pods(cluster, namespace, tmp_path / "pods")
    backend = pg.Backend(lsettings)
    with launcher(lsettings), controller(lsettings):
        try:
            run_id = submit_pipeline(
                pipeline_steps.described, {"table": str(table)}, backend=backend, image=IMAGE
            ).run_id
        finally:
            backend.close()
        (tmp_path / "hub").rename(tmp_path / "gone")  # the pods and the controller never ask the hub

        def finished() -> RunView | None:
            pods.run_new()
            lineage.catch_up()
            run = lineage.store.run(run_id)
            return run if run is not None and run.state.is_terminal else None

        run = wait_for("the pipeline run to end", finished, timeout=120)
    assert (run.state, [(s["name"], s["state"]) for s in run.results["steps"]]) == (
        "COMPLETE",
        [("describe", "COMPLETE"), ("lines", "COMPLETE")],
    )
    assert pods.executed == [job_name(step_run_id(run_id, s, 1)) for s in ("describe", "lines")]
    steps = {c.job_name: lineage.store.run(c.run_id) for c in lineage.store.children(run_id)}
    hubbed, counted = steps["describe"], steps["lines"]
    assert hubbed is not None and counted is not None
    assert hubbed.runtime["kind"] == "kubernetes"
    assert (hubbed.runtime["function"]["name"], hubbed.runtime["function"]["hub_source"]) == ("describe", "local")
    assert hubbed.code_hash == hubbed.runtime["function"]["code_hash"]
    assert (hubbed.results["rows"], hubbed.params) == (3, {"name": "raw", "label_column": None, "sample": 1})
    assert [i.version for i in counted.inputs] == [o.version for o in hubbed.outputs]
    assert counted.results == {"lines": 4}


def test_rerun_of_a_kubernetes_pipeline_run_plans_as_a_local_one_and_runs_through_the_controller(
    lsettings: pg.Settings,
    cluster: Cluster,
    namespace: str,
    lineage: Lineage,
    raw: Path,
    tmp_path: Path,
    settings: pg.Settings,
) -> None:
    from provgraph.pipelines.plan import execute_plan, plan_rerun

    pods = Pods(cluster, namespace, tmp_path / "pods")

    def finished(run_id: str) -> RunView:
        def probe() -> RunView | None:
            pods.run_new()
            lineage.catch_up()
            run = lineage.store.run(run_id)
            return run if run is not None and run.state.is_terminal else None

        return wait_for("the pipeline run to end", probe, timeout=120)

    with launcher(lsettings), controller(lsettings):
        first = finished(submit(lsettings, raw))
        backend = pg.Backend(lsettings, graph=lineage.store)  # the graph the Kafka events feed
        try:
            same = plan_rerun(first.run_id, backend)
            changed = plan_rerun(first.run_id, backend, {"lr": 0.2})
            requested = execute_plan(changed, backend)
        finally:
            backend.close()
        assert requested.state == "REQUESTED"
        second = finished(requested.run_id)
    original = {c.job_name: c.run_id for c in lineage.store.children(first.run_id)}
    # the kubernetes runs are cache sources of a kubernetes rerun (same image)
    assert [(s.name, s.action, s.cached_from) for s in same.steps] == [(n, "reuse", original[n]) for n in STEPS]
    assert (changed.image, changed.params) == (IMAGE, {"raw": str(raw), "lr": 0.2})
    # executed through the controller: prepare reused without a Job, train and evaluate as Jobs
    assert second.state == "COMPLETE" and second.runtime["image"] == IMAGE
    assert [(s["name"], s["state"]) for s in second.results["steps"]] == [
        ("prepare", "CACHED"),
        ("train", "COMPLETE"),
        ("evaluate", "COMPLETE"),
    ]
    assert pods.executed[3:] == [job_name(step_run_id(second.run_id, s, 1)) for s in ("train", "evaluate")]

    # the same plan as for a local run of the same pipeline
    local = pg.Backend(settings.model_copy(update={"home": tmp_path / "local"}))
    try:
        here = run_pipeline(pipeline_steps.three, {"raw": str(raw)}, backend=local).raise_for_state()
        local_plan = plan_rerun(here.run_id, local, {"lr": 0.2})
    finally:
        local.close()
    assert local_plan.image is None
    assert [(s.name, s.action, s.reasons) for s in changed.steps] == [
        (s.name, s.action, s.reasons) for s in local_plan.steps
    ]
    assert [(s.name, s.action, s.reasons) for s in changed.steps] == [
        ("prepare", "reuse", []),
        ("train", "run", ["param lr changed 0.1 → 0.2"]),
        ("evaluate", "run?", ["upstream step train re-runs; reused if its outputs come out unchanged"]),
    ]
