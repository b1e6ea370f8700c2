"""(b) Events per second appended to the embedded SQLite event log. Target: >= 20,000 events/s.

One event per transaction (what a run's emitter does), batches of 1,000 (what a bulk import or the
spool drain does), and one per call from BENCH_THREADS (4) threads at once (the API's ingest, parallel
runs in one process; they take turns on the log's one connection). Beside the one-per-transaction wall
rate, its rate per CPU second of this process (steadier on a shared machine; the log's I/O is system
time of this process too). And the floor: the same rows put in by the log's `INSERT` alone, one
autocommit statement each, with nothing serialised or checked: the SQLite share of an append, so the
most the one-per-transaction rate could reach per CPU second on this machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from provgraph.events.model import RunEvent
from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import _INSERT, SqliteEventLog

RUNS = int(os.environ.get("BENCH_RUNS", "5000"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))


def concurrent(log: SqliteEventLog, events: list[RunEvent]) -> float:
    """Events/s appended one per call by THREADS threads at once; a run's events stay in one thread, in order."""
    runs: dict[str, int] = {}
    shares: list[list[RunEvent]] = [[] for _ in range(THREADS)]
    for e in events:
        shares[runs.setdefault(e.run.run_id, len(runs) % THREADS)].append(e)
    threads = [threading.Thread(target=lambda share=share: [log.append([e]) for e in share]) for share in shares]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(events) / (time.perf_counter() - t0)


def floor(source: SqliteEventLog, path: Path) -> float:
    """Rows per CPU second of `_INSERT` alone, one per transaction, for `source`'s rows (already built)."""
    rows = source._conn.execute(
        "SELECT event_id, run_id, root_run_id, event_type, event_time, body, ingested_at FROM events ORDER BY offset"
    ).fetchall()
    conn = SqliteEventLog(path)._conn
    c0 = time.process_time()
    for row in rows:
        conn.execute(_INSERT, row)
    return len(rows) / (time.process_time() - c0)


def main() -> None:
    events = list(workload(RUNS))  # ~6 realistic events per run
    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteEventLog(Path(tmp) / "single.db")
        t0, c0 = time.perf_counter(), time.process_time()
        for e in events:
            log.append([e])
        single = len(events) / (time.perf_counter() - t0)
        single_cpu = len(events) / (time.process_time() - c0)
        sqlite_only = floor(log, Path(tmp) / "floor.db")
        log = SqliteEventLog(Path(tmp) / "batch.db")
        t0 = time.perf_counter()
        for i in range(0, len(events), 1000):
            log.append(events[i : i + 1000])
        batched = len(events) / (time.perf_counter() - t0)
        threaded = concurrent(SqliteEventLog(Path(tmp) / "threads.db"), events)
    print(f"{len(events)} events", file=sys.stderr)
    print(
        f"event log append: {single:,.0f} events/s one per transaction ({single_cpu:,.0f} per CPU second;"
        f" the INSERT alone, rows prebuilt: {sqlite_only:,.0f} per CPU second),"
        f" {batched:,.0f} events/s in batches of 1000, {threaded:,.0f} events/s one per call from {THREADS} threads"
        " (target >= 20,000 one per call)"
    )


if __name__ == "__main__":
    main()
