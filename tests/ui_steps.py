"""Handlers and a pipeline for tests/test_ui_registry_browser.py: few imports, because each pipeline
step's process loads this module from its code snapshot."""

from __future__ import annotations

import time
from pathlib import Path

from provgraph import Context, DataItem
from provgraph.pipelines import pipeline, step


def curve(ctx: Context) -> None:
    """A metric at three steps (what the run page charts)."""
    for i, loss in enumerate((0.9, 0.5, 0.25)):
        ctx.log_metric("loss", loss, step=i)


def train(ctx: Context, body: str = "w1") -> None:
    ctx.log_model("model", body=body.encode(), framework="sklearn", metrics={"accuracy": 0.91}, parameters={"depth": 3})


def seed(ctx: Context, raw: DataItem) -> None:
    ctx.log_artifact("copy", body=raw.get())


def gated(ctx: Context, copy: DataItem, gate: str) -> dict[str, int]:
    """Runs until the file `gate` exists, so a test sees this step RUNNING, then COMPLETE."""
    deadline = time.monotonic() + 120
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {gate}")
        time.sleep(0.05)
    return {"size": len(copy.get())}


@pipeline
def gated_pair(raw: str, gate: str) -> None:
    first = step(seed, inputs={"raw": raw}, outputs=["copy"])
    step(gated, params={"gate": gate}, inputs={"copy": first.outputs["copy"]})
