"""(a) Overhead of a tracked local run: median tracked minus median of the same work done plainly.

Two jobs, embedded default (SQLite log, local artifact store):
- bytes: a trivial handler, one 1 MB input, one 1 MB output;
- csv: the small job of issue 15 (read a 1,000-row CSV, group it, log two tables and a JSON artifact),
  standard library only, so the figure is provgraph's and not a dataframe library's;
- csv-returned: the same job returning its three outputs (MLRun's `outputs=` hints) instead of
  logging them: they are recorded after the handler returned, with COMPLETE, in one commit.
Target: <= 1 ms. Beside the wall, the CPU time of this process (tracked minus plain), steadier on a
shared machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import provgraph as pg

N = int(os.environ.get("BENCH_N", "200"))


def write_csv(path: Path, rows: int = 1000) -> Path:
    lines = ["id,group,value"] + [f"{i},g{i % 7},{i * 0.5}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def group(text: str) -> tuple[bytes, bytes, bytes]:
    """The csv job's work: per-group sums and counts as two CSV tables, and a JSON summary."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for row in csv.DictReader(io.StringIO(text)):
        sums[row["group"]] += float(row["value"])
        counts[row["group"]] += 1
    table_sums = "group,sum\n" + "".join(f"{g},{s}\n" for g, s in sorted(sums.items()))
    table_counts = "group,count\n" + "".join(f"{g},{c}\n" for g, c in sorted(counts.items()))
    summary = json.dumps({"groups": len(sums), "rows": sum(counts.values())})
    return table_sums.encode(), table_counts.encode(), summary.encode()


def csv_job(ctx: pg.Context, data: pg.DataItem) -> None:
    sums, counts, summary = group(data.get().decode())
    ctx.log_dataset("sums", df=sums, format="csv")
    ctx.log_dataset("counts", df=counts, format="csv")
    ctx.log_artifact("summary", body=summary, format="json")


@pg.handler(outputs=["sums", "counts", "summary"])
def csv_returned(data: pg.DataItem) -> tuple[bytes, bytes, bytes]:
    return group(data.get().decode())


def csv_plain(path: Path, out_dir: Path, i: int) -> None:
    sums, counts, summary = group(path.read_text())
    (out_dir / f"sums{i}.csv").write_bytes(sums)
    (out_dir / f"counts{i}.csv").write_bytes(counts)
    (out_dir / f"summary{i}.json").write_bytes(summary)


def bytes_job(ctx: pg.Context, data: pg.DataItem, i: int) -> None:
    body = data.get()
    ctx.log_artifact("out", body=body[::-1] + i.to_bytes(4, "big"))  # a new output every run


def bytes_plain(path: Path, out_dir: Path, i: int) -> None:
    body = path.read_bytes()
    (out_dir / f"out{i}.bin").write_bytes(body[::-1] + i.to_bytes(4, "big"))


def measure(
    name: str, job: Callable[..., None], plain: Callable[[Path, Path, int], None], inputs: list[Path], root: Path
) -> None:
    backend = pg.Backend(pg.load_settings(home=root / f"home-{name}"))
    params: Callable[[int], dict[str, int]] = (lambda i: {"i": i}) if job is bytes_job else (lambda i: {})
    tracked, untracked, cpu_tracked, cpu_plain = [], [], [], []
    for i in range(N + 10):
        src = inputs[i % len(inputs)]
        t0, c0 = time.perf_counter(), time.process_time()
        plain(src, root, i)
        t1, c1 = time.perf_counter(), time.process_time()
        pg.run(job, params=params(i), inputs={"data": str(src)}, backend=backend).raise_for_state()
        t2, c2 = time.perf_counter(), time.process_time()
        if i >= 10:  # warm-up excluded
            untracked.append(t1 - t0)
            tracked.append(t2 - t1)
            cpu_plain.append(c1 - c0)
            cpu_tracked.append(c2 - c1)
    med_t, med_p = statistics.median(tracked) * 1e3, statistics.median(untracked) * 1e3
    cpu = (statistics.median(cpu_tracked) - statistics.median(cpu_plain)) * 1e3
    p95 = statistics.quantiles(tracked, n=20)[-1] * 1e3
    print(f"{name}: tracked run median {med_t:.2f} ms (p95 {p95:.2f}), plain {med_p:.2f} ms", file=sys.stderr)
    print(f"run overhead ({name}): median {med_t - med_p:.2f} ms wall, {cpu:.2f} ms CPU over {N} runs (target <= 1 ms)")
    backend.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blobs = []
        for i in range(20):
            (root / f"in{i}.bin").write_bytes(os.urandom(1 << 20))
            blobs.append(root / f"in{i}.bin")
        measure("bytes", bytes_job, bytes_plain, blobs, root)
        measure("csv", csv_job, csv_plain, [write_csv(root / "data.csv")], root)
        measure("csv-returned", csv_returned, csv_plain, [write_csv(root / "data.csv")], root)


if __name__ == "__main__":
    main()
