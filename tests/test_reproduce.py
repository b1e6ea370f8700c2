"""Verified reproduction on the local runtime: re-run from the graph alone and get a verdict."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

import provgraph as pg
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
