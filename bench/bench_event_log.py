"""(b) Events per second appended to the embedded SQLite event log. Target: >= 20,000 events/s.

Two figures: one event per transaction (what a run's emitter does) and batches of 1,000 (what
a bulk import or the spool drain does).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog


def main() -> None:
    events = list(workload(5_000))  # ~30,000 realistic events
    with tempfile.TemporaryDirectory() as tmp:
        log = SqliteEventLog(Path(tmp) / "single.db")
        t0 = time.perf_counter()
        for e in events:
            log.append([e])
        single = len(events) / (time.perf_counter() - t0)
        log = SqliteEventLog(Path(tmp) / "batch.db")
        t0 = time.perf_counter()
        for i in range(0, len(events), 1000):
            log.append(events[i : i + 1000])
        batched = len(events) / (time.perf_counter() - t0)
    print(f"{len(events)} events", file=sys.stderr)
    print(
        f"event log append: {single:,.0f} events/s one per transaction, {batched:,.0f} events/s in batches of 1000"
        " (target >= 20,000)"
    )


if __name__ == "__main__":
    main()
