"""The embedded event log and its SQLite projection: incremental sync, replay, duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph import sqlite_db
from provgraph.graph.embedded import EmbeddedProjector
from provgraph.graph.sqlite_store import SqliteLineageStore


def test_sync_projects_only_new_events_and_replay_rebuilds_identically(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    projector = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"), batch=97)
    events = list(workload(60))
    assert log.append(events[:200]) == 200
    assert projector.sync() == 200
    assert projector.sync() == 0
    log.append(events[200:])
    assert projector.sync() == len(events) - 200
    before = projector.store.dump()

    seen: list[tuple[int, int]] = []
    assert projector.replay(lambda done, total: seen.append((done, total))) == len(events)
    assert projector.store.dump() == before
    assert seen[-1] == (len(events), len(events)) and len(seen) > 1  # progress reported per batch


def test_the_log_ignores_redelivered_events(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    events = list(workload(5))
    assert log.append(events) == len(events)
    assert log.append(events[::-1]) == 0
    assert log.count() == len(events)
    assert [r.offset for r in log.read()] == list(range(1, len(events) + 1))


def test_a_fresh_projection_of_the_same_log_is_identical(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    log.append(list(workload(40)))
    a = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "a.db"), batch=1000)
    b = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "b.db"), batch=7)
    a.sync()
    b.sync()
    assert a.store.dump() == b.store.dump()
    assert a.store.projected_offset() == b.store.projected_offset() == log.last_offset()


def test_a_graph_projected_before_facets_existed_is_projected_again(tmp_path: Path) -> None:
    from tests.facet_events import mart_run, model_run

    log = SqliteEventLog(tmp_path / "events.db")
    log.append([*model_run(), *mart_run()])
    first = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"))
    assert first.sync() == 3
    expected = first.store.dump()
    first.store.close()
    old = sqlite_db.connect(tmp_path / "graph.db")  # what an older provgraph left: no facet tables
    old.execute("DROP TABLE facet; DROP TABLE column_edge;")
    old.close()
    again = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"))
    assert again.store.projected_offset() == 0 and again.store.dump()["run"] == []
    assert again.sync() == 3
    assert again.store.dump() == expected
    assert again.store.facets(["job:dbt:shop.stg"])["job:dbt:shop.stg"].sql is not None


_TEXT_KEYED_EDGES = """
CREATE TABLE {0} (
    run_id TEXT NOT NULL, dsv TEXT NOT NULL, binding TEXT NOT NULL, first_at TEXT NOT NULL, known_at TEXT NOT NULL,
    PRIMARY KEY (run_id, dsv, binding));
CREATE INDEX {0}_dsv ON {0}(dsv);
"""
"""A READ or WROTE table as every graph before round 8 held it: keyed by the text ids."""


def _as_text_keyed(path: Path, dump: dict[str, list[dict[str, object]]]) -> None:
    """Rewrite the walk's tables of the graph at `path` as a graph before the integer keys held them
    (`run` and `dataset_version` keyed by their text id, no `id`; edges by text ids), with `dump`'s rows."""
    old = sqlite_db.connect(path)
    old.execute("BEGIN")
    for table, key in (("run", "run_id"), ("dataset_version", "node_id")):
        sql = str(old.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchall()[0][0])
        indexes = [
            r[0]
            for r in old.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql LIKE 'CREATE INDEX%'", (table,)
            )
        ]
        old.execute(f"DROP TABLE {table}")
        old.execute(sql.replace(f"id INTEGER PRIMARY KEY, {key} TEXT NOT NULL UNIQUE", f"{key} TEXT PRIMARY KEY"))
        for index in indexes:
            old.execute(index)
    for table in ("read", "wrote"):
        old.execute(f"DROP TABLE {table}")
        for stmt in _TEXT_KEYED_EDGES.format(table).split(";"):
            if stmt.strip():
                old.execute(stmt)
    for table in ("run", "dataset_version", "read", "wrote"):
        for row in dump[table]:
            cols = ", ".join(row)
            old.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    old.execute("COMMIT")
    old.close()


def test_a_graph_keyed_by_text_ids_is_projected_again_with_integer_keys(tmp_path: Path) -> None:
    """A graph from before the integer node keys (round 8) is emptied when opened and projected again
    from the log: same canonical dump, and its walks read the new tables."""
    log = SqliteEventLog(tmp_path / "events.db")
    log.append(list(workload(30)))
    first = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"))
    count = first.sync()
    expected = first.store.dump()
    assert expected["read"] and expected["wrote"]
    first.store.close()
    _as_text_keyed(tmp_path / "graph.db", expected)

    again = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"))
    assert again.store.projected_offset() == 0 and again.store.dump()["run"] == []  # emptied
    assert again.sync() == count
    assert again.store.dump() == expected
    run = again.store.run(expected["read"][0]["run_id"])
    assert run is not None and run.inputs  # the edges are read through the integer keys


def test_a_sync_projects_with_few_collections_and_gives_the_thresholds_back(tmp_path: Path) -> None:
    """A batch's validated events would otherwise be scanned by the collector again and again
    (2x the sync's CPU); the process's own thresholds are back once the last overlapping sync ends."""
    import gc
    import threading

    from provgraph.events.serde import BATCH_GC_THRESHOLDS

    log = SqliteEventLog(tmp_path / "events.db")
    log.append(list(workload(10)))
    seen: list[tuple[int, int, int]] = []
    inside = threading.Barrier(2)

    class Store(SqliteLineageStore):
        def apply(self, *args: Any, **kwargs: Any) -> None:
            seen.append(gc.get_threshold())
            inside.wait(timeout=10)  # both syncs inside at once: the first to leave restores nothing
            super().apply(*args, **kwargs)

    own = (123, 7, 5)
    before = gc.get_threshold()
    gc.set_threshold(*own)
    try:
        syncs = [EmbeddedProjector(log, Store(tmp_path / f"graph{i}.db")) for i in range(2)]
        threads = [threading.Thread(target=p.sync) for p in syncs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert gc.get_threshold() == own
    finally:
        gc.set_threshold(*before)
    assert seen == [BATCH_GC_THRESHOLDS, BATCH_GC_THRESHOLDS]
    assert all(p.store.projected_offset() == log.last_offset() for p in syncs)
