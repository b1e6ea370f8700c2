"""A batch of events folded into one row per Neo4j node, with the merge rules of `projection.py`.

Greater order key wins, terminal state beats non-terminal, MAX of non-NULL for descriptive
properties, MIN for first-seen times, unions for edges and metrics: the same rules `neo4j_cypher`
applies again against what is stored, so batches commute. The property names here are the ones
the statements read (`row.<prop>`).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from provgraph.events.facets.values import encode_float
from provgraph.events.model import RunEvent
from provgraph.graph.projection import (
    CARRIED_RUN_PROPS,
    KEYED_RUN_PROPS,
    admit,
    facts,
    fold_run,
    max_nn,
    run_row,
)
from provgraph.graph.rows import loads_json

Row = dict[str, Any]

KEYED: dict[str, tuple[str, ...]] = {
    prop: ("reproduces_of", "reproduces_verdict") if prop == "reproduces" else CARRIED_RUN_PROPS.get(prop, ())
    for prop in KEYED_RUN_PROPS
}
"""`KEYED_RUN_PROPS`, each with the properties that move with it (a reproduction's original run
and verdict, which the REPRODUCES edge is made from; a failure's traceback)."""
JOB_VERSION_MAX = ("entrypoint", "source_uri", "git_commit", "git_dirty")
"""Job version properties folded as the greatest non-NULL value."""
DATASET_VERSION_MAX = ("kind", "size", "uri", "format", "framework", "meta")
"""Dataset version properties folded as the greatest non-NULL value (a dataset's kind too)."""


def _reproduction(row: Row, reproduces: str | None) -> None:
    """The original run and verdict of a reproduction, which the REPRODUCES edge is made from."""
    repro = loads_json(reproduces)
    row["reproduces_of"] = repro.get("run_id") if repro else None
    row["reproduces_verdict"] = repro.get("verdict") if repro else None


def _fold_max(rows: dict[Any, Row], key: Any, row: Row, props: Iterable[str], mins: Iterable[str] = ()) -> None:
    old = rows.get(key)
    if old is None:
        rows[key] = row
        return
    for p in props:
        old[p] = max_nn(old[p], row[p])
    for p in mins:
        old[p] = min(old[p], row[p])


def param_rows(params: str | None) -> list[Row]:
    """A run's scalar params as `RunParam` nodes (what SQLite's `run_param` holds): numbers in `num`,
    strings and booleans ("true"/"false") in `str`; lists, objects and nulls are not indexed."""
    out: list[Row] = []
    for key, value in (loads_json(params) or {}).items():
        if isinstance(value, bool):
            out.append({"key": key, "num": None, "str": "true" if value else "false"})
        elif isinstance(value, int | float):
            out.append({"key": key, "num": value, "str": None})
        elif isinstance(value, str):
            out.append({"key": key, "num": None, "str": value})
    return out


INDEXED_LABEL_BYTES = 4000
"""A label longer than this (key and value, UTF-8) is a `RunLabelLong` node, outside the (key, value)
index: Neo4j refuses to index a value of more than about 8 kB, and a label may be any text."""


def label_rows(labels: str | None) -> list[Row]:
    """A run's labels as `RunLabel`/`RunLabelLong` nodes (what SQLite's `run_label` holds)."""
    return [
        {"key": k, "value": v, "long": len(k.encode()) + len(v.encode()) > INDEXED_LABEL_BYTES}
        for k, v in (loads_json(labels) or {}).items()
    ]


_RunParts = tuple[
    set[str], dict[tuple[str, int], Row], dict[int, Row], dict[tuple[str, str], Row], dict[tuple[str, str], Row]
]
"""What a run's events bring besides its own row: code hashes, metrics, log chunks, reads, writes."""


def rows_for(events: Sequence[RunEvent], known_at: Sequence[datetime] | None = None) -> dict[str, list[Row]]:
    """The batch folded into one row per node: what `apply` sends, statement by statement;
    `known_at`: each event's ingestion time (see `LineageStore.apply`).

    `Inadmissible` when the batch breaks a write rule by itself; the runs' stored namespaces are
    checked by `Neo4jLineageStore.apply_prepared`, in the write transaction.
    """
    admit(events, {})
    runs: dict[str, Row] = {}
    jobs: dict[tuple[str, str], Row] = {}
    job_versions: dict[tuple[str, str, str], Row] = {}
    dsvs: dict[str, Row] = {}
    # per run: code hashes, (key, step) -> metric, offset -> log chunk, and (dsv, binding) edges read and written
    parts: dict[str, _RunParts] = {}
    for i, event in enumerate(events):
        f = facts(event, known_at[i] if known_at else None)
        run = parts.get(f.run_id)
        if run is None:
            row = runs[f.run_id] = run_row(f)
            row["seqs"] = [f.seq] if f.seq > 0 else []
            run = parts[f.run_id] = (set(), {}, {}, {}, {})
        else:
            row = runs[f.run_id]
            fold_run(row, f)
            seqs = row["seqs"]  # sorted, without duplicates
            if f.seq > 0 and f.seq not in seqs:
                insort(seqs, f.seq)
        code_hashes, run_metrics, run_logs, run_reads, run_wrote = run
        if (f.namespace, f.job_name) not in jobs:
            jobs[(f.namespace, f.job_name)] = {"namespace": f.namespace, "name": f.job_name}
        if f.code is not None:
            c = f.code
            version = job_versions.get((f.namespace, f.job_name, c.code_hash))
            dirty = None if c.git_dirty is None else int(c.git_dirty)
            if version is None:
                job_versions[(f.namespace, f.job_name, c.code_hash)] = {
                    "namespace": f.namespace,
                    "name": f.job_name,
                    "code_hash": c.code_hash,
                    "entrypoint": c.entrypoint,
                    "source_uri": c.source_uri,
                    "git_commit": c.git_commit,
                    "git_dirty": dirty,
                }
            else:
                for p, given in zip(JOB_VERSION_MAX, (c.entrypoint, c.source_uri, c.git_commit, dirty), strict=True):
                    version[p] = max_nn(version[p], given)
            code_hashes.add(c.code_hash)
        for key, step, value in f.metrics:
            m = run_metrics.get((key, step))
            if m is None or f.order_key > m["okey"]:
                run_metrics[(key, step)] = {"key": key, "step": step, "value": encode_float(value), "okey": f.order_key}
        for offset, size, digest in f.logs:
            chunk = run_logs.get(offset)
            if chunk is None or digest > chunk["digest"]:  # as the stores: the greater digest wins
                run_logs[offset] = {"offset": offset, "size": size, "digest": digest}
        for run_edges, found in ((run_reads, f.reads), (run_wrote, f.writes)):
            for d in found:
                node_id = d.node_id
                _fold_max(
                    dsvs,
                    node_id,
                    {
                        "node_id": node_id,
                        "namespace": d.namespace,
                        "name": d.name,
                        "version": d.version,
                        "kind": d.kind,
                        "size": d.size,
                        "uri": d.uri,
                        "format": d.format,
                        "framework": d.framework,
                        "meta": d.meta,
                        "created_at": f.event_time,
                        "known_at": f.known_at,
                    },
                    DATASET_VERSION_MAX,
                    ("created_at", "known_at"),
                )
                _fold_max(
                    run_edges,
                    (node_id, d.binding),
                    {"dsv": node_id, "binding": d.binding, "first_at": f.event_time, "known_at": f.known_at},
                    (),
                    ("first_at", "known_at"),
                )
    for run_id, row in runs.items():
        code_hashes, run_metrics, run_logs, run_reads, run_wrote = parts[run_id]
        _reproduction(row, row["reproduces"])
        row["param_rows"] = param_rows(row["params"])
        row["label_rows"] = label_rows(row["labels"])
        row["code_hashes"] = sorted(code_hashes)
        row["metrics"] = list(run_metrics.values())
        row["logs"] = list(run_logs.values())
        row["reads"] = list(run_reads.values())
        row["wrote"] = list(run_wrote.values())
    return {
        "jobs": list(jobs.values()),
        "job_versions": list(job_versions.values()),
        "dataset_versions": list(dsvs.values()),
        "runs": list(runs.values()),
    }
