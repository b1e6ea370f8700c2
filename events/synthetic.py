"""Realistic synthetic runs (START, reads, writes, metrics, COMPLETE) for tests, benchmarks and load tests.

`run_events` builds one run's events exactly as the SDK would emit them; `chain` builds a lineage
chain where each run reads what the previous one wrote. Everything is deterministic given a seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from provgraph.events.facets import (
    ArtifactDatasetFacet,
    BindingFacet,
    CodeJobFacet,
    DatasetVersionDatasetFacet,
    EventRunFacet,
    MetricPoint,
    MetricsRunFacet,
    ParamsRunFacet,
    ResultsRunFacet,
    RuntimeRunFacet,
)
from provgraph.events.model import Dataset, DatasetFacets, EventType, Job, JobFacets, Run, RunEvent, RunFacets

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def content_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def dataset(
    namespace: str,
    name: str,
    version: str,
    binding: str = "",
    kind: str = "data",
    size: int | None = None,
    output: bool = False,
) -> Dataset:
    bind = {BindingFacet.FACET_NAME: BindingFacet(name=binding).model_dump(mode="json", by_alias=True)}
    return Dataset(
        namespace=namespace,
        name=name,
        facets=DatasetFacets(
            version=DatasetVersionDatasetFacet(dataset_version=version),
            artifact=ArtifactDatasetFacet(kind=kind, size=size),
        ),
        output_facets=bind if output else None,
        input_facets=None if output else bind,
    )


def run_events(
    run_id: str,
    *,
    namespace: str = "synthetic",
    job: str = "job",
    code_hash: str | None = None,
    params: dict[str, Any] | None = None,
    inputs: Sequence[Dataset] = (),
    outputs: Sequence[Dataset] = (),
    metrics: Sequence[tuple[str, float, int]] = (),
    results: dict[str, Any] | None = None,
    final: EventType = EventType.COMPLETE,
    start: datetime = EPOCH,
) -> list[RunEvent]:
    """START, one RUNNING per input, per output and per metric, then the final event."""
    job_facets = JobFacets(code=CodeJobFacet(code_hash=code_hash or content_hash(job), entrypoint=f"{job}.py:{job}"))
    events: list[RunEvent] = []

    def emit(
        kind: EventType, facets: dict[str, Any], ins: Sequence[Dataset] = (), outs: Sequence[Dataset] = ()
    ) -> None:
        seq = len(events) + 1
        facets["event"] = EventRunFacet(event_id=f"{run_id}-{seq}", seq=seq)
        events.append(
            RunEvent(
                event_type=kind,
                event_time=start + timedelta(milliseconds=seq),
                run=Run(run_id=run_id, facets=RunFacets(**facets)),
                job=Job(namespace=namespace, name=job, facets=job_facets),
                inputs=list(ins),
                outputs=list(outs),
            )
        )

    emit(
        EventType.START,
        {
            "params": ParamsRunFacet(params=params or {}),
            "runtime": RuntimeRunFacet(kind="local", host="synthetic"),
        },
    )
    for d in inputs:
        emit(EventType.RUNNING, {}, ins=[d])
    for d in outputs:
        emit(EventType.RUNNING, {}, outs=[d])
    for key, value, step in metrics:
        emit(
            EventType.RUNNING,
            {"metrics": MetricsRunFacet(metrics=[MetricPoint(key=key, value=value, step=step)])},
        )
    emit(final, {"results": ResultsRunFacet(results=results or {})})
    return events


def chain(length: int, *, prefix: str = "r", namespace: str = "synthetic", seed: int = 0) -> list[RunEvent]:
    """`length` runs where run i reads the dataset run i-1 wrote: a lineage path of 2*length hops."""
    rng = random.Random(seed)
    events: list[RunEvent] = []
    previous = dataset("file", f"/{prefix}/raw.csv", content_hash(f"{prefix}-raw"), "data")
    for i in range(length):
        out_name = f"/{prefix}/step{i}.parquet"
        version = content_hash(f"{prefix}-{i}")
        events += run_events(
            f"{prefix}-{i:06d}",
            namespace=namespace,
            job=f"step{i % 5}",
            params={"lr": round(rng.random(), 3)},
            inputs=[previous],
            outputs=[dataset("file", out_name, version, "out", output=True)],
            metrics=[("loss", round(rng.random(), 4), 1)],
            start=EPOCH + timedelta(seconds=i),
        )
        previous = dataset("file", out_name, version, "data")
    return events


def workload(runs: int, *, namespace: str = "synthetic", fan_in: int = 2, seed: int = 0) -> Iterator[RunEvent]:
    """A stream of realistic runs over a growing pool of datasets (each run reads a few, writes one)."""
    rng = random.Random(seed)
    pool: list[tuple[str, str]] = [(f"/data/source{i}.csv", content_hash(f"source{i}")) for i in range(10)]
    for i in range(runs):
        reads = rng.sample(pool, k=min(fan_in, len(pool)))
        name = f"/data/out{i}.parquet"
        version = content_hash(f"{namespace}-out{i}")
        yield from run_events(
            f"{namespace}-run-{i:08d}",
            namespace=namespace,
            job=f"job{i % 20}",
            params={"i": i, "lr": round(rng.random(), 3)},
            inputs=[dataset("file", n, v, f"in{k}") for k, (n, v) in enumerate(reads)],
            outputs=[dataset("file", name, version, "out", output=True)],
            metrics=[("loss", round(rng.random(), 4), 1)],
            results={"score": round(rng.random(), 4)},
            start=EPOCH + timedelta(seconds=i),
        )
        pool.append((name, version))
