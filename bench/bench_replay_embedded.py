"""`provgraph replay` on the embedded default: the SQLite event log projected again into a new SQLite
graph (`EmbeddedProjector.replay`, the atomic rebuild), no services.

The log holds `events.synthetic.workload(BENCH_RUNS)` (default 34,000 runs, ~204,000 events: the size
of issue 15's replay figure), appended in batches before the clock starts. Prints events/s, the CPU per
event of this process (validation, admission, the SQLite writes: everything runs here) and what 10M
events would take at that rate, then the same events split by stage in process: `serde.loads`, the
projection's `facts`, and the store's `apply` (the SQL and what it builds). Target (issue 15): 10M
events in < 5 min.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from provgraph.events.serde import few_collections, loads
from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.embedded import EmbeddedProjector
from provgraph.graph.projection import facts
from provgraph.graph.sqlite_store import SqliteLineageStore

RUNS = int(os.environ.get("BENCH_RUNS", "34000"))
BATCH = 5000
"""What `EmbeddedProjector` reads and writes in one transaction."""


def split(log: SqliteEventLog, store: SqliteLineageStore) -> dict[str, float]:
    """CPU seconds of each stage of a sync over the whole log (`facts` is timed alone, then again in `apply`)."""
    spent = dict.fromkeys(("loads", "facts", "apply"), 0.0)
    offset = 0
    with few_collections():
        while records := log.read(offset, BATCH):
            c0 = time.process_time()
            events = [loads(r.body) for r in records]
            c1 = time.process_time()
            for e in events:
                facts(e)
            c2 = time.process_time()
            store.apply(events, known_at=[r.ingested_at or e.event_time for r, e in zip(records, events, strict=True)])
            c3 = time.process_time()
            spent["loads"] += c1 - c0
            spent["facts"] += c2 - c1
            spent["apply"] += c3 - c2
            offset = records[-1].offset
    return spent


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = SqliteEventLog(root / "events.db")
        t0 = time.perf_counter()
        events = list(workload(RUNS))
        for i in range(0, len(events), BATCH):
            log.append(events[i : i + BATCH])
        n = len(events)
        del events
        print(f"log of {n:,} events written in {time.perf_counter() - t0:.1f} s", flush=True)

        store = SqliteLineageStore(root / "graph.db")
        t0, c0 = time.perf_counter(), time.process_time()
        replayed = EmbeddedProjector(log, store, BATCH).replay()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert replayed == n
        print(
            f"embedded replay: {n:,} events in {wall:.1f} s, {n / wall:,.0f} events/s, {cpu / n * 1e6:.0f} us CPU an"
            f" event; 10M events at this rate: {1e7 / (n / wall) / 60:.0f} min (target < 5 min)"
        )
        store.close()

        spent = split(log, SqliteLineageStore(root / "split.db"))
        print(
            "  split, CPU an event: "
            + ", ".join(f"{stage} {s / n * 1e6:.1f} us" for stage, s in spent.items())
            + " (apply includes facts again)"
        )
        log.close()


if __name__ == "__main__":
    main()
