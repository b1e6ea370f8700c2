"""CPU per event of the projector's prepare (Kafka record bytes -> graph rows), in process, no services.

`BatchProjector.prepare` over records made from `events.synthetic.workload` (the bytes the SDK
produces), with the projector's `tune_gc()`: validation (`serde.loads`, the contract's storability
check included), the admission checks and the Neo4j fold (`store.prepare`). Also prints the split:
`loads` alone and the fold alone over the same events. Run it with another checkout's interpreter
to compare code (alternate old/new processes; CPU time, so less bound to the load, but print the
load average beside it). BENCH_RUNS (6 events a run), BENCH_BATCH (records per batch: 40 is what a
projector at a few hundred events/s prepares, 5000 its maximum), BENCH_PASSES.
"""

from __future__ import annotations

import os
import subprocess
import time

from provgraph.events import serde
from provgraph.events.admission import KnownObjects
from provgraph.events.synthetic import workload
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.services.projector.app import tune_gc
from provgraph.services.projector.handlers import BatchProjector
from provgraph.services.records import Record

RUNS = int(os.environ.get("BENCH_RUNS", "2000"))
BATCH = int(os.environ.get("BENCH_BATCH", "40"))
PASSES = int(os.environ.get("BENCH_PASSES", "3"))
CALLGRIND = os.environ.get("BENCH_CALLGRIND") == "1"
"""Under `valgrind --tool=callgrind --instr-atstart=no`: instructions are counted over the first pass
of prepare only (switched with callgrind_control); a load-independent figure."""


class _EveryObject:
    """An artifact store holding every object (the synthetic outputs are not `store://` ones anyway)."""

    url = "memory://"

    def exists(self, digest: str) -> bool:
        return True


def main() -> None:
    records = [
        Record("bench", 0, i, e.root_run_id.encode(), serde.dumps(e), 1_767_225_600_000 + i)
        for i, e in enumerate(workload(RUNS, namespace="bench"))
    ]
    store = object.__new__(Neo4jLineageStore)  # prepare folds in Python only: no driver needed
    projector = BatchProjector(store, KnownObjects(_EveryObject()))  # type: ignore[arg-type]
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    projector.prepare(batches[0])  # validators are built on first use (defer_build): not in the figure
    tune_gc()
    n = len(records)
    print(f"{n} events, batches of {BATCH}, load average {os.getloadavg()[0]:.2f}")
    for p in range(PASSES):
        if CALLGRIND:
            subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
        t = time.process_time()
        for b in batches:
            prepared = projector.prepare(b)
            assert not prepared.dead and prepared.folded is not None
        prep = time.process_time() - t
        if CALLGRIND:
            subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
            print(f"prepare only, instructions: see callgrind's total / {n} events")
            return
        t = time.process_time()
        events = [serde.loads(r.value) for r in records]
        loads = time.process_time() - t
        t = time.process_time()
        for i in range(0, n, BATCH):
            store.prepare(events[i : i + BATCH])
        fold = time.process_time() - t
        del events
        print(
            f"pass {p + 1}: prepare {prep / n * 1e6:.1f} us/event, loads {loads / n * 1e6:.1f},"
            f" fold {fold / n * 1e6:.1f} (load {os.getloadavg()[0]:.2f})"
        )


if __name__ == "__main__":
    main()
