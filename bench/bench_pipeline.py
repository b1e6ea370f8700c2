"""Pipelines on the local engine (embedded SQLite): what orchestration adds to each step, and how
long the cache-hit decision takes.

- per-step orchestration overhead: a chain of BENCH_STEPS trivial steps; for each step, the
  pipeline's wall time for it minus the step run's own START..COMPLETE time in the graph (so the
  figure is request + fork + bookkeeping, not the handler). The step server's start (once per
  pipeline run) is printed apart. Target < 20 ms.
- cache-hit decision: `find_cached` for a step whose job already has BENCH_HISTORY runs with
  other params in the graph, recorded with `provgraph.run` (the decision reads the newest
  COMPLETE runs of the job and compares code hash, params, input hashes and runtime). Target < 5 ms.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from provgraph import Backend, Context, Settings, run
from provgraph.events.facets import JobRef, ParentRunFacet, RunRef
from provgraph.pipelines import pipeline, run_pipeline, step
from provgraph.pipelines.cache import find_cached
from provgraph.pipelines.engine import prepare

STEPS = int(os.environ.get("BENCH_STEPS", "20"))
HISTORY = int(os.environ.get("BENCH_HISTORY", "200"))


def tick(ctx: Context, n: int = 0) -> dict[str, int]:
    ctx.log_artifact("out", body=str(n))
    return {"n": n}


@pipeline
def ticks(length: int) -> None:
    prev = None
    for i in range(length):
        s = step(tick, name=f"tick-{i}", params={"n": i}, outputs=["out"], cache=False)
        if prev is not None:
            s.after(prev)
        prev = s


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overhead(backend: Backend) -> None:
    result = run_pipeline(ticks, {"length": STEPS}, backend=backend).raise_for_state()
    graph = backend.graph()
    extra: list[float] = []
    for i, st in enumerate(result.steps.values()):
        run = graph.run(st.run_id or "")
        assert run is not None and run.started_at and run.ended_at and st.duration_s is not None
        own = (run.ended_at - run.started_at).total_seconds()
        if i == 0:
            took, mine = st.duration_s * 1000, own * 1000
            print(f"  first step (starts the step server): {took:.0f} ms, the step itself {mine:.1f} ms")
            continue
        extra.append((st.duration_s - own) * 1000)
    print(
        f"  orchestration overhead per step ({len(extra)} steps): p50 {statistics.median(extra):.1f} ms,"
        f" p95 {_pct(extra, 0.95):.1f} ms, max {max(extra):.1f} ms   (target < 20 ms)"
    )


def decision(backend: Backend) -> None:
    @pipeline
    def one(n: int) -> None:
        step(tick, params={"n": n}, outputs=["out"])

    for n in [*range(100, 100 + HISTORY), 7]:  # runs of the job with other params, then the one to reuse
        run(tick, params={"n": n}, backend=backend).raise_for_state()
    pipe = one.build({"n": 7})
    parent = ParentRunFacet(run=RunRef(run_id="bench"), job=JobRef(namespace="default", name="one"))
    times, prep_times = [], []
    for _ in range(200):
        t0 = time.perf_counter()
        prepared = prepare(pipe.steps["tick"], {"n": 7}, {}, backend, "default", parent)
        t1 = time.perf_counter()
        hit = find_cached(backend.graph(), backend, "default", prepared.key)
        t2 = time.perf_counter()
        assert hit is not None
        times.append((t2 - t1) * 1000)
        prep_times.append((t1 - t0) * 1000)
    print(
        f"  cache-hit decision ({HISTORY} runs of the job in the graph): p50 {statistics.median(times):.2f} ms,"
        f" p95 {_pct(times, 0.95):.2f} ms   (target < 5 ms); building the step's request and key:"
        f" p50 {statistics.median(prep_times):.2f} ms"
    )


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    backend = Backend(Settings(home=home / "pg", heartbeat_interval_s=0))
    try:
        print(f"bench_pipeline (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")
        overhead(backend)
        decision(backend)
    finally:
        backend.close()


if __name__ == "__main__":
    sys.exit(main())
