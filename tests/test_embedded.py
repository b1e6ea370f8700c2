"""The embedded event log and its SQLite projection: incremental sync, replay, duplicates."""

from __future__ import annotations

from pathlib import Path

from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog
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
    import sqlite3

    from tests.facet_events import mart_run, model_run

    log = SqliteEventLog(tmp_path / "events.db")
    log.append([*model_run(), *mart_run()])
    first = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"))
    assert first.sync() == 3
    expected = first.store.dump()
    first.store.close()
    old = sqlite3.connect(tmp_path / "graph.db")  # what an older provgraph left: no facet tables
    old.executescript("DROP TABLE facet; DROP TABLE column_edge;")
    old.close()
    again = EmbeddedProjector(log, SqliteLineageStore(tmp_path / "graph.db"))
    assert again.store.projected_offset() == 0 and again.store.dump()["run"] == []
    assert again.sync() == 3
    assert again.store.dump() == expected
    assert again.store.facets(["job:dbt:shop.stg"])["job:dbt:shop.stg"].sql is not None
