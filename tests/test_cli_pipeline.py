"""`provgraph pipeline …` and `provgraph stale` as a user meets them: a real process, real files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from provgraph.events.settings import KAFKA_UNSET
from tests import test_cli
from tests.test_cli import UUID

cli = test_cli.cli  # the fixture: a real `provgraph` process in a fresh home

FLOW = """
from provgraph import Context, DataItem
from provgraph.pipelines import pipeline, step


def prepare(ctx: Context, raw: DataItem) -> dict:
    rows = raw.get().decode().split()
    ctx.log_dataset("head", " ".join(rows[:2]).encode())
    ctx.log_dataset("tail", " ".join(rows[2:]).encode())
    return {"rows": len(rows)}


def count(ctx: Context, data: DataItem, scale: int = 1) -> dict:
    return {"n": len(data.get().split()) * scale}


@pipeline
def flow(raw: str, scale: int = 1):
    prep = step(prepare, inputs={"raw": raw}, outputs=["head", "tail"])
    step(count, name="count-head", params={"scale": scale}, inputs={"data": prep.outputs["head"]})
    step(count, name="count-tail", params={"scale": scale}, inputs={"data": prep.outputs["tail"]})


@pipeline
def broken(raw: str):
    prep = step(prepare, inputs={"raw": raw}, outputs=["head"])
    step(count, inputs={"data": prep.outputs["middle"]})
"""


def test_pipeline_run_show_rerun_plan_and_stale(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "flow.py").write_text(FLOW)
    raw = tmp_path / "raw.csv"
    raw.write_text("1 2 3 4 5")
    out = cli("pipeline", "run", "flow.py:flow", "-p", "raw=raw.csv").stdout
    run_id = re.search(rf"pipeline run ({UUID})", out).group(1)  # type: ignore[union-attr]
    assert "(3 executed, 0 reused from cache)" in out
    again = cli("pipeline", "run", "flow.py:flow", "-p", "raw=raw.csv").stdout
    assert "(0 executed, 3 reused from cache)" in again
    show = cli("pipeline", "show", run_id[:13]).stdout  # a unique prefix, as every command takes
    assert re.search(r"count-head\s+│\s+COMPLETE", show) and re.search(r"count-tail\s+│\s+COMPLETE", show), show
    assert run_id in cli("pipeline", "runs").stdout
    raw.write_text("1 2 9 9 9")
    plan = cli("pipeline", "rerun", run_id, "--plan").stdout
    lines = [line.strip() for line in plan.splitlines()[1:]]
    assert lines[0] == "run   prepare"
    assert re.fullmatch(r"input raw\.csv changed sha256:[0-9a-f]{8}… → sha256:[0-9a-f]{8}…", lines[1])
    assert lines[2:] == [
        "run?  count-head",
        "upstream step prepare re-runs; reused if its outputs come out unchanged",
        "run?  count-tail",
        "upstream step prepare re-runs; reused if its outputs come out unchanged",
    ]
    rerun = cli("pipeline", "rerun", run_id).stdout
    assert "(2 executed, 1 reused from cache)" in rerun  # the head rows did not change
    stale = cli("stale", "raw.csv").stdout
    assert stale.count("stale run") == 4 and stale.count("stale artifact") == 1  # the old tail


def test_refused_pipeline_is_one_line_and_runs_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "raw.csv").write_text("1 2")
    proc = cli("pipeline", "run", "flow.py:broken", "-p", "raw=raw.csv", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: step 'prepare' declares no output 'middle' (declared: head)"
    assert cli("pipeline", "runs").stdout.strip() == "no pipeline runs yet: try `provgraph demo`"
    bad = cli("pipeline", "run", "flow.py:flow", "-p", "raw=raw.csv", "--engine", "airflow", ok=False)
    assert bad.stderr.strip() == "error: engine 'airflow' is not available here (engines: local, kubernetes, kfp)"
    no_kfp = cli("pipeline", "run", "flow.py:flow", "-p", "raw=raw.csv", "--engine", "kfp", ok=False)
    assert no_kfp.stderr.strip() == "error: the kfp engine needs the Kubeflow Pipelines SDK: pip install kfp"
    no_image = cli("pipeline", "run", "flow.py:flow", "-p", "raw=raw.csv", "--engine", "kubernetes", ok=False)
    assert no_image.stderr.strip() == "error: the kubernetes engine needs the steps' container image: pass --image"
    args = ("pipeline", "run", "flow.py:flow", "-p", "raw=raw.csv", "--engine", "kubernetes", "--image", "r/i:1")
    no_kafka = cli(*args, ok=False)
    assert (no_kafka.returncode, no_kafka.stderr) == (1, f"error: {KAFKA_UNSET}\n")
    assert cli("pipeline", "runs").stdout.strip() == "no pipeline runs yet: try `provgraph demo`"


def test_hyperparameter_run_from_the_cli(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "h.py").write_text(
        "def fit(ctx, lr: float = 0.1):\n"
        '    ctx.log_artifact("m", body=str(lr))\n'
        '    return {"score": -abs(lr - 0.01)}\n'
    )
    out = cli("run", "h.py:fit", "-H", "lr=[0.1,0.01]", "--selector", "max.score").stdout
    assert "result  best_iteration = 2" in out
    best = r'"iteration": 2, "run_id": "[0-9a-f-]{36}", "state": "COMPLETE", "lr": 0.01, "score": -0.0, "best": true'
    assert re.search(best, out.replace("\n", "")), out  # rich wraps the long line
    assert "output  m -> store://default/m@sha256:" in out


SIGNALLED = """
import os
import signal
import subprocess
import sys

