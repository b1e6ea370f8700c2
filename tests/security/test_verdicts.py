"""Reproduction verdicts are trustworthy: a fresh interpreter by default, the code that really ran,
FAILED rather than PENDING forever, and `provgraph show` says what changed around the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import provgraph as pg
from provgraph._code import load_handler

WORDS = [f"word-{i}" for i in range(50)]


def set_order(ctx: pg.Context) -> None:
    """Depends on the interpreter's string hash seed: iteration order of a set of strings."""
    ctx.log_artifact("order", body=",".join(list(set(WORDS))))


def fails_when(ctx: pg.Context, marker: str, how: str = "raise") -> dict[str, int]:
    if Path(marker).exists():
        if how == "exit":
            os._exit(3)
        raise RuntimeError("the marker is there")
    return {"ok": 1}


def test_sdk_reproduction_runs_in_a_fresh_interpreter(backend: pg.Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)  # each interpreter draws its own seed
    original = pg.run(set_order, backend=backend).raise_for_state()
    again = pg.reproduce(original.run_id, backend=backend)
    assert again.state == "COMPLETE" and again.verdict is not None
    assert (again.verdict.verdict, [d["output"] for d in again.verdict.differences]) == ("DIVERGED", ["order"])
    same_process = pg.reproduce(original.run_id, in_process=True, backend=backend)  # documented as weaker
    assert same_process.verdict is not None and same_process.verdict.verdict == "REPRODUCED"


def test_a_file_edited_after_import_records_an_unknown_code_version(backend: pg.Backend, tmp_path: Path) -> None:
    path = tmp_path / "job.py"
    path.write_text("def helper():\n    return 1\n\ndef job():\n    return {'v': helper()}\n")
    job = load_handler(f"{path}:job")
    known = pg.run(job, backend=backend).raise_for_state()
    path.write_text("def helper():\n    return 2\n\ndef job():\n    return {'v': helper()}\n")
    edited = pg.run(job, backend=backend).raise_for_state()
    assert edited.results == {"v": 1}  # the loaded code ran, not the file as it is now
    run = backend.graph().run(edited.run_id)
    assert run is not None and run.job_version is None
    assert run.runtime["code_unknown"] == "job.py was edited after it was imported (helper changed)"
    with pytest.raises(pg.ReproduceRefused) as err:
        pg.reproduce(edited.run_id, backend=backend)
    assert str(err.value) == (
        f"run {edited.run_id} (default/job) has no known code version:"
        " job.py was edited after it was imported (helper changed)"
    )
    before = backend.graph().run(known.run_id)
    assert before is not None and before.job_version is not None and before.runtime["code_unknown"] is None


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("raise", "RuntimeError: the marker is there"),
        ("exit", "the run's process ended (exit status 3) without reporting its end"),
    ],
)
def test_a_reproduction_that_fails_ends_failed(backend: pg.Backend, tmp_path: Path, how: str, error: str) -> None:
    marker = tmp_path / "marker"
    original = pg.run(fails_when, params={"marker": str(marker), "how": how}, backend=backend).raise_for_state()
    marker.touch()
    again = pg.reproduce(original.run_id, backend=backend)
    assert (again.state, again.error) == ("FAIL", error)
    assert again.verdict is not None and again.verdict.verdict == "FAILED"
    run = backend.graph().run(again.run_id)
    assert run is not None and run.state == "FAIL" and run.error == error
    assert run.reproduces is not None and run.reproduces.verdict == "FAILED"
    assert set(run.reproduces.environment) == {"python", "packages_digest", "image"}


@pytest.mark.slow
def test_show_prints_the_environment_and_snapshot_inputs(settings: pg.Settings, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("v1")
    backend = pg.Backend(settings.model_copy(update={"snapshot_inputs_max_bytes": 1024}))
    original = pg.run(copy_input, inputs={"data": str(data)}, backend=backend).raise_for_state()
    data.write_text("v2")
    again = pg.reproduce(original.run_id, backend=backend)
    backend.close()
    assert again.verdict is not None and again.verdict.snapshot_inputs == ["data"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(settings.home), COLUMNS="250", NO_COLOR="1")
    out = subprocess.run(
        [str(Path(sys.executable).parent / "provgraph"), "show", again.run_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    python = again.verdict.environment["python"]["original"]
    assert f"    python           same  original {python}  reproduced {python}" in out
    assert "    image            same  original None  reproduced None" in out
    assert "    inputs read from snapshots: data" in out


def copy_input(ctx: pg.Context, data: pg.DataItem) -> None:
    ctx.log_artifact("copy", body=data.get())
