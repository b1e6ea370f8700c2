"""Start-up: `import provgraph`, `provgraph --help`, `provgraph runs` (100 runs, embedded) and the first
tracked run in a fresh process, each the median of BENCH_N (9) fresh interpreters; then the top
`python -X importtime` offenders of each CLI command. Targets: CLI walls < 300 ms, cold first run < 80 ms.

Walls on a shared machine swing with its load; the CPU time (user + system) of the child is printed
beside each wall as the steadier figure. The cold run is the small job of bench_run_overhead
(a 1,000-row CSV read and grouped, two tables and a JSON artifact logged), timed from before
`import provgraph` to `run` returning; under it, its floor: what any process that validates with
pydantic v2 (the contract's boundary) pays before its first event, importing pydantic and building
and using a one-field model. Children may write bytecode (PYTHONDONTWRITEBYTECODE is dropped), so
the figures are those of an installed package, not of compiling it at each start.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = int(os.environ.get("BENCH_N", "9"))
BIN = Path(sys.executable).parent / "provgraph"
IMPORT = "import time; t = time.perf_counter(); import provgraph; print(time.perf_counter() - t)"
COLD_RUN = """
import time; t = time.perf_counter()
import provgraph as pg
from bench_run_overhead import csv_job
settings = pg.Settings(home={home!r})
pg.run(csv_job, inputs={{"data": {csv!r}}}, settings=settings).raise_for_state()
print(time.perf_counter() - t)
"""
PYDANTIC_FLOOR = """
import time; t = time.perf_counter()
import pydantic
class Event(pydantic.BaseModel):
    run_id: str
Event.model_validate_json(b'{"run_id": "r"}').model_dump_json()
print(time.perf_counter() - t)
"""


def timed(argv: list[str], env: dict[str, str], inner: bool = False) -> tuple[float, float]:
    """(wall s, CPU s) of one child; `inner`: the wall is what the child prints (its own timer)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return (float(proc.stdout.split()[-1]) if inner else wall), cpu


def report(label: str, argv: list[str], env: dict[str, str], inner: bool = False, target: str = "") -> None:
    timed(argv, env, inner)  # warm the bytecode cache and the page cache
    samples = [timed(argv, env, inner) for _ in range(N)]
    wall = statistics.median(s[0] for s in samples) * 1e3
    cpu = statistics.median(s[1] for s in samples) * 1e3
    print(f"{label}: median wall {wall:.0f} ms, CPU {cpu:.0f} ms{target}")


def offenders(label: str, argv: list[str], env: dict[str, str], top: int = 8) -> None:
    """The modules whose import (with what they import) costs most, outermost first."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=env)
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line[len("import time:") :].split("|")
            rows.append((int(cumulative), name[1:].rstrip()))  # two spaces of indent per level
    total = sum(c for c, name in rows if not name.startswith(" "))
    print(f"  python -X importtime, {label}: {total / 1e3:.0f} ms of imports; heaviest (cumulative):")
    for cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"    {cumulative / 1e3:7.1f} ms  {name.strip()}  (depth {(len(name) - len(name.lstrip())) // 2})")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
        env.update(PROVGRAPH_HOME=str(root / "home"), PROVGRAPH_CONFIG="", COLUMNS="120")
        # The warm-up run writes the bytecode cache, as an installed package has it (pip compiles on
        # install): with PYTHONDONTWRITEBYTECODE set every child would compile every module it imports.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])
        seed = (
            "from provgraph.events.synthetic import workload;"
            "from provgraph.events.transport.sqlite import SqliteEventLog;"
            f"SqliteEventLog({str(root / 'home' / 'events.db')!r}).append(list(workload(100)))"
        )
        subprocess.run([sys.executable, "-c", seed], env=env, check=True)
        subprocess.run([str(BIN), "runs"], env=env, check=True, capture_output=True)  # project them once
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_run_overhead import write_csv

        csv = write_csv(root / "data.csv")
        report("import provgraph", [sys.executable, "-c", IMPORT], env, inner=True)
        report("provgraph --help", [str(BIN), "--help"], env, target=" (target < 300 ms)")
        report("provgraph runs (100 runs)", [str(BIN), "runs"], env, target=" (target < 300 ms)")
        cold = COLD_RUN.format(home=str(root / "cold"), csv=str(csv))
        report("cold first tracked run", [sys.executable, "-c", cold], env, inner=True, target=" (target < 80 ms)")
        floor = [sys.executable, "-c", PYDANTIC_FLOOR]
        report("  its floor: import pydantic, build and use a one-field model", floor, env, inner=True)
        offenders("provgraph --help", ["-m", "provgraph.cli", "--help"], env)
        offenders("provgraph runs", ["-m", "provgraph.cli", "runs"], env)
        offenders("cold first tracked run", ["-c", cold], env)


if __name__ == "__main__":
    main()
