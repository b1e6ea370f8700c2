"""The kubernetes engine's decisions (`pipelines.remote.advance`) without Kafka or a cluster: the
requests it makes are executed in-process with `exec_request` (what a step's pod runs), their
events projected into a SQLite graph, and `advance` called again, until the pipeline run ends.
The service around it (Kafka, the launcher, a crash) is tests/test_pipeline_controller.py."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from provgraph import Backend, Settings
from provgraph._stored_request import exec_request
from provgraph.events.model import RunState
from provgraph.events.request import request_hash
from provgraph.events.transport.memory import MemoryTransport
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import RunView
from provgraph.pipelines.cache import output_uris
from provgraph.pipelines.remote import advance, load_document, step_run_id, submit_pipeline, submitter
from tests import pipeline_steps as ps

IMAGE = "registry.local/steps:1"
STEP = {"name": "fit-1", "entrypoint": "steps.py:fit", "code_hash": "sha256:" + "a" * 64}


def drive(
    settings: Settings,
    tmp_path: Path,
    pipeline: Any,
    params: dict[str, Any],
    store: SqliteLineageStore | None = None,
) -> tuple[RunView, Backend]:
    """Submit `pipeline`, then alternate `advance` and executing what it requested."""
    memory = MemoryTransport()
    store = store or SqliteLineageStore(tmp_path / "graph.db")
    cfg = settings.model_copy(update={"transport": "kafka", "kafka_bootstrap_servers": "127.0.0.1:9"})
    backend = Backend(cfg, transport=memory, graph=store)
    result = submit_pipeline(pipeline, params, backend=backend, image=IMAGE)
    digest = _digest(memory, result.run_id)
    queue: list[bytes] = []
    submit = submitter(backend, lambda run_id, body: queue.append(body))
    seen = 0
    for _ in range(50):
        store.apply(memory.events[seen:])
        seen = len(memory.events)
        run = store.run(result.run_id)
        assert run is not None
        if run.state.is_terminal:
            return run, backend
        advance(load_document(digest, backend), store.children(result.run_id), backend, submit)
        while queue:
            exec_request(request_hash(queue.pop(0)), backend)
    raise AssertionError("the pipeline run did not end")


def _digest(memory: MemoryTransport, run_id: str) -> str:
    [event] = [e for e in memory.events if e.run.run_id == run_id]
    assert event.run.facets.requested is not None
    return event.run.facets.requested.request_hash


def _steps(run: RunView) -> dict[str, tuple[str, str | None]]:
    return {s["name"]: (s["state"], s.get("reason")) for s in run.results["steps"]}


def test_a_failed_step_is_retried_as_a_new_run(settings: Settings, tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text("5")
    run, backend = drive(settings, tmp_path, ps.retried, {"seed": str(seed), "marker": str(tmp_path / "count")})
    try:
        assert run.state == RunState.COMPLETE and _steps(run) == {"flaky": ("COMPLETE", None)}
        [flaky] = run.results["steps"]
        assert flaky["attempts"] == 2 and flaky["run_id"] == step_run_id(run.run_id, "flaky", 2)
        children = {c.run_id: c.state for c in backend.graph().children(run.run_id)}
        assert children == {
            step_run_id(run.run_id, "flaky", 1): RunState.FAIL,
            step_run_id(run.run_id, "flaky", 2): RunState.COMPLETE,
        }
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.0, {"evaluate": ("COMPLETE", None), "after-evaluate": ("COMPLETE", None)}),
        (
            1e9,
            {
                "evaluate": ("SKIPPED", "condition train.results['weight'] > 1000000000.0 is false"),
                "after-evaluate": ("SKIPPED", "upstream step evaluate SKIPPED"),
            },
        ),
    ],
)
def test_conditions_and_ordering(
    settings: Settings, tmp_path: Path, threshold: float, expected: dict[str, tuple[str, str | None]]
) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text("1 2 3 4")
    run, backend = drive(settings, tmp_path, ps.conditional, {"raw": str(raw), "threshold": threshold})
    try:
        assert run.state == RunState.COMPLETE
        assert _steps(run) == {"prepare": ("COMPLETE", None), "train": ("COMPLETE", None), **expected}
    finally:
        backend.close()


@pytest.mark.slow  # kafka-python gives up on an unreachable broker after its bootstrap timeout
def test_a_decision_that_could_not_be_sent_is_retried(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Kafka unreachable when the first step is requested: no step is marked requested, and the
    pipeline run is decided again later (no event of it may ever come to trigger that)."""
    from provgraph.events.serde import dumps
    from provgraph.services.pipeline_controller import Controller

    raw = tmp_path / "raw.txt"
    raw.write_text("1 2")
    memory = MemoryTransport()
    cfg = settings.model_copy(update={"transport": "kafka", "kafka_bootstrap_servers": "127.0.0.1:9"})
    backend = Backend(cfg, transport=memory)
    try:
        run_id = submit_pipeline(ps.three, {"raw": str(raw)}, backend=backend, image=IMAGE).run_id
    finally:
        backend.close()
    controller = Controller(cfg, transport=MemoryTransport())
    try:
        assert controller.apply([type("Rec", (), {"value": dumps(e)})() for e in memory.events]) == {run_id}
        caplog.set_level(logging.ERROR, "provgraph.services.pipeline_controller.app")
        controller.advance(run_id)
        mine = [r.getMessage() for r in caplog.records if r.name == "provgraph.services.pipeline_controller.app"]
        assert mine == [f"advancing pipeline run {run_id} failed; retrying in 5 s"]
        assert controller.retrying == {run_id} and controller.acted == set()
    finally:
        controller.close()


