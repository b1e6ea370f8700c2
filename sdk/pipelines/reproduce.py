"""`provgraph reproduce PIPELINE_RUN_ID`: re-run every step of a pipeline run from the graph (never
from cache), each pinned by hashes exactly as a single run's reproduction is, and give a verdict
per step and one for the whole pipeline (REPRODUCED only when every step is)."""

from __future__ import annotations

from dataclasses import dataclass

from provgraph._backend import Backend
from provgraph._execution import RunResult
from provgraph._reproduce import reproduce
from provgraph.events.errors import NotFound, ReproduceRefused
from provgraph.events.model import RunState
from provgraph.pipelines.status import is_pipeline_run


@dataclass
class StepVerdict:
    step: str
    original_run_id: str
    verdict: str
    """REPRODUCED, DIVERGED, FAILED, or REFUSED (the graph does not pin the step well enough)."""
    result: RunResult | None = None
    reason: str | None = None


@dataclass
class PipelineVerdict:
    run_id: str
    verdict: str
    steps: list[StepVerdict]


def overall(steps: list[StepVerdict]) -> str:
    verdicts = {s.verdict for s in steps}
    for worst in ("REFUSED", "FAILED", "DIVERGED"):
        if worst in verdicts:
            return worst
    return "REPRODUCED"


def reproduce_pipeline(run_id: str, backend: Backend, *, runtime: str | None = None) -> PipelineVerdict:
    """Reproduce each COMPLETE step of pipeline run `run_id` (a cached step is re-executed too)."""
    graph = backend.graph()
    run = graph.run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    if not is_pipeline_run(run):
        raise ReproduceRefused(f"run {run_id} is not a pipeline run")
    if run.state != RunState.COMPLETE:
        raise ReproduceRefused(f"pipeline run {run_id} ended {run.state}; only completed pipelines can be reproduced")
    steps: list[StepVerdict] = []
    for child in graph.children(run_id):
        if child.state != RunState.COMPLETE:  # a failed attempt of a retried step
            continue
        try:
            result = reproduce(child.run_id, runtime=runtime, backend=backend)
        except ReproduceRefused as exc:
            steps.append(StepVerdict(child.job_name, child.run_id, "REFUSED", reason=str(exc)))
            continue
        verdict = result.verdict.verdict if result.verdict is not None else "FAILED"
        steps.append(StepVerdict(child.job_name, child.run_id, verdict, result=result, reason=result.error))
    return PipelineVerdict(run_id, overall(steps), steps)
