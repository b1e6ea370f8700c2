"""Verified reproduction on the local runtime: re-run from the graph alone and get a verdict."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

import provgraph as pg
from provgraph._execution import execute
from provgraph._reproduce import plan
from provgraph.events.model import Dataset, EventType, Job, Run, RunEvent


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def deterministic(ctx: pg.Context, data: pg.DataItem, scale: int = 2) -> dict[str, int]:
    body = data.get()
    ctx.log_artifact("scaled", body=body * scale)
    ctx.log_metric("size", len(body) * scale)
    return {"size": len(body) * scale}


def noisy(ctx: pg.Context, data: pg.DataItem) -> None:
    ctx.log_artifact("sample", body=data.get() + os.urandom(8))


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(b"the data")
    return path


def test_a_deterministic_run_reproduces(backend: pg.Backend, data_file: Path) -> None:
    original = pg.run(deterministic, params={"scale": 3}, inputs={"data": str(data_file)}, backend=backend)
    again = pg.reproduce(original.run_id, backend=backend)
    assert again.state == "COMPLETE" and again.run_id != original.run_id
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED" and again.verdict.differences == []
    assert all(e["same"] for e in again.verdict.environment.values())
    run = backend.graph().run(again.run_id)
    assert run is not None and run.reproduces is not None
    assert (run.reproduces.original_run_id, run.reproduces.verdict) == (original.run_id, "REPRODUCED")
    assert run.params == {"scale": 3}
    assert run.inputs[0].version == sha(b"the data")
    # a reproduction of a reproduction is a reproduction too
    third = pg.reproduce(again.run_id, backend=backend)
    assert third.verdict is not None and third.verdict.verdict == "REPRODUCED"


def test_a_run_reproduces_with_the_function_it_called_under_a_shared_job_name(
    backend: pg.Backend, data_file: Path
) -> None:
    """Two functions of one file run under one job name share a job version (its key is the file's
    hash): each run still records, reproduces and compares with its own function."""
    original = pg.run(deterministic, inputs={"data": str(data_file)}, name="exp", backend=backend)
    later = pg.run(noisy, inputs={"data": str(data_file)}, name="exp", backend=backend)
    graph = backend.graph()
    first, second = graph.run(original.run_id), graph.run(later.run_id)
    assert first is not None and second is not None and first.code_hash == second.code_hash
    assert first.job_version is not None and first.job_version.entrypoint == first.entrypoint
    assert (first.entrypoint, second.entrypoint) == ("test_reproduce.py:deterministic", "test_reproduce.py:noisy")
    again = pg.reproduce(original.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED"
    assert set(again.outputs) == {"scaled"}


def test_unseeded_randomness_diverges_and_names_the_output(backend: pg.Backend, data_file: Path) -> None:
    original = pg.run(noisy, inputs={"data": str(data_file)}, backend=backend)
    again = pg.reproduce(original.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "DIVERGED"
    assert [d["output"] for d in again.verdict.differences] == ["sample"]
    run = backend.graph().run(again.run_id)
    assert run is not None and run.reproduces is not None and run.reproduces.verdict == "DIVERGED"


def test_changed_input_without_snapshot_is_refused_with_both_hashes(backend: pg.Backend, data_file: Path) -> None:
    original = pg.run(deterministic, inputs={"data": str(data_file)}, backend=backend)
    data_file.write_bytes(b"other data")
    with pytest.raises(pg.ReproduceRefused) as err:
        pg.reproduce(original.run_id, backend=backend)
    message = str(err.value)
    assert "input 'data'" in message and sha(b"the data") in message and sha(b"other data") in message
    data_file.unlink()
    with pytest.raises(pg.ReproduceRefused, match="now missing"):
        pg.reproduce(original.run_id, backend=backend)


def test_changed_input_with_snapshots_on_reproduces(settings: pg.Settings, data_file: Path) -> None:
    backend = pg.Backend(settings.model_copy(update={"snapshot_inputs_max_bytes": 1 << 20}))
    original = pg.run(deterministic, inputs={"data": str(data_file)}, backend=backend)
    data_file.write_bytes(b"overwritten")
    again = pg.reproduce(original.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED"
    run = backend.graph().run(again.run_id)
    assert run is not None  # the reproduction read the same dataset version, from its snapshot
    assert [(i.name, i.version) for i in run.inputs] == [(str(data_file), sha(b"the data"))]


def test_runs_from_other_producers_and_failed_runs_are_refused(backend: pg.Backend) -> None:
    backend.transport.emit(
        RunEvent(
            event_type=EventType.COMPLETE,
            event_time=datetime.now(UTC),
            run=Run(run_id="ext-run"),
            job=Job(namespace="airflow", name="etl"),
            inputs=[Dataset(namespace="s3://b", name="k")],
        )
    )
    with pytest.raises(pg.ReproduceRefused, match="has no source snapshot"):
        pg.reproduce("ext-run", backend=backend)
    failed = pg.run(noisy, inputs={"data": "memory://nothing/here"}, backend=backend)  # fails reading it
    with pytest.raises(pg.ReproduceRefused, match="ended FAIL"):
        pg.reproduce(failed.run_id, backend=backend)
    with pytest.raises(pg.NotFound):
        pg.reproduce("no-such-run", backend=backend)


def test_artifact_inputs_are_pinned_by_version(backend: pg.Backend, data_file: Path) -> None:
    first = pg.run(deterministic, inputs={"data": str(data_file)}, backend=backend)
    consumer = pg.run(deterministic, inputs={"data": "store://default/scaled"}, backend=backend)
    data_file.write_bytes(b"newer")  # a newer `scaled` version appears
    pg.run(deterministic, inputs={"data": str(data_file)}, backend=backend)
    again = pg.reproduce(consumer.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED"
    run = backend.graph().run(again.run_id)
    assert run is not None and run.inputs[0].version == first.outputs["scaled"].rpartition("@")[2]


def epochs(ctx: pg.Context) -> None:
    for loss in (0.9, 0.5, 0.3):  # no step=: every point at step 0, the run's loss is the last
        ctx.log_metric("loss", loss)
    ctx.log_result("ints", [1, 0.0])


def twice(ctx: pg.Context) -> None:
    ctx.log_artifact("out", body=b"one")
    ctx.log_artifact("out", body=b"two")  # the graph keeps both versions of `out`, in no order


def test_verdicts_of_repeated_metrics_and_outputs_are_reproduced(backend: pg.Backend) -> None:
    for handler in (epochs, twice):
        first = pg.run(handler, backend=backend).raise_for_state()
        view = backend.graph().run(first.run_id)
        assert view is not None and view.metrics == first.metrics  # the graph keeps the last value too
        again = pg.reproduce(first.run_id, backend=backend)
        assert again.verdict is not None and again.verdict.verdict == "REPRODUCED", again.verdict


def types_differ(ctx: pg.Context, flip: bool = False) -> None:
    ctx.log_result("x", True if flip else 1)
    ctx.log_result("z", -0.0 if flip else 0.0)


def test_a_result_of_another_json_type_diverges(backend: pg.Backend) -> None:
    first = pg.run(types_differ, backend=backend).raise_for_state()
    request, code = plan(first.run_id, backend)
    flipped = request.model_copy(update={"params": {"flip": True}})
    again = execute(flipped, types_differ, code, backend)
    assert again.verdict is not None and again.verdict.verdict == "DIVERGED"
    assert [d["result"] for d in again.verdict.differences] == ["x", "z"]


def ignores(ctx: pg.Context, data: pg.DataItem) -> None:
    ctx.log_result("ok", 1)


def test_an_unread_input_whose_bytes_changed_fails_a_server_started_reproduction(
    backend: pg.Backend, tmp_path: Path
) -> None:
    """A server starts reproductions without reading inputs (`check_inputs=False`): the run itself must
    refuse a pinned input whose bytes changed, read by the handler or not."""
    data = tmp_path / "in.csv"
    data.write_text("a\n")
    first = pg.run(ignores, inputs={"data": str(data)}, backend=backend).raise_for_state()
    data.write_text("b\n")
    request, code = plan(first.run_id, backend, check_inputs=False)
    again = execute(request, ignores, code, backend)
    assert again.state == "FAIL" and again.error is not None and "CorruptArtifact" in again.error
    assert again.verdict is not None and again.verdict.verdict == "FAILED"
