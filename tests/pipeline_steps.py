"""Step handlers and pipelines for tests/test_pipelines.py: a module with few imports, because each
step's process loads it from its code snapshot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from provgraph import Context, DataItem
from provgraph.pipelines import fan_out, pipeline, step


def prepare(ctx: Context, raw: DataItem, scale: int = 1) -> dict[str, int]:
    rows = [int(x) * scale for x in raw.get().decode().split()]
    ctx.log_dataset("train_set", " ".join(str(r) for r in rows[::2]).encode())
    ctx.log_dataset("test_set", " ".join(str(r) for r in rows[1::2]).encode())
    return {"rows": len(rows)}


def train(ctx: Context, train_set: DataItem, lr: float = 0.1) -> dict[str, float]:
    values = [int(x) for x in train_set.get().decode().split()]
    weight = round(sum(values) * lr, 6)
    ctx.log_model("model", body=json.dumps({"w": weight}).encode())
    ctx.log_metric("accuracy", 1 / (1 + abs(lr - 0.05)))
    return {"weight": weight}


def evaluate(ctx: Context, model: DataItem, test_set: DataItem) -> dict[str, float]:
    w = json.loads(model.get())["w"]
    score = round(w / (1 + len(test_set.get())), 6)
    ctx.log_artifact("report", body=json.dumps({"score": score}))
    return {"score": score}


def boom(ctx: Context, model: DataItem) -> None:
    """Fails unless the file named by $PIPELINE_TEST_FIX exists (a failure a rerun can resume from)."""
    fix = os.environ.get("PIPELINE_TEST_FIX", "")
    if not (fix and os.path.exists(fix)):
        raise RuntimeError("boom")
    ctx.log_artifact("fixed", body=model.get())


def add(ctx: Context, x: DataItem, k: int = 1) -> dict[str, Any]:
    n = int((x.get().split() or [b"0"])[0]) + k
    ctx.log_artifact("y", body=str(n))
    return {"n": n}


def subtract(ctx: Context, x: DataItem, k: int = 1) -> dict[str, Any]:
    """`add`'s twin in the same file: same signature, other outputs (the cache must tell them apart)."""
    n = int((x.get().split() or [b"0"])[0]) - k
    ctx.log_artifact("y", body=str(n))
    return {"n": n}


def maybe_add(ctx: Context, x: DataItem, extra: DataItem | None = None) -> dict[str, Any]:
    """An optional input: None when the pipeline passes none."""
    n = int(x.get().split()[0]) + (int(extra.get().split()[0]) if extra is not None else 0)
    return {"n": n}


@pipeline
def optional(seed: str, extra: str | None = None) -> None:
    step(maybe_add, inputs={"x": seed, "extra": extra})


@pipeline
def grid(seed: str) -> None:
    """Nested fan-outs: one per outer value, each over the inner ones (kfp's nested ParallelFor)."""
    for k in (1, 2):
        fan_out(add, over=[10 * k, 20 * k], param="k", inputs={"x": seed}, outputs=["y"])


@pipeline
def either(seed: str, op: str = "add") -> None:
    """One step named `op` calling either handler of this file: a step or job name says nothing of
    which function ran."""
    step(add if op == "add" else subtract, name="op", inputs={"x": seed}, outputs=["y"])


@pipeline
def three(raw: str, lr: float = 0.1) -> None:
    prep = step(prepare, inputs={"raw": raw}, outputs=["train_set", "test_set"])
    model = step(train, params={"lr": lr}, inputs={"train_set": prep.outputs["train_set"]}, outputs=["model"])
    step(evaluate, inputs={"model": model.outputs["model"], "test_set": prep.outputs["test_set"]})


@pipeline
def failing(raw: str) -> None:
    prep = step(prepare, inputs={"raw": raw}, outputs=["train_set", "test_set"])
    model = step(train, inputs={"train_set": prep.outputs["train_set"]}, outputs=["model"])
    broken = step(boom, inputs={"model": model.outputs["model"]}, outputs=["fixed"])
    step(evaluate, inputs={"model": broken.outputs["fixed"], "test_set": prep.outputs["test_set"]})


