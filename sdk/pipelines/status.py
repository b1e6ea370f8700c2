"""A pipeline run's steps as the graph knows them: the states its run recorded when it ended, or,
while it runs, the states of its step runs (CHILD_OF) so far. Shared by the CLI and GraphQL.

The record is a run's results, which any producer may write: whatever does not have the expected
shape is left out rather than trusted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provgraph.graph.views import RunView

CACHED = "CACHED"


@dataclass
class StepStatus:
    name: str
    state: str
    run_id: str | None = None
    cached_from: str | None = None
    attempts: int = 0
    reason: str | None = None
    duration_s: float | None = None
    upstream: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)


def is_pipeline_run(run: RunView) -> bool:
    return run.runtime.get("kind") == "pipeline"


def steps_of(run: RunView, children: list[RunView]) -> list[StepStatus]:
    """Recorded steps first (in run order), then step runs the record does not list yet."""
    recorded = run.results.get("steps")
    out: dict[str, StepStatus] = {}
    for body in recorded if isinstance(recorded, list) else []:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            continue
        name = body["name"]
        out[name] = StepStatus(
            name=str(name),
            state=str(body.get("state", "")),
            run_id=_str(body.get("run_id")),
            cached_from=_str(body.get("cached_from")),
            attempts=body["attempts"] if type(body.get("attempts")) is int else 0,
            reason=_str(body.get("reason")),
            duration_s=float(body["duration_s"]) if isinstance(body.get("duration_s"), int | float) else None,
            upstream=[u for u in _list(body.get("upstream")) if isinstance(u, str)],
            outputs={str(k): str(v) for k, v in _dict(body.get("outputs")).items()},
        )
    for child in children:
        if child.job_name in out:
            continue
        took = (child.ended_at - child.started_at).total_seconds() if child.ended_at and child.started_at else None
        out[child.job_name] = StepStatus(
            name=child.job_name,
            state=CACHED if child.cached_from else child.state.value,
            run_id=child.run_id,
            cached_from=child.cached_from,
            reason=child.error,
            duration_s=took,
        )
    return list(out.values())


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
