"""From stored rows to views, shared by the stores so their answers cannot drift.

Both stores keep the same columns/properties (`projection.run_row` and friends): JSON values as
canonical JSON text, times as ISO text, `git_dirty` as 0/1. A row is any mapping with `.get`
(a Neo4j record's dict, or the SQLite store's row by column name).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from provgraph.events.facets.values import decode_float
from provgraph.events.states import UNVERSIONED, RunState
from provgraph.graph.ids import run_node_id
from provgraph.graph.liveness import Liveness
from provgraph.graph.views import (
    Completeness,
    DatasetRef,
    DatasetVersionView,
    JobVersionView,
    LineageNode,
    MetricSeries,
    ReproductionView,
    RunView,
)

Row = Mapping[str, Any]

RUN_NODE_FIELDS = ("run_id", "namespace", "job_name", "state", "code_hash", "params", "started_at")
"""What a run lineage node shows, in the order `run_node` takes them."""
DATASET_VERSION_NODE_FIELDS = ("node_id", "namespace", "name", "version", "kind", "size")
"""What a dataset version lineage node shows, in the order `dataset_version_node` takes them."""


def loads_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def stored_state(value: str) -> RunState:
    """A stored state; OTHER for a value no event can produce (a foreign or older writer's), so
    one odd row cannot stop a page of runs from being read."""
    try:
        return RunState(value)
    except ValueError:
        return RunState.OTHER


def run_view(
    r: Row,
    *,
    metrics: dict[str, float],
    inputs: Sequence[DatasetRef] = (),
    outputs: Sequence[DatasetRef] = (),
    job_version: JobVersionView | None = None,
    liveness: Liveness,
    completeness: Completeness | None = None,
) -> RunView:
    """The run as stored, except that a START/RUNNING run whose process is gone shows as LOST,
    with the reason as its error (see `liveness.py`)."""
    repro = loads_json(r.get("reproduces"))
    runtime = loads_json(r.get("runtime")) or {}
    state, error = stored_state(r["state"]), r.get("error")
    lost = liveness.lost(state, runtime, parse_time(r.get("last_event_at") or r.get("started_at")))
    if lost is not None:
        state, error = RunState.LOST, lost
    entrypoint = r.get("entrypoint")
    if job_version is not None and entrypoint is not None and job_version.entrypoint != entrypoint:
        # one file, one job name, several functions: the version's own entrypoint is one of them
        job_version = job_version.model_copy(update={"entrypoint": entrypoint})
    return RunView(
        run_id=r["run_id"],
        namespace=r["namespace"],
        job_name=r["job_name"],
        state=state,
        started_at=parse_time(r.get("started_at")),
        ended_at=parse_time(r.get("ended_at")),
        code_hash=r.get("code_hash"),
        entrypoint=entrypoint,
        params=loads_json(r.get("params")) or {},
        results=loads_json(r.get("results")) or {},
        labels=loads_json(r.get("labels")) or {},
        annotations=loads_json(r.get("annotations")) or {},
        metrics=metrics,
        runtime=runtime,
        error=error,
        traceback=r.get("traceback"),
        parent_run_id=r.get("parent_run_id"),
        cached_from=r.get("cached_from"),
        reproduces=ReproductionView(
            original_run_id=repro["run_id"],
            verdict=repro["verdict"],
            differences=repro.get("differences", []),
            environment=repro.get("environment", {}),
            snapshot_inputs=repro.get("snapshot_inputs", []),
        )
        if repro
        else None,
        inputs=list(inputs),
        outputs=list(outputs),
        job_version=job_version,
        completeness=completeness,
    )


def edge_kind(table: str, attempted: bool) -> str:
    """A lineage edge's kind from its table/relationship (`read`/`wrote`) and whether the write was
    only attempted."""
    if table == "read":
        return "READ"
    return "ATTEMPTED" if attempted else "WROTE"


def existing(versions: list[DatasetVersionView]) -> list[DatasetVersionView]:
    """A dataset's versions without the `unversioned` placeholder (where reads that resolved to no
    version point) when it has real ones."""
    real = [v for v in versions if v.version != UNVERSIONED]
    return real or versions


def metric_series(points: Iterable[Sequence[Any]], limit: int) -> list[MetricSeries]:
    """`(key, step, stored value)` points in (key, step) order, at most `limit` steps per key kept."""
    out: dict[str, tuple[list[int], list[float], list[bool]]] = {}
    for key, step, value in points:
        steps, values, cut = out.setdefault(key, ([], [], [False]))
        if len(steps) < limit:
            steps.append(step)
            values.append(decode_float(value))
        else:
            cut[0] = True
    return [MetricSeries(key=k, steps=s, values=v, truncated=c[0]) for k, (s, v, c) in out.items()]


def job_version_view(r: Row) -> JobVersionView:
    dirty = r.get("git_dirty")
    return JobVersionView(
        namespace=r["namespace"],
        name=r["name"],
        code_hash=r["code_hash"],
        entrypoint=r.get("entrypoint"),
        source_uri=r.get("source_uri"),
        git_commit=r.get("git_commit"),
        git_dirty=None if dirty is None else bool(dirty),
    )


def dataset_version_view(r: Row) -> DatasetVersionView:
    return DatasetVersionView(
        namespace=r["namespace"],
        name=r["name"],
        version=r["version"],
        kind=r.get("kind"),
        size=r.get("size"),
        uri=r.get("uri"),
        created_at=parse_time(r.get("created_at")),
        format=r.get("format"),
        framework=r.get("framework"),
        meta=loads_json(r.get("meta")),
    )


def run_node(hop: int, values: Sequence[Any]) -> LineageNode:
    """A run in a lineage answer, from the `RUN_NODE_FIELDS` values."""
    run_id, namespace, job, state, code_hash, params, started_at = values
    props = {
        "namespace": namespace,
        "job": job,
        "state": state,
        "code_hash": code_hash,
        "params": loads_json(params) or {},
        "started_at": started_at,
    }
    return LineageNode(run_node_id(run_id), "run", hop, f"{job} ({state.lower()})", props)


def dataset_version_node(hop: int, values: Sequence[Any]) -> LineageNode:
    """A dataset version in a lineage answer, from the `DATASET_VERSION_NODE_FIELDS` values."""
    node_id, namespace, name, version, kind, size = values
    props = {"namespace": namespace, "name": name, "version": version, "kind": kind, "size": size}
    return LineageNode(node_id, "datasetVersion", hop, f"{name}@{version[:15]}", props)
