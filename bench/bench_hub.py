"""`hub://` resolution and run overhead against the same handler run from a local file.

A hub in MLRun's source layout in a local folder (`functions/src/<name>/item.yaml` + source);
embedded default. Median of N (50) runs each, after warm-up: resolution alone (read and validate
item.yaml, read and hash the source), a whole `hub://` run, and a `file.py:function` run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

import provgraph as pg
from provgraph._hub import add_source, resolve

N = int(os.environ.get("BENCH_N", "50"))
SOURCE = "def add(context, a: int = 1, b: int = 2):\n    return {'sum': a + b}\n"


def medians_ms(*fns: Callable[[], object]) -> list[float]:
    """Median time of each function, calls interleaved so machine noise hits them alike."""
    times: list[list[float]] = [[] for _ in fns]
    for i in range(N + 5):
        for fn, series in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            if i >= 5:  # warm-up excluded
                series.append(time.perf_counter() - t0)
    return [statistics.median(series) * 1e3 for series in times]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        item = root / "hub/functions/src/add"
        item.mkdir(parents=True)
        (item / "add.py").write_text(SOURCE)
        spec = {"filename": "add.py", "handler": "add", "kind": "job", "requirements": [], "image": "mlrun/mlrun"}
        body = {"name": "add", "version": "1.0.0", "description": "adds", "categories": ["utilities"], "spec": spec}
        (item / "item.yaml").write_text(yaml.safe_dump(body))
        (root / "add.py").write_text(SOURCE)
        settings = pg.load_settings(home=root / "home")
        add_source(settings, "local", str(root / "hub"))
        backend = pg.Backend(settings)
        resolving, hub_run, file_run = medians_ms(
            lambda: resolve("hub://add", settings),
            lambda: pg.run("hub://add", backend=backend).raise_for_state(),
            lambda: pg.run(f"{root}/add.py:add", backend=backend).raise_for_state(),
        )
        backend.close()
    print(f"hub:// resolution            median {resolving:.2f} ms  (n={N})")
    print(f"hub:// run (resolve + run)    median {hub_run:.2f} ms")
    print(f"file.py:function run          median {file_run:.2f} ms")
    print(f"hub:// overhead over a file   median {hub_run - file_run:.2f} ms")


if __name__ == "__main__":
    main()
