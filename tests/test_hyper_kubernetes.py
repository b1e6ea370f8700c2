# ruff: noqa: F811 - the launcher tests' fixtures, imported below, are the tests' parameters
"""Hyperparameter runs on the kubernetes runtime: one Job per child through the launcher, the parent
ended by the pipeline controller as a local hyperparameter run ends (real Kafka, KWOK; each Job's
pod command executed locally, as in the launcher tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph.graph.views import RunView
from provgraph.pipelines.remote import step_run_id
from provgraph.services.launcher import job_name
from tests import pipeline_steps
from tests.helpers import wait_for
from tests.test_launcher import (  # noqa: F401 - fixtures
    IMAGE,
    Cluster,
    Lineage,
    cluster,
    launcher,
    lineage,
    lsettings,
    namespace,
)
from tests.test_pipeline_controller import Pods, controller

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.slow]

GRID: dict[str, list[Any]] = {"lr": [0.05, 0.2], "depth": [1, 3]}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt"
    path.write_text("1 2 3 4")
    return path


def ended(pods: Pods, lineage: Lineage, run_id: str) -> RunView:
    def probe() -> RunView | None:
        pods.run_new()
        lineage.catch_up()
        run = lineage.store.run(run_id)
        return run if run is not None and run.state.is_terminal else None

    return wait_for("the hyperparameter run to end", probe, timeout=120)


def table(run: RunView | pg.RunResult) -> list[tuple[Any, ...]]:
    """The iteration table without run ids (they differ between two runs)."""
    rows = run.results["iterations"]
    return [(r["iteration"], r["lr"], r["depth"], r["state"], r.get("score"), r["best"]) for r in rows]


def test_a_grid_makes_one_job_per_child_and_the_controller_promotes_the_best_as_locally(
    lsettings: pg.Settings,
    cluster: Cluster,
    namespace: str,
    lineage: Lineage,
    data: Path,
    tmp_path: Path,
    settings: pg.Settings,
) -> None:
    pods = Pods(cluster, namespace, tmp_path / "pods")
    backend = pg.Backend(lsettings)
    with launcher(lsettings), controller(lsettings):
        try:
            submitted = pg.run(
                pipeline_steps.fit,
                inputs={"train_set": str(data)},
                hyperparams=GRID,
                selector="max.score",
                runtime="kubernetes",
                image=IMAGE,
                backend=backend,
            )
        finally:
            backend.close()
        assert (submitted.state, submitted.job) == ("REQUESTED", "fit")
        run = ended(pods, lineage, submitted.run_id)

    assert (run.state, run.error) == ("COMPLETE", None)
    assert run.runtime["kind"] == "hyper" and run.runtime["image"] == IMAGE
    assert run.params == {"hyperparams": GRID, "strategy": "grid", "selector": "max.score"}
    # one Job per child, named by the child's derived run id
    assert sorted(pods.executed) == sorted(job_name(step_run_id(run.run_id, f"fit-{i}", 1)) for i in range(1, 5))
    children = {c.job_name: lineage.store.run(c.run_id) for c in lineage.store.children(run.run_id)}
    assert sorted(children) == ["fit-1", "fit-2", "fit-3", "fit-4"]
    assert all(c is not None and c.parent_run_id == run.run_id for c in children.values())
    assert {n: (c.state, c.runtime["kind"], c.params) for n, c in children.items() if c is not None} == {
        "fit-1": ("COMPLETE", "kubernetes", {"lr": 0.05, "depth": 1}),
        "fit-2": ("FAIL", "kubernetes", {"lr": 0.05, "depth": 3}),
        "fit-3": ("COMPLETE", "kubernetes", {"lr": 0.2, "depth": 1}),
        "fit-4": ("COMPLETE", "kubernetes", {"lr": 0.2, "depth": 3}),
    }
    # the failed child is in the table, not selected; the best completed one is
    assert table(run) == [
        (1, 0.05, 1, "COMPLETE", 1.0, False),
        (2, 0.05, 3, "FAIL", None, False),
        (3, 0.2, 1, "COMPLETE", 0.85, False),
        (4, 0.2, 3, "COMPLETE", 2.85, True),
    ]
    best = children["fit-4"]
    assert best is not None
    assert run.results["best_run_id"] == best.run_id and run.results["best_iteration"] == 4
    assert run.results["score"] == 2.85
    assert [(o.name, o.version, o.kind) for o in run.outputs] == [(o.name, o.version, o.kind) for o in best.outputs]
    assert [o.name for o in best.outputs] == ["model"]

    # a local hyperparameter run of the same grid records the same table and promotes the same version
    local = pg.Backend(settings.model_copy(update={"home": tmp_path / "local"}))
    try:
        here = pg.run(
            pipeline_steps.fit, inputs={"train_set": str(data)}, hyperparams=GRID, selector="max.score", backend=local
        )
        assert table(here) == table(run)
        assert here.outputs == {"model": f"store://default/model@{best.outputs[0].version}"}
    finally:
        local.close()


def test_the_cli_submits_a_hyperparameter_run_to_kubernetes(
    lsettings: pg.Settings, cluster: Cluster, namespace: str, lineage: Lineage, data: Path, tmp_path: Path
) -> None:
    (tmp_path / "h.py").write_text(
        "def fit(ctx, lr: float = 0.1):\n"
        '    ctx.log_artifact("m", body=str(lr))\n'
        '    return {"score": -abs(lr - 0.01)}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env |= {
        "PROVGRAPH_HOME": str(tmp_path / "cli-home"),
        "PROVGRAPH_TRANSPORT": "kafka",
        "PROVGRAPH_KAFKA_BOOTSTRAP_SERVERS": lsettings.kafka_bootstrap_servers or "",
        "PROVGRAPH_KAFKA_TOPIC_PREFIX": lsettings.kafka_topic_prefix,
        "PROVGRAPH_ARTIFACT_STORE": lsettings.artifact_url,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    pods = Pods(cluster, namespace, tmp_path / "pods")
    cli = Path(sys.executable).parent / "provgraph"
    with launcher(lsettings), controller(lsettings):
        args = ["run", "h.py:fit", "-H", "lr=[0.1,0.01]", "--selector", "max.score", "--runtime", "kubernetes"]
        proc = subprocess.run(
            [str(cli), *args, "--image", IMAGE, "--json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        import json

        submitted = json.loads(proc.stdout)
        assert (submitted["state"], submitted["job"]) == ("REQUESTED", "fit")
        run = ended(pods, lineage, submitted["run_id"])
    assert run.state == "COMPLETE" and len(pods.executed) == 2
    assert [(r["lr"], r["state"], r["best"]) for r in run.results["iterations"]] == [
        (0.1, "COMPLETE", False),
        (0.01, "COMPLETE", True),
    ]
    assert [(o.name, o.binding) for o in run.outputs] == [("m", "m")]