@pipeline
def fanned(raw: str) -> None:
    prep = step(prepare, inputs={"raw": raw}, outputs=["train_set", "test_set"])
    models = fan_out(
        train, over=[0.01, 0.05, 0.2], param="lr", inputs={"train_set": prep.outputs["train_set"]}, outputs=["model"]
    )
    for i, m in enumerate(models):
        step(
            evaluate,
            name=f"evaluate-{i}",
            inputs={"model": m.outputs["model"], "test_set": prep.outputs["test_set"]},
            when=m.results["weight"] > 0,
        )


@pipeline
def chain(seed: str, length: int = 20) -> None:
    """A 20-step DAG: a chain of `add` steps with a side branch every 5th step."""
    prev = step(add, name="add-0", inputs={"x": seed}, outputs=["y"])
    for i in range(1, length):
        src = prev.outputs["y"]
        prev = step(add, name=f"add-{i}", params={"k": i}, inputs={"x": src}, outputs=["y"])


def flaky(ctx: Context, x: DataItem, marker: str) -> dict[str, int]:
    """Fails on its first attempt (counted in the file `marker`), then succeeds."""
    path = Path(marker)
    attempts = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempts))
    if attempts < 2:
        raise RuntimeError(f"attempt {attempts} fails")
    ctx.log_artifact("y", body=x.get())
    return {"attempts": attempts}


def rendezvous(ctx: Context, folder: str, me: int, parties: int = 3) -> dict[str, int]:
    """Waits until `parties` steps have arrived: completes only when they run at the same time."""
    import time

    (Path(folder) / f"arrived-{me}").touch()
    deadline = time.monotonic() + 30
    while len([n for n in os.listdir(folder) if n.startswith("arrived-")]) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the other steps never ran alongside this one {os.listdir(folder)}")
        time.sleep(0.01)
    return {"me": me}


@pipeline
def retried(seed: str, marker: str) -> None:
    step(flaky, params={"marker": marker}, inputs={"x": seed}, outputs=["y"], retries=1)


@pipeline
def parallel(folder: str) -> None:
    fan_out(rendezvous, over=[0, 1, 2], param="me", params={"folder": folder}, cache=False)


@pipeline
def conditional(raw: str, threshold: float = 0.0) -> None:
    prep = step(prepare, inputs={"raw": raw}, outputs=["train_set", "test_set"])
    model = step(train, inputs={"train_set": prep.outputs["train_set"]}, outputs=["model"])
    scored = step(
        evaluate,
        inputs={"model": model.outputs["model"], "test_set": prep.outputs["test_set"]},
        when=model.results["weight"] > threshold,
    )
    step(add, inputs={"x": raw}, name="after-evaluate").after(scored)


def fit(ctx: Context, train_set: DataItem, lr: float = 0.1, depth: int = 1) -> dict[str, float]:
    """A hyperparameter child: the score rises with depth and peaks at lr 0.05; the combination
    that would score best of all (depth 3, lr 0.05) diverges and fails."""
    if depth == 3 and lr == 0.05:
        raise RuntimeError("diverged")
    score = round(depth - abs(lr - 0.05), 6)
    ctx.log_model("model", body=json.dumps({"lr": lr, "depth": depth, "n": len(train_set.get())}).encode())
    ctx.log_metric("loss", 1 / (1 + score))
    return {"score": score}


def lines(ctx: Context, summary: DataItem) -> dict[str, int]:
    n = len(summary.get().decode().splitlines())
    ctx.log_artifact("counted", body=str(n))
    return {"lines": n}


@pipeline
def described(table: str) -> None:
    """A hub step (tests/hubkit.py's `describe`) between a file and a step reading its output."""
    d = step("hub://describe", params={"name": "raw", "sample": 1}, inputs={"table": table}, outputs=["raw-describe"])
    step(lines, inputs={"summary": d.outputs["raw-describe"]})
