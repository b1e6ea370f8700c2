"""Hyperparameter runs (MLRun's `hyperparams`): one child run per combination, under a parent run
whose results are the iteration table and the best iteration (by `selector`, e.g. "max.accuracy":
a result or, failing that, a metric), and whose outputs are the best child's (the same
content-hashed versions: the parent wrote exactly what the best child made).

The children are the steps of a pipeline with no edges between them. Locally (`run_hyper`) they run
in parallel step processes; on Kubernetes (`remote.submit_hyper`) each is a Job and the pipeline
controller ends the parent. Both end it with `outcome`: one table, one selection, one promotion.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from provgraph._backend import Backend
from provgraph._code import Handler, snapshot
from provgraph._context import Context
from provgraph._execution import RunFailed, RunResult, execute
from provgraph._naming import parse_store_uri
from provgraph._run import new_run_id
from provgraph.events.errors import ConfigError
from provgraph.events.facets import JobRef, ParentRunFacet, RunRef
from provgraph.events.facets.standard import RootRef
from provgraph.events.model import Dataset
from provgraph.events.request import RunRequest
from provgraph.graph.contract import LineageStore
from provgraph.graph.views import DatasetRef
from provgraph.pipelines.cache import copy_dataset
from provgraph.pipelines.dsl import Pipeline, Step, default_name
from provgraph.pipelines.engine import DONE, Options, Scheduler, StepState
from provgraph.runtimes.local import code_facet

STRATEGIES = ("grid", "list", "random")
RANDOM_ITERATIONS = 10


def combinations(
    hyperparams: dict[str, list[Any]], strategy: str, max_iterations: int | None, seed: int | None = None
) -> list[dict[str, Any]]:
    """grid: every combination; list: the i-th value of every list together; random: draws."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    if not hyperparams or any(not isinstance(v, list) or not v for v in hyperparams.values()):
        raise ConfigError("hyperparams map each name to a non-empty list of values")
    keys = list(hyperparams)
    if strategy == "grid":
        combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*hyperparams.values())]
    elif strategy == "list":
        lengths = {len(v) for v in hyperparams.values()}
        if len(lengths) != 1:
            raise ConfigError("strategy 'list' needs lists of one length")
        combos = [{k: hyperparams[k][i] for k in keys} for i in range(lengths.pop())]
    else:
        rng = random.Random(seed)
        combos = [{k: rng.choice(hyperparams[k]) for k in keys} for _ in range(max_iterations or RANDOM_ITERATIONS)]
    return combos[:max_iterations] if max_iterations else combos


def parse_selector(selector: str) -> tuple[str, str]:
    """ "max.accuracy" -> ("max", "accuracy")."""
    how, _, key = selector.partition(".")
    if how not in ("max", "min") or not key:
        raise ConfigError(f"selector {selector!r} must look like max.<result> or min.<result>")
    return how, key


def child_name(job: str, iteration: int) -> str:
    """The step (and job) name of iteration `iteration` (1-based) of hyperparameter run `job`."""
    return f"{job}-{iteration}"


def children(
    handler: Handler | str, params: dict[str, Any], inputs: dict[str, str], combos: list[dict[str, Any]], job: str
) -> Pipeline:
    """The child runs as steps of a pipeline without edges (so they all run at once)."""
    pipe = Pipeline(job, {})
    for i, combo in enumerate(combos, start=1):
        pipe.add(Step(child_name(job, i), handler, {**params, **combo}, dict(inputs), ()), explicit_name=True)
    return pipe


@dataclass(frozen=True)
class HyperSearch:
    """A hyperparameter search: the values to try, how to combine them, and how to pick the best."""

    hyperparams: dict[str, list[Any]]
    strategy: str = "grid"
    max_iterations: int | None = None
    selector: str | None = None

    def combos(self) -> list[dict[str, Any]]:
        """The combinations to run; `ConfigError` for a bad strategy, value lists or selector."""
        if self.selector:
            parse_selector(self.selector)
        return combinations(self.hyperparams, self.strategy, self.max_iterations)

    def parent_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """What the parent run records as its params."""
        return {**params, "hyperparams": self.hyperparams, "strategy": self.strategy, "selector": self.selector}


def parent_of(run_id: str, project: str, job: str) -> ParentRunFacet:
    ref = JobRef(namespace=project, name=job)
    return ParentRunFacet(run=RunRef(run_id=run_id), job=ref, root=RootRef(run=RunRef(run_id=run_id), job=ref))


def outcome(
    job: str, combos: list[dict[str, Any]], states: dict[str, StepState], selector: str | None, graph: LineageStore
) -> tuple[dict[str, Any], list[Dataset], dict[str, str]]:
    """The parent's results (the iteration table, the best iteration and its results), the best
    child's outputs as the parent's (the same versions, copied from the graph: no data is read) and
    their URIs. `RunFailed` when no child completed, or none logged the selector's key as a number."""
    how, key = parse_selector(selector) if selector else ("", "")
    table: list[dict[str, Any]] = []
    for i, combo in enumerate(combos, start=1):
        st = states[child_name(job, i)]
        table.append({"iteration": i, "run_id": st.run_id, "state": st.state, **combo, **st.metrics, **st.results})
    done = [row for row in table if row["state"] in DONE]
    if not done:
        raise RunFailed(f"every one of the {len(table)} iterations failed")
    best = done[0]
    if how:
        scored = [row for row in done if isinstance(row.get(key), int | float) and not isinstance(row[key], bool)]
        if not scored:
            raise RunFailed(f"no iteration logged a numeric result {key!r} for selector {selector!r}")
        best = (max if how == "max" else min)(scored, key=lambda row: row[key])
    for row in table:
        row["best"] = row is best
    chosen = states[child_name(job, best["iteration"])]
    promoted: list[Dataset] = []
    for out_key, uri in chosen.outputs.items():
        pinned = parse_store_uri(uri)
        ref = DatasetRef(namespace=pinned.namespace, name=pinned.key, version=pinned.version or "", binding=out_key)
        promoted.append(copy_dataset(graph, ref, output=True))
    results = {k: v for k, v in chosen.results.items() if k != "iterations"}
    results |= {"best_iteration": best["iteration"], "best_run_id": chosen.run_id, "iterations": table}
    return results, promoted, dict(chosen.outputs)


def run_hyper(
    handler: Handler,
    params: dict[str, Any],
    inputs: dict[str, str],
    search: HyperSearch,
    *,
    project: str,
    name: str | None,
    backend: Backend,
) -> RunResult:
    """The parent run; each combination is a child run (its own process, cached like a step)."""
    combos = search.combos()
    job = name or default_name(handler)
    pipe = children(handler, params, inputs, combos, job)
    snap = snapshot(handler)
    code = code_facet(snap, backend)
    request = RunRequest(
        run_id=new_run_id(),
        project=project,
        job=job,
        entrypoint=snap.entrypoint,
        code_hash=code.code_hash,
        params=search.parent_params(params),
        runtime="hyper",
    )
    parent = parent_of(request.run_id, project, job)
    scheduler = Scheduler(pipe, backend, project, parent, Options(parallelism=backend.settings.pipeline_parallelism))
    promoted: dict[str, str] = {}

    def orchestrate(ctx: Context) -> dict[str, Any]:
        results, outputs, uris = outcome(job, combos, scheduler.run(), search.selector, backend.graph())
        if outputs:
            ctx._emitter.running(outputs=outputs)
        promoted.update(uris)
        return results

    result = execute(request, orchestrate, None if snap.unknown else code, backend, code_unknown=snap.unknown)
    result.outputs = dict(promoted)
    return result
