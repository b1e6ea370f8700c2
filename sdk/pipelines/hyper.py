"""Hyperparameter runs (MLRun's `hyperparams`): one child run per combination, in parallel step
processes, under a parent run whose results are the iteration table and the best iteration (by
`selector`, e.g. "max.accuracy": a result or, failing that, a metric), and whose outputs are the
best child's (the same content-hashed versions: the parent wrote exactly what the best child made)."""

from __future__ import annotations

import itertools
import random
from typing import Any, cast, get_args

from provgraph._backend import Backend
from provgraph._code import Handler, snapshot
from provgraph._context import Context
from provgraph._execution import RunFailed, RunResult, execute
from provgraph._naming import parse_store_uri
from provgraph._run import new_run_id
from provgraph.events.errors import ConfigError
from provgraph.events.facets import ArtifactKind, JobRef, ParentRunFacet, RunRef
from provgraph.events.facets.standard import RootRef
from provgraph.events.request import RunRequest
from provgraph.pipelines.dsl import Pipeline, Step, default_name
from provgraph.pipelines.engine import DONE, Options, Scheduler
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


def run_hyper(
    handler: Handler,
    params: dict[str, Any],
    inputs: dict[str, str],
    *,
    hyperparams: dict[str, list[Any]],
    strategy: str,
    max_iterations: int | None,
    selector: str | None,
    project: str,
    name: str | None,
    backend: Backend,
) -> RunResult:
    """The parent run; each combination is a child run (its own process, cached like a step)."""
    how, key = parse_selector(selector) if selector else ("", "")
    combos = combinations(hyperparams, strategy, max_iterations)
    job = name or default_name(handler)
    pipe = Pipeline(job, {})
    for i, combo in enumerate(combos, start=1):
        pipe.add(Step(f"{job}-{i}", handler, {**params, **combo}, dict(inputs), ()), explicit_name=True)
    snap = snapshot(handler)
    code = code_facet(snap, backend)
    request = RunRequest(
        run_id=new_run_id(),
        project=project,
        job=job,
        entrypoint=snap.entrypoint,
        code_hash=code.code_hash,
        params={**params, "hyperparams": hyperparams, "strategy": strategy, "selector": selector},
        runtime="hyper",
    )
    ref = JobRef(namespace=project, name=job)
    parent = ParentRunFacet(
        run=RunRef(run_id=request.run_id), job=ref, root=RootRef(run=RunRef(run_id=request.run_id), job=ref)
    )
    scheduler = Scheduler(pipe, backend, project, parent, Options(parallelism=backend.settings.pipeline_parallelism))
    promoted: dict[str, str] = {}

    def orchestrate(ctx: Context) -> dict[str, Any]:
        states = scheduler.run()
        table: list[dict[str, Any]] = []
        for i, st in enumerate(states.values(), start=1):
            table.append(
                {"iteration": i, "run_id": st.run_id, "state": st.state, **combos[i - 1], **st.metrics, **st.results}
            )
        done = [row for row in table if row["state"] in DONE]
        if not done:
            raise RunFailed(f"every one of the {len(table)} iterations failed")
        best = done[0]
        if how:
            scored = [row for row in done if isinstance(row.get(key), int | float)]
            if not scored:
                raise RunFailed(f"no iteration logged a numeric result {key!r} for selector {selector!r}")
            best = (max if how == "max" else min)(scored, key=lambda row: row[key])
        for row in table:
            row["best"] = row is best
        chosen = states[f"{job}-{best['iteration']}"]
        graph = backend.graph()
        for out_key, uri in chosen.outputs.items():
            pinned = parse_store_uri(uri)
            dsv = graph.dataset_version(pinned.namespace, pinned.key, pinned.version or "")
            kind = dsv.kind if dsv is not None and dsv.kind in get_args(ArtifactKind) else "artifact"
            body = backend.artifacts.get_bytes(pinned.version or "")
            artifact = ctx.log_artifact(out_key, body=body, kind=cast(ArtifactKind, kind))
            promoted[out_key] = artifact.uri
        best_results = {k: v for k, v in chosen.results.items() if k not in ("iterations",)}
        return {**best_results, "best_iteration": best["iteration"], "best_run_id": chosen.run_id, "iterations": table}

    result = execute(request, orchestrate, None if snap.unknown else code, backend, code_unknown=snap.unknown)
    result.outputs = dict(promoted)
    return result
