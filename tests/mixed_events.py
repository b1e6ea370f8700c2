"""A randomized, realistic mix of events that exercises every rule the stores fold by.

Synthetic runs (params, reads, writes, one metric), then, per run at random: a failed end with an
error and traceback (its outputs stay attempted), a run still going (no end), unversioned outputs
(minted versions), a metric history (several steps, and one step logged twice with different
values), labels and annotations changed later, log chunks (one offset sent twice with different
digests), a parent, a cached-from or a reproduced run, OpenLineage facets and column lineage.
Each event gets an ingestion time (`known_at`) that may come before or after its event time.
The list is shuffled and holds duplicates: arrival order is anything.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from provgraph.events.facets import (
    CachedFromRunFacet,
    LabelsRunFacet,
    LogsRunFacet,
    MetricPoint,
    MetricsRunFacet,
    ReproducesRunFacet,
)
from provgraph.events.facets.logs_run import LogChunk
from provgraph.events.facets.standard import ErrorMessageRunFacet, JobRef, ParentRunFacet, RunRef
from provgraph.events.model import Dataset, EventType, Run, RunEvent
from provgraph.events.synthetic import EPOCH, content_hash, dataset, run_events
from tests.facet_events import mart_run, model_run


def _with(event: RunEvent, *, seconds: float = 0, **facets: object) -> RunEvent:
    """`event` with more run facets, `seconds` later."""
    return event.model_copy(
        update={
            "run": Run(run_id=event.run.run_id, facets=event.run.facets.model_copy(update=facets)),
            "event_time": event.event_time + timedelta(seconds=seconds),
        }
    )


def _digest(text: str) -> str:
    return content_hash(text)


def mixed_events(runs: int, seed: int) -> tuple[list[RunEvent], list[datetime]]:
    """`runs` runs' events in a random order with duplicates, and each event's ingestion time."""
    rng = random.Random(seed)
    pool = [dataset("file", f"/src/{i}.csv", content_hash(f"src{i}"), "") for i in range(6)]
    events: list[RunEvent] = []
    for i in range(runs):
        run_id = f"mix-{seed}-{i:05d}"
        start = EPOCH + timedelta(seconds=10 * i)
        outputs: list[Dataset] = [dataset("file", f"/out/{i}.parquet", content_hash(f"out{i}"), "out", output=True)]
        if rng.random() < 0.3:  # an unversioned output: the run mints its version
            outputs.append(Dataset(namespace="file", name=f"/tables/t{i % 4}", output_facets=None))
        final = rng.choice([EventType.COMPLETE, EventType.COMPLETE, EventType.FAIL, EventType.ABORT])
        steps = rng.randint(1, 4)
        one = run_events(
            run_id,
            namespace=f"proj{i % 3}",
            job=f"job{i % 5}",
            params={"i": i, "lr": round(rng.random(), 3), "name": f"n{i % 7}", "flag": i % 2 == 0, "xs": [1, 2]},
            inputs=[*rng.sample(pool, k=2), Dataset(namespace="file", name=f"/tables/t{(i + 1) % 4}")],
            outputs=outputs,
            metrics=[("loss", round(rng.random(), 4), s) for s in range(steps)] + [("acc", rng.random(), 0)],
            results={"score": round(rng.random(), 4)},
            final=final,
            start=start,
        )
        last = one[-1]
        if final == EventType.FAIL:
            one[-1] = _with(last, error_message=ErrorMessageRunFacet(message=f"boom {i}", stack_trace="tb\nline"))
        if rng.random() < 0.2:  # still going: no final event
            one = one[:-1]
        # one metric step logged again, later, with another value: the later event wins
        one.append(
            _with(
                one[1].model_copy(update={"event_type": EventType.RUNNING, "inputs": [], "outputs": []}),
                seconds=30,
                metrics=MetricsRunFacet(metrics=[MetricPoint(key="loss", value=rng.random(), step=0)]),
            )
        )
        extra: dict[str, object] = {}
        if rng.random() < 0.5:
            extra["labels"] = LabelsRunFacet(
                labels={"team": f"t{i % 3}", "k": "x" * rng.choice([1, 5000])}, annotations={"note": f"a{i}"}
            )
        if rng.random() < 0.5:
            extra["logs"] = LogsRunFacet(
                chunks=[
                    LogChunk(offset=0, size=10, digest=_digest(f"log{i}-{rng.randint(0, 1)}")),
                    LogChunk(offset=10, size=5, digest=_digest(f"tail{i}")),
                ]
            )
        if i and rng.random() < 0.3:
            parent = f"mix-{seed}-{rng.randrange(i):05d}"
            extra["parent"] = ParentRunFacet(run=RunRef(run_id=parent), job=JobRef(namespace=f"proj{i % 3}", name="p"))
        elif i and rng.random() < 0.2:
            other = f"mix-{seed}-{rng.randrange(i):05d}"
            extra["cached_from"] = CachedFromRunFacet(run_id=other, cache_key=content_hash(other))
        elif i and rng.random() < 0.2:
            other = f"mix-{seed}-{rng.randrange(i):05d}"
            extra["reproduces"] = ReproducesRunFacet(run_id=other, verdict=rng.choice(["REPRODUCED", "DIVERGED"]))
        if extra:
            # sent on a RUNNING event; labels are sent again later with other values (greater key wins)
            one.append(_with(one[0].model_copy(update={"event_type": EventType.RUNNING}), seconds=5, **extra))
            if "labels" in extra:
                relabel = LabelsRunFacet(labels={"team": "final"}, annotations={})
                one.append(
                    _with(one[0].model_copy(update={"event_type": EventType.RUNNING}), seconds=40, labels=relabel)
                )
        events += one
    events += model_run() + model_run("stg-2", 10, ends="COMPLETE") + mart_run()
    events += rng.sample(events, len(events) // 5)  # redelivered
    rng.shuffle(events)
    # ingestion: mostly soon after the event, sometimes long after (a late event), never before 2026
    known_at = [e.event_time + timedelta(seconds=rng.choice([0.5, 1, 3, 600])) for e in events]
    return events, known_at
