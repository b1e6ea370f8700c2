"""The lineage benchmark's bulk builder writes exactly the rows the projection writes.

bench/bench_lineage.py builds its 10M-node SQLite graph with `bulk_sqlite` (applying 3.3M events
takes hours on a shared 2-core machine); its latencies only mean something if that graph is the
graph `apply` builds from the same events.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from provgraph.graph.sqlite_store import SqliteLineageStore

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_lineage.py"


def _bench(monkeypatch: pytest.MonkeyPatch, runs: int) -> Any:
    spec = importlib.util.spec_from_file_location("bench_lineage", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RUNS", runs)
    return module


def test_bulk_sqlite_equals_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench(monkeypatch, 1_200)  # past the 1,000-run window of recent inputs and the 50 jobs
    applied = SqliteLineageStore(tmp_path / "applied.db")
    applied.apply(list(bench.events()))
    bulk_path = tmp_path / "bulk.db"
    SqliteLineageStore(bulk_path).close()
    bench.bulk_sqlite(bulk_path, chunk=500)  # several chunks, the last one partial
    bulk = SqliteLineageStore(bulk_path)
    want, got = applied.dump(), bulk.dump()
    assert len(want["run"]) == 1_200 and len(want["read"]) > 2_000
    assert got == want
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    assert [tuple(r) for r in bulk._all(schema)] == [tuple(r) for r in applied._all(schema)]
    start = bench.NodeId.dataset("file", *bench._out(1_199))
    assert bulk.lineage(start, bench.Direction.UPSTREAM, depth=10) == applied.lineage(
        start, bench.Direction.UPSTREAM, depth=10
    )