class ReadCounting(SqliteLineageStore):
    """Counts the runs read whole (`run`), by run id."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: Counter[str] = Counter()

    def run(self, run_id: str) -> RunView | None:
        self.reads[run_id] += 1
        return super().run(run_id)


def test_a_decision_reads_only_the_ended_steps_whose_outputs_it_uses(settings: Settings, tmp_path: Path) -> None:
    """An ended step is read whole (with its outputs) when the step it feeds is requested, and once
    more when the pipeline run ends: linear in the pipeline's length. Reading every ended step on
    every decision made a 100-step chain's last decisions the slowest."""
    seed = tmp_path / "seed.txt"
    seed.write_text("0")
    store = ReadCounting(tmp_path / "graph.db")
    run, backend = drive(settings, tmp_path, ps.chain, {"seed": str(seed)}, store)
    try:
        assert run.state == RunState.COMPLETE
        steps = [step_run_id(run.run_id, f"add-{i}", 1) for i in range(20)]
        assert {r: n for r, n in store.reads.items() if r != run.run_id} == {
            **dict.fromkeys(steps[:-1], 2),
            steps[-1]: 1,
        }
        graph = backend.graph()  # the pipeline's results still hold every step's outputs
        assert [s["outputs"] for s in run.results["steps"]] == [output_uris(graph.run(r)) for r in steps]  # type: ignore[arg-type]
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"hyper": {"combos": [{"lr": 0.1}, {"lr": 0.2}]}}, "a hyperparameter run's steps must be fit-1, fit-2,"),
        ({"steps": [{**STEP, "name": "other"}]}, "a hyperparameter run's steps must be fit-1, independent"),
        ({"steps": [{**STEP, "upstream": ["fit-1"]}]}, "a hyperparameter run's steps must be fit-1, independent"),
        ({"hyper": {"combos": [{"lr": 0.1}], "selector": "best.x"}}, "must look like max.<result> or min.<result>"),
        ({"hyper": {"combos": []}}, "List should have at least 1 item"),
        ({"secrets": ["Not_A_Name"]}, "secret 'Not_A_Name' is not a valid Kubernetes Secret name"),
    ],
)
def test_a_document_the_controller_could_not_end_is_refused_when_loaded(
    settings: Settings, change: dict[str, Any], problem: str
) -> None:
    """A document is anyone's bytes in the artifact store: one whose hyperparameter run does not match
    its steps (or names an invalid selector or secret) is refused, never retried forever."""
    import json

    from provgraph.events.errors import ConfigError

    backend = Backend(settings)
    try:
        good: dict[str, Any] = {"run_id": "r1", "project": "p", "name": "fit", "image": IMAGE, "steps": [STEP]}
        good["hyper"] = {"combos": [{"lr": 0.1}], "selector": "max.score"}
        digest, _ = backend.artifacts.put_bytes(json.dumps(good).encode())
        assert load_document(digest, backend).hyper is not None
        bad, _ = backend.artifacts.put_bytes(json.dumps({**good, **change}).encode())
        with pytest.raises(ConfigError) as caught:
            load_document(bad, backend)
    finally:
        backend.close()
    assert str(caught.value).startswith(f"{bad} is not a pipeline document: 1 validation error for PipelineDocument")
    assert problem in str(caught.value)
