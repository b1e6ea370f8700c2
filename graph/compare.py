"""Runs side by side (`provgraph compare`, GraphQL `compareRuns`): one row per param, metric,
result, input, output, code and environment fact, a value per run, and whether they differ.

Built from `RunView`s only, so both stores and both front ends compare alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from provgraph.events.facets.values import encode_float
from provgraph.graph.views import DatasetRef, RunView, View

MAX_COMPARED = 20
"""Runs one comparison may hold."""
ENVIRONMENT = ("kind", "image", "python", "packages_digest", "host")
"""Runtime facts compared (process ids and heartbeats differ by nature, and are left out)."""


class ComparisonRow(View):
    section: str
    """run, code, params, metrics, results, inputs, outputs or environment."""
    key: str
    values: list[Any] = Field(description="One per run, in the order asked; null where a run has none")
    differs: bool


class Comparison(View):
    run_ids: list[str]
    rows: list[ComparisonRow]


def _ref(d: DatasetRef) -> str:
    return f"{d.namespace}/{d.name}@{d.version}"


def _refs(refs: Sequence[DatasetRef]) -> dict[str, Any]:
    """By binding (the handler's name for it), several versions under one binding joined."""
    out: dict[str, list[str]] = {}
    for d in refs:
        out.setdefault(d.binding or d.name, []).append(_ref(d))
    return {k: v[0] if len(v) == 1 else sorted(v) for k, v in out.items()}


SECTIONS: tuple[tuple[str, Callable[[RunView], dict[str, Any]]], ...] = (
    ("run", lambda r: {"project": r.namespace, "job": r.job_name, "state": str(r.state)}),
    (
        "code",
        lambda r: {
            "code_hash": r.code_hash,
            "git_commit": r.job_version.git_commit if r.job_version else None,
            "entrypoint": r.entrypoint,
        },
    ),
    ("params", lambda r: r.params),
    ("metrics", lambda r: {k: encode_float(v) for k, v in r.metrics.items()}),
    ("results", lambda r: r.results),
    ("inputs", lambda r: _refs(r.inputs)),
    ("outputs", lambda r: _refs(r.outputs)),
    ("environment", lambda r: {k: r.runtime.get(k) for k in ENVIRONMENT}),
)


def compare(runs: Sequence[RunView]) -> Comparison:
    """Every key any of the runs has, per section, in first-seen order; `differs` compares JSON."""
    rows: list[ComparisonRow] = []
    for section, facts in SECTIONS:
        per_run = [facts(r) for r in runs]
        keys = dict.fromkeys(k for values in per_run for k in values)
        for key in keys:
            values = [v.get(key) for v in per_run]
            canon = {json.dumps(v, sort_keys=True, default=str) for v in values}
            rows.append(ComparisonRow(section=section, key=key, values=values, differs=len(canon) > 1))
    return Comparison(run_ids=[r.run_id for r in runs], rows=rows)
