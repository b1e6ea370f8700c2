"""The demo's pipeline: prepare data -> train -> evaluate, in plain Python (no extra packages).

A nearest-centroid classifier on a small synthetic two-class dataset; deterministic, so its model
run reproduces bit for bit.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random

from provgraph import Context, DataItem, pipelines


def make_raw_csv(rows: int = 200, seed: int = 7) -> bytes:
    """The demo's 'raw' dataset: two Gaussian blobs with a little label noise."""
    rng = random.Random(seed)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["x", "y", "label"])
    for i in range(rows):
        label = i % 2
        cx, cy = (1.0, 1.0) if label else (-1.0, -1.0)
        w.writerow([round(rng.gauss(cx, 0.9), 4), round(rng.gauss(cy, 0.9), 4), label])
    return out.getvalue().encode()


def _rows(data: bytes) -> list[tuple[float, float, int]]:
    reader = csv.DictReader(io.StringIO(data.decode()))
    return [(float(r["x"]), float(r["y"]), int(r["label"])) for r in reader]


def _table(rows: list[tuple[float, float, int]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["x", "y", "label"])
    w.writerows(rows)
    return out.getvalue().encode()


def prepare(ctx: Context, raw: DataItem, test_fraction: float = 0.25) -> dict[str, int]:
    """Split the raw data into train and test sets (every k-th row is a test row: deterministic)."""
    rows = _rows(raw.get())
    every = max(2, round(1 / test_fraction))
    test = [r for i, r in enumerate(rows) if i % every == 0]
    train = [r for i, r in enumerate(rows) if i % every != 0]
    ctx.log_dataset("train_set", _table(train))
    ctx.log_dataset("test_set", _table(test))
    return {"train_rows": len(train), "test_rows": len(test)}


def train(ctx: Context, train_set: DataItem, shrink: float = 0.0) -> dict[str, float]:
    """Fit one centroid per class; `shrink` pulls centroids toward the origin (a toy regulariser)."""
    rows = _rows(train_set.get())
    model: dict[str, list[float]] = {}
    for label in (0, 1):
        pts = [(x, y) for x, y, lab in rows if lab == label]
        cx = sum(p[0] for p in pts) / len(pts) * (1 - shrink)
        cy = sum(p[1] for p in pts) / len(pts) * (1 - shrink)
        model[str(label)] = [round(cx, 6), round(cy, 6)]
    for step, frac in enumerate((0.25, 0.5, 1.0), start=1):
        part = rows[: max(1, int(len(rows) * frac))]
        ctx.log_metric("train_accuracy", _accuracy(model, part), step=step)
    ctx.log_model("model", body=json.dumps(model, sort_keys=True).encode(), framework="nearest-centroid")
    return {"train_accuracy": _accuracy(model, rows)}


def evaluate(ctx: Context, model: DataItem, test_set: DataItem) -> dict[str, float]:
    centroids = json.loads(model.get())
    rows = _rows(test_set.get())
    accuracy = _accuracy(centroids, rows)
    report = {"accuracy": accuracy, "rows": len(rows)}
    ctx.log_artifact("report", body=json.dumps(report, sort_keys=True), format="json")
    return {"accuracy": accuracy}


def _accuracy(model: dict[str, list[float]], rows: list[tuple[float, float, int]]) -> float:
    def predict(x: float, y: float) -> int:
        return min((0, 1), key=lambda lab: math.dist((x, y), model[str(lab)]))

    hits = sum(1 for x, y, label in rows if predict(x, y) == label)
    return round(hits / len(rows), 4)


@pipelines.pipeline
def demo_pipeline(raw: str, shrink: float = 0.1) -> None:
    """prepare -> train -> evaluate as a pipeline: each step a tracked run, reused when unchanged."""
    prep = pipelines.step(prepare, inputs={"raw": raw}, outputs=["train_set", "test_set"])
    model = pipelines.step(
        train, params={"shrink": shrink}, inputs={"train_set": prep.outputs["train_set"]}, outputs=["model"]
    )
    pipelines.step(
        evaluate, inputs={"model": model.outputs["model"], "test_set": prep.outputs["test_set"]}, outputs=["report"]
    )


def change_a_test_row(data: bytes) -> bytes:
    """The raw data with its first row (a test row) changed: the train set stays the same."""
    header, first, *rest = data.decode().splitlines()
    x, y, label = first.split(",")
    return "\n".join([header, f"{float(x) + 0.5},{y},{label}", *rest, ""]).encode()
