"""(b) Events per second appended to the embedded SQLite event log. Target: >= 20,000 events/s.

Two figures: one event per transaction (what a run's emitter does) and batches of 1,000 (what
a bulk import or the spool drain does). Beside the wall rate, the rate per CPU second of this process
(steadier on a shared machine; the log's I/O is system time of this process too).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog

RUNS = int(os.environ.get("BENCH_RUNS", "5000"))


def main() -> None:
    events = list(workload(RUNS))  # ~6 realistic events per run
    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteEventLog(Path(tmp) / "single.db")
        t0, c0 = time.perf_counter(), time.process_time()
        for e in events:
            log.append([e])
        single = len(events) / (time.perf_counter() - t0)
        single_cpu = len(events) / (time.process_time() - c0)
        log = SqliteEventLog(Path(tmp) / "batch.db")
        t0 = time.perf_counter()
        for i in range(0, len(events), 1000):
            log.append(events[i : i + 1000])
        batched = len(events) / (time.perf_counter() - t0)
    print(f"{len(events)} events", file=sys.stderr)
    print(
        f"event log append: {single:,.0f} events/s one per transaction ({single_cpu:,.0f} per CPU second),"
        f" {batched:,.0f} events/s in batches of 1000 (target >= 20,000 one per transaction)"
    )


if __name__ == "__main__":
    main()
