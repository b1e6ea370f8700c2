"""One SQLite library per file: the graph file is opened only through `apsw`, never the stdlib module.

`apsw` links its own SQLite; two SQLite copies with one file open in one process break each other's
POSIX locks (sqlite.org, "How To Corrupt An SQLite Database File", 2.2.1). The stdlib module reports
every `sqlite3.connect` to audit hooks, so an embedded run, a query and a rebuild are watched here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import provgraph as pg
from provgraph.events.settings import Settings
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph import sqlite_db
from provgraph.graph.embedded import rebuild
from provgraph.graph.sqlite_store import SqliteLineageStore

_OPENED: list[list[str]] = []
"""The files `sqlite3.connect` opened while a test watches (the hook stays: audit hooks cannot go)."""


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "sqlite3.connect" and _OPENED:
        _OPENED[-1].append(str(args[0]))


sys.addaudithook(_audit)


def copy_upper(ctx: pg.Context, src: pg.DataItem) -> dict[str, int]:
    data = src.get()
    ctx.log_artifact("upper", data.upper())
    return {"size": len(data)}


def test_the_graph_file_is_never_opened_by_the_stdlib_sqlite3_module(backend: pg.Backend, settings: Settings) -> None:
    raw = settings.home.parent / "raw.txt"
    raw.write_bytes(b"hello provgraph\n")
    _OPENED.append([])
    try:
        result = pg.run(copy_upper, inputs={"src": str(raw)}, backend=backend)
        graph = backend.graph()
        view = graph.run(result.run_id)  # projects the log into the graph first
        log = SqliteEventLog(settings.events_db)
        assert rebuild(log, settings.graph_db) == log.last_offset()
        log.close()
        again = SqliteLineageStore(settings.graph_db)
        assert again.run(result.run_id) == view and view is not None and view.state == "COMPLETE"
        binding = type(again._conn)
        again.close()
    finally:
        opened = [Path(p).name for p in _OPENED.pop()]
    assert "events.db" in opened  # the hook sees the stdlib module's connections (the log stays on it)
    assert [name for name in opened if name.startswith(settings.graph_db.name)] == []
    assert binding is sqlite_db.Connection