from provgraph import Context
from provgraph.pipelines import pipeline, step


def shell(ctx: Context) -> dict:
    for _ in range(20):  # each child's end is a SIGCHLD in the step's process
        subprocess.run(["true"], check=True)
    os.kill(os.getpid(), signal.SIGWINCH)  # any signal the step server listened for
    return {"ran": 20}


def quits(ctx: Context) -> dict:
    sys.exit(3)


@pipeline
def flow():
    step(shell)
    step(shell, name="again")


@pipeline
def quitting():
    step(quits)
"""


def test_signals_in_a_step_leave_the_event_log_whole(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A step's process is forked from the step server, which wakes on SIGCHLD through a pipe: the
    step must not inherit that wake-up, or every signal it receives writes a byte into whatever
    file took the pipe's descriptor (the event log's WAL), and the next process drops the WAL."""
    (tmp_path / "flow.py").write_text(SIGNALLED)
    cli("pipeline", "run", "flow.py:flow")
    runs = [json.loads(line) for line in cli("runs", "--json").stdout.splitlines()]  # a new process reads the log
    assert sorted((r["job_name"], r["state"]) for r in runs) == [
        ("again", "COMPLETE"),
        ("flow", "COMPLETE"),
        ("shell", "COMPLETE"),
    ]
    assert cli("doctor").stdout.startswith("every run is complete")
    quit = cli("pipeline", "run", "flow.py:quitting", ok=False)  # the step's own FAIL, with its reason
    assert quit.returncode == 1
    assert "FAIL     quits" in quit.stdout and "run ended by SystemExit(3) before returning" in quit.stdout


def test_a_flow_imports_its_siblings_and_its_mistakes_are_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The layout docs/PIPELINES.md shows (flow.py importing steps.py beside it) runs from the
    `provgraph` command as from `python`; a pipeline function that raises, or combines conditions
    with `and`, is refused in one line before anything runs."""
    (tmp_path / "steps.py").write_text(
        "def score(ctx) -> dict:\n    return {'acc': 0.1}\n\ndef deploy(ctx) -> dict:\n    return {}\n"
    )
    (tmp_path / "flow.py").write_text(
        "from provgraph.pipelines import pipeline, step\nfrom steps import deploy, score\n\n"
        "@pipeline\ndef flow():\n    step(score)\n\n"
        "@pipeline\ndef raising():\n    raise RuntimeError('config missing')\n\n"
        "@pipeline\ndef both():\n    s = step(score)\n"
        "    step(deploy, when=(s.results['acc'] > 0.9) and (s.results['acc'] < 2))\n"
    )
    assert "COMPLETE score" in cli("pipeline", "run", "flow.py:flow").stdout
    [piped] = [r for r in map(json.loads, cli("runs", "--json").stdout.splitlines()) if r["job_name"] == "flow"]
    assert piped["results"]["pipeline"] == f"{tmp_path}/flow.py:flow"  # a rerun from elsewhere finds this file
    raising = cli("pipeline", "run", "flow.py:raising", ok=False)
    assert (raising.returncode, raising.stderr) == (
        1,
        "error: pipeline 'raising' failed while building its steps: RuntimeError: config missing\n",
    )
    both = cli("pipeline", "run", "flow.py:both", ok=False)
    assert both.returncode == 1 and both.stderr.startswith(
        "error: condition score.results['acc'] > 0.9 has no truth value while the pipeline is built"
    )
    assert both.stderr.count("\n") == 1


SLOW = """
import time
from pathlib import Path

from provgraph import Context
from provgraph.pipelines import pipeline, step


def slow(ctx: Context, marker: str) -> dict:
    Path(marker).write_text("started")
    time.sleep(60)
    return {"slept": 60}


def after(ctx: Context) -> dict:
    return {}


@pipeline
def flow(marker: str):
    s = step(slow, params={"marker": marker})
    step(after).after(s)
"""


def test_sigterm_to_the_pipeline_ends_its_steps_and_the_run_can_be_rerun(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`timeout`, systemd or an IDE's stop button signal the pipeline's process alone: its running
    steps are terminated too (each records ABORT) instead of being waited for, and the ABORTed
    pipeline run keeps what a rerun needs."""
    (tmp_path / "flow.py").write_text(SLOW)
    marker = tmp_path / "started"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(tmp_path / "home"), NO_COLOR="1")
    proc = subprocess.Popen(
        [str(test_cli.BIN), "pipeline", "run", "flow.py:flow", "-p", f"marker={marker}"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            if marker.exists():
                break
            time.sleep(0.05)
        assert marker.exists(), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)  # the step sleeps 60 s: waiting for it would time out here
    finally:
        proc.kill()
    runs = {r["job_name"]: r for r in map(json.loads, cli("runs", "--json").stdout.splitlines())}
    assert runs["flow"]["state"] == "ABORT" and runs["slow"]["state"] == "ABORT"
    assert "after" not in runs
    assert runs["flow"]["results"]["pipeline"] == f"{tmp_path}/flow.py:flow"
    plan = cli("pipeline", "rerun", runs["flow"]["run_id"], "--plan").stdout
    assert "run   slow" in plan, plan
