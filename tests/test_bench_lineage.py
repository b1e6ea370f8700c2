"""The lineage benchmark's bulk builders write exactly the graph the projection writes.

bench/bench_lineage.py builds its 10M-node SQLite graph with `bulk_sqlite` and its Neo4j graph with
`neo4j-admin database import` from it (applying 3.3M events takes hours on a shared 2-core machine);
its latencies only mean something if those graphs are the graphs `apply` builds from the events.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from provgraph.graph.contract import LineageBounds
from provgraph.graph.neo4j_config import Neo4jConfig
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.sqlite_store import SqliteLineageStore

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_lineage.py"


def _bench(monkeypatch: pytest.MonkeyPatch, runs: int) -> Any:
    monkeypatch.syspath_prepend(str(BENCH.parent))  # as `python bench/bench_lineage.py` has it
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


@pytest.mark.neo4j
@pytest.mark.slow
@pytest.mark.timeout(1200)  # a server start, 1,200 events applied, an import and a second start
def test_neo4j_import_equals_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On an instance of the test's own: the import replaces the database, which the shared one must not see."""
    bench = _bench(monkeypatch, 1_200)
    port = "17691"
    instance = {**bench.NEO4J_ENV, "PROVGRAPH_NEO4J_INSTANCE": "bench-lineage-test", "PROVGRAPH_NEO4J_BOLT_PORT": port}
    instance |= {"PROVGRAPH_NEO4J_HEAP": "512m", "PROVGRAPH_NEO4J_PAGECACHE": "128m"}
    sqlite_path = tmp_path / "bulk.db"
    SqliteLineageStore(sqlite_path).close()
    bench.bulk_sqlite(sqlite_path)
    bench._neo4j("start", instance)
    try:
        config = Neo4jConfig(uri=f"bolt://127.0.0.1:{port}")
        applied = Neo4jLineageStore(config)
        applied.reset()
        applied.apply(list(bench.events()))
        want = applied.dump()
        applied.close()
        bench._neo4j("stop", instance)
        bench.import_neo4j(sqlite_path, instance)
        bench._neo4j("start", instance)
        imported = Neo4jLineageStore(config, LineageBounds(time_budget_s=300))  # a cold JVM on a busy machine
        assert len(want["read"]) > 2_000
        assert imported.dump() == want
        sqlite = SqliteLineageStore(sqlite_path)
        for i in (1_199, 1_000):  # the same answers as the SQLite graph (proven equal to apply above)
            start = bench.NodeId.dataset("file", *bench._out(i))
            got = imported.lineage(start, bench.Direction.UPSTREAM, depth=10)
            assert set(got.cut_codes) <= {"depth"}
            assert got == sqlite.lineage(start, bench.Direction.UPSTREAM, depth=10)
        imported.close()
    finally:
        bench._neo4j("stop", instance)
