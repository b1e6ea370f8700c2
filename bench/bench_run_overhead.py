"""(a) Overhead of a tracked local run: trivial handler, one 1 MB input, one 1 MB output.

Median over N tracked runs minus the median of the same work done plainly (read, write). Embedded
default (SQLite log, local artifact store). Target: <= 5 ms.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import provgraph as pg

N = int(os.environ.get("BENCH_N", "200"))


def handler(ctx: pg.Context, data: pg.DataItem, i: int) -> None:
    body = data.get()
    ctx.log_artifact("out", body=body[::-1] + i.to_bytes(4, "big"))  # a new output every run


def plain(path: Path, out_dir: Path, i: int) -> None:
    body = path.read_bytes()
    (out_dir / f"out{i}.bin").write_bytes(body[::-1] + i.to_bytes(4, "big"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        backend = pg.Backend(pg.load_settings(home=root / "home"))
        tracked, untracked = [], []
        for i in range(N + 10):
            src = root / f"in{i % 20}.bin"
            if i < 20:
                src.write_bytes(os.urandom(1 << 20))
            t0 = time.perf_counter()
            plain(src, root, i)
            t1 = time.perf_counter()
            pg.run(handler, params={"i": i}, inputs={"data": str(src)}, backend=backend).raise_for_state()
            t2 = time.perf_counter()
            if i >= 10:  # warm-up excluded
                untracked.append(t1 - t0)
                tracked.append(t2 - t1)
        med_t, med_p = statistics.median(tracked) * 1e3, statistics.median(untracked) * 1e3
        p95 = statistics.quantiles(tracked, n=20)[-1] * 1e3
        print(f"tracked run median {med_t:.2f} ms (p95 {p95:.2f}), plain {med_p:.2f} ms", file=sys.stderr)
        print(f"run overhead: median {med_t - med_p:.2f} ms over {N} runs (target <= 5 ms)")


if __name__ == "__main__":
    main()
