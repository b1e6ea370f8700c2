"""Opening the embedded files from many threads and processes at once never fails with "database is
locked": a pipeline's or hyperparameter run's parallel steps all open the same new files."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from provgraph import Backend
from provgraph.events.settings import load_settings
from provgraph.events.transport.sqlite import connect
from provgraph.graph.tombstones import LiveStore


def _open_at(path: str, start: threading.Barrier | None = None) -> str:
    if start is not None:
        start.wait()
    conn = connect(path)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS t(x)")  # a write, as a store's schema is
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def test_many_threads_open_one_new_file_at_once(tmp_path: Path) -> None:
    for round_ in range(20):
        path = str(tmp_path / f"r{round_}.db")
        start = threading.Barrier(8)
        with ThreadPoolExecutor(8) as pool:
            opened = [pool.submit(_open_at, path, start) for _ in range(8)]
            assert [f.result() for f in opened] == ["wal"] * 8  # (result() raises what the thread raised)


def test_processes_open_one_new_file_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(3):
        path = str(tmp_path / f"p{round_}.db")
        with ctx.Pool(4) as pool:
            assert pool.starmap(_open_at, [(path,)] * 8) == ["wal"] * 8


def test_threads_of_one_backend_share_one_graph(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path / "home"))
    backend = Backend(load_settings())
    start = threading.Barrier(6)
    stores: list[LiveStore] = []

    def graph() -> None:
        start.wait()
        live = backend.graph()
        assert isinstance(live, LiveStore)
        stores.append(live)

    threads = [threading.Thread(target=graph) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(stores) == 6
        assert len({id(s.inner) for s in stores}) == 1  # one store opened, not one per thread
    finally:
        backend.close()
