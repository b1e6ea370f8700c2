"""The kfp engine with the real Kubeflow Pipelines SDK: `pipeline compile` writes a KFP v2 package
that kfp loads back with the DAG and provgraph commands, and `pipeline run --engine kfp` (the
package run by kfp.local's subprocess runner) records the same graph as the local engine.

kfp lives in a cached venv (scripts/kfp-venv.sh, under PROVGRAPH_INFRA_DIR) with provgraph; the
CLI runs there with this checkout's source first on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import provgraph
from provgraph import Backend
from provgraph.events.model import RunState
from provgraph.events.settings import load_settings
from provgraph.graph.views import RunView
from provgraph.pipelines import run_pipeline
from tests import pipeline_steps

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "kfp-venv.sh"

LOAD_BACK = """
import json, sys
from google.protobuf import json_format
from kfp.components import load_component_from_file
spec = json_format.MessageToDict(load_component_from_file(sys.argv[1]).pipeline_spec)
print(json.dumps(spec))
"""


def kfp_python() -> str:
    """The venv's python, building the venv first when it is missing (idempotent)."""
    proc = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"{SCRIPT.name} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


def in_kfp_venv(python: str, args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    source = Path(provgraph.__file__).parent.parent  # this checkout's package tree (strict editable install)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env |= {"PYTHONPATH": str(source), "PROVGRAPH_HOME": str(home), "PYTHONWARNINGS": "ignore::FutureWarning"}
    proc = subprocess.run([python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _graph_of(backend: Backend, run_id: str) -> dict[str, Any]:
    """What must match between engines, read through the store's query contract."""
    graph = backend.graph()
    parent = graph.run(run_id)
    assert parent is not None

    def ref(run: RunView) -> dict[str, Any]:
        return {
            "state": run.state,
            "code_hash": run.code_hash,
            "params": run.params,
            "inputs": sorted((i.binding, i.namespace, i.name, i.version) for i in run.inputs),
            "outputs": sorted((o.binding, o.namespace, o.name, o.version) for o in run.outputs),
            "kind": run.runtime.get("kind"),
        }

    children = [graph.run(c.run_id) for c in graph.children(run_id)]
    assert all(c is not None and c.parent_run_id == run_id for c in children)
    steps = [{k: v for k, v in s.items() if k not in ("run_id", "duration_s")} for s in parent.results["steps"]]
    return {
        "pipeline": (parent.job_name, parent.state, parent.code_hash, parent.params, parent.runtime.get("kind")),
        "steps": steps,
        "children": {c.job_name: ref(c) for c in children if c is not None},
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kfp_package_compiles_and_runs_with_kfp_local_like_the_local_engine(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = kfp_python()
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(pipeline_steps.__file__, work / "flow.py")
    (work / "raw.csv").write_text("1 2 3 4 5 6 7")
    kfp_home = tmp_path / "kfp-home"

    # compile: a KFP v2 package kfp loads back, one task per step wired as the provgraph DAG
    raw = f"raw={work / 'raw.csv'}"
    in_kfp_venv(
        python,
        ["-m", "provgraph.cli", "pipeline", "compile", "flow.py:three", "-p", raw, "-o", "three.yaml"],
        work,
        kfp_home,
    )
    spec = json.loads(in_kfp_venv(python, ["-c", LOAD_BACK, "three.yaml"], work, kfp_home).stdout)
    assert spec["pipelineInfo"]["name"] == "three"
    tasks = spec["root"]["dag"]["tasks"]
    names = {t: task["taskInfo"]["name"] for t, task in tasks.items()}
    assert sorted(names.values()) == ["evaluate", "finish", "prepare", "start", "train"]
    by_name = {names[t]: task for t, task in tasks.items()}
    deps = {n: sorted(names[d] for d in task.get("dependentTasks", [])) for n, task in by_name.items()}
    assert deps == {
        "start": [],
        "prepare": ["start"],
        "train": ["prepare", "start"],
        "evaluate": ["prepare", "start", "train"],
        "finish": ["evaluate", "prepare", "start", "train"],
    }
    params = {n: task["inputs"]["parameters"]["name"]["runtimeValue"]["constant"] for n, task in by_name.items()
              if n not in ("start", "finish")}  # fmt: skip
    assert params == {"prepare": "prepare", "train": "train", "evaluate": "evaluate"}
    executors = spec["deploymentSpec"]["executors"]
    for name, task in by_name.items():
        container = executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]]["container"]
        program = " ".join(container["command"] + container.get("args", []))
        assert "from provgraph.pipelines.kfp_steps import" in program, (name, program)
        assert "pip install" not in program  # the image brings provgraph; nothing is installed at run time

    # run: kfp.local's subprocess runner executes the package; every step is a tracked child run
    run = ["-m", "provgraph.cli", "pipeline", "run", "flow.py:three", "-p", raw, "--engine", "kfp"]
    out = in_kfp_venv(python, run, work, kfp_home).stdout
    assert "(3 executed, 0 reused from cache)" in out, out
    kfp_run = out.split("pipeline run ")[-1].split()[0]

    local = run_pipeline(f"{work / 'flow.py'}:three", {"raw": str(work / "raw.csv")}, backend=backend)
    assert local.state == RunState.COMPLETE
    monkeypatch.setenv("PROVGRAPH_HOME", str(kfp_home))
    kfp_backend = Backend(load_settings())
    try:
        from_kfp = _graph_of(kfp_backend, kfp_run)
    finally:
        kfp_backend.close()
    from_local = _graph_of(backend, local.run_id)
    assert from_kfp == from_local
    assert from_kfp["pipeline"][1] == RunState.COMPLETE and from_kfp["pipeline"][4] == "pipeline"
    assert sorted(from_kfp["children"]) == ["evaluate", "prepare", "train"]
    assert from_kfp["children"]["train"]["inputs"][0][3].startswith("sha256:")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_hub_step_runs_in_a_kfp_task_as_on_the_local_engine(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provgraph._hub import add_source
    from tests.hubkit import TABLE, build_hub

    python = kfp_python()
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(pipeline_steps.__file__, work / "flow.py")
    (work / "table.csv").write_bytes(TABLE)
    build_hub(str(tmp_path / "hub"))
    kfp_home = tmp_path / "kfp-home"
    add_source(backend.settings, "local", str(tmp_path / "hub"))
    add_source(backend.settings.model_copy(update={"home": kfp_home}), "local", str(tmp_path / "hub"))

    table = f"table={work / 'table.csv'}"
    run = ["-m", "provgraph.cli", "pipeline", "run", "flow.py:described", "-p", table, "--engine", "kfp"]
    out = in_kfp_venv(python, run, work, kfp_home).stdout
    assert "(2 executed, 0 reused from cache)" in out, out
    kfp_run = out.split("pipeline run ")[-1].split()[0]

    local = run_pipeline(f"{work / 'flow.py'}:described", {"table": str(work / "table.csv")}, backend=backend)
    assert local.state == RunState.COMPLETE
    monkeypatch.setenv("PROVGRAPH_HOME", str(kfp_home))
    kfp_backend = Backend(load_settings())
    try:
        from_kfp = _graph_of(kfp_backend, kfp_run)
        [hubbed] = [c for c in kfp_backend.graph().children(kfp_run) if c.job_name == "describe"]
    finally:
        kfp_backend.close()
    assert from_kfp == _graph_of(backend, local.run_id)
    assert sorted(from_kfp["children"]) == ["describe", "lines"]
    assert hubbed.runtime["function"]["name"] == "describe"


KFP_NATIVE = """
from kfp import dsl


@dsl.component
def make_data(n: int) -> int:
    return n * 2


@dsl.pipeline
def kflow(n: int = 1):
    make_data(n=n)
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_kfp_dsl_pipeline_or_component_is_refused_in_one_line(tmp_path: Path) -> None:
    """provgraph runs its own DSL (compiled to KFP with --engine kfp), not kfp.dsl objects: naming one
    says so in one line (was: an internal AttributeError, or "cannot read the source of 'handler'")."""
    python = kfp_python()
    (tmp_path / "kflow.py").write_text(KFP_NATIVE)
    source = Path(provgraph.__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env |= {"PYTHONPATH": str(source), "PROVGRAPH_HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "ignore"}
    for args in (["pipeline", "run", "kflow.py:kflow"], ["run", "kflow.py:make_data", "-p", "n=1"]):
        proc = subprocess.run(
            [python, "-m", "provgraph.cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and "is a Kubeflow Pipelines" in proc.stderr, proc.stderr


DYING = """
import os

from provgraph.pipelines import pipeline, step


def dies(context) -> dict:
    os._exit(3)


def after(context) -> dict:
    return {}


@pipeline
def dying():
    d = step(dies, retries=1)
    step(after).after(d)
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_step_that_dies_hard_in_a_kfp_task_is_retried_and_the_pipeline_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KFP task runs its step in a process of its own, as the local engine does: `os._exit` in the
    handler is that process's end (recorded, retried, its dependants SKIPPED), and the pipeline run
    ends FAIL instead of staying START with its task gone."""
    python = kfp_python()
    (tmp_path / "flow.py").write_text(DYING)
    kfp_home = tmp_path / "kfp-home"
    source = Path(provgraph.__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env |= {"PYTHONPATH": str(source), "PROVGRAPH_HOME": str(kfp_home), "PYTHONWARNINGS": "ignore"}
    args = [python, "-m", "provgraph.cli", "pipeline", "run", "flow.py:dying", "--engine", "kfp"]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    monkeypatch.setenv("PROVGRAPH_HOME", str(kfp_home))
    backend = Backend(load_settings())
    try:
        runs = backend.graph().runs()
        pipe = next(r for r in runs if r.job_name == "dying")
        assert pipe.state == RunState.FAIL
        steps = {s["name"]: s for s in pipe.results["steps"]}
        assert steps["dies"]["attempts"] == 2 and steps["after"]["state"] == "SKIPPED"
        assert sorted(r.state for r in runs if r.job_name == "dies") == [RunState.FAIL, RunState.FAIL]
    finally:
        backend.close()
