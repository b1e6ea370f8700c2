"""`pipeline rerun RUN_ID --plan`: which steps of a recorded pipeline run would run again, and why,
decided from the graph before anything runs; and `stale`: what a changed dataset makes out of date.

A step is reused when the graph holds a COMPLETE run with its code hash, params, input content
hashes and runtime (the cache rule); otherwise the plan says what differs from the step's previous
run. A step downstream of one that re-runs can only be decided once that step's outputs exist: it
is reused if they come out unchanged (the plan says so: `run?`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from provgraph._backend import Backend
from provgraph._dataitem import DataItem
from provgraph._naming import dataset_identity, is_store_uri, parse_store_uri, resolve_version
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import JobRef, ParentRunFacet, RunRef
from provgraph.events.model import RunState
from provgraph.graph.ids import NodeId
from provgraph.graph.views import Direction, LineageNode, RunView
from provgraph.pipelines.cache import find_cached, output_uris, reasons
from provgraph.pipelines.dsl import OutputRef, ResultRef
from provgraph.pipelines.engine import PipelineResult, StepState, load_pipeline, pipeline_spec, prepare, run_pipeline
from provgraph.pipelines.remote import runtime_key, submit_pipeline

REUSE, RUN, MAYBE, SKIP = "reuse", "run", "run?", "skip"


@dataclass
class PlannedStep:
    name: str
    action: str
    reasons: list[str] = field(default_factory=list)
    cached_from: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    run_id: str
    project: str
    spec: str
    params: dict[str, Any]
    steps: list[PlannedStep]
    image: str | None = None
    """The steps' image when the run used the kubernetes engine (the rerun goes through the controller)."""
    resources: dict[str, str] = field(default_factory=dict)


def pipeline_run(run_id: str, backend: Backend) -> RunView:
    run = backend.graph().run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    if not run.state.is_terminal:
        hint = f"record its end with `provgraph abort {run_id}`" if run.state == RunState.LOST else "wait for its end"
        raise ConfigError(f"pipeline run {run_id} is {run.state}; {hint}, then rerun it")
    return run


def plan_rerun(run_id: str, backend: Backend, params: dict[str, Any] | None = None, *, cache: bool = True) -> Plan:
    """The plan of re-running pipeline run `run_id` (with `params` overriding its recorded ones)."""
    run = pipeline_run(run_id, backend)
    spec = pipeline_spec(run)
    merged = {**run.params, **(params or {})}
    pipe = load_pipeline(spec).build(merged)
    order = pipe.validate()
    graph = backend.graph()
    previous = {c.job_name: c for c in graph.children(run_id)}
    job = JobRef(namespace=run.namespace, name=pipe.name)
    parent = ParentRunFacet(run=RunRef(run_id=run_id), job=job)
    # the kubernetes engine names the steps' image on the pipeline run (local and kfp runs have none)
    image = run.runtime.get("image") or None
    planned: dict[str, PlannedStep] = {}
    for name in order:
        s = pipe.steps[name]
        skipped = sorted(u for u in s.upstream if planned[u].action == SKIP)
        if skipped:
            planned[name] = PlannedStep(name, SKIP, [f"upstream step {skipped[0]} is skipped"])
            continue
        pending = sorted(u for u in s.upstream if planned[u].action in (RUN, MAYBE))
        if pending:
            planned[name] = PlannedStep(
                name, MAYBE, [f"upstream step {u} re-runs; reused if its outputs come out unchanged" for u in pending]
            )
            continue
        if s.when is not None and not s.when.holds(planned[s.when.ref.step].results):
            planned[name] = PlannedStep(name, SKIP, [f"condition {s.when} is false"])
            continue
        step_params = {
            k: planned[v.step].results.get(v.key) if isinstance(v, ResultRef) else v for k, v in s.params.items()
        }
        inputs = {k: planned[v.step].outputs[v.key] if isinstance(v, OutputRef) else v for k, v in s.inputs.items()}
        if s.is_hub:
            planned[name] = PlannedStep(name, RUN, ["hub:// steps are not cached"])
            continue
        prepared = prepare(s, step_params, inputs, backend, run.namespace, parent)
        key = prepared.key if image is None else replace(prepared.key, runtime=runtime_key(image))
        source = find_cached(graph, backend, run.namespace, key) if cache and s.cache else None
        if source is not None:
            planned[name] = PlannedStep(
                name, REUSE, cached_from=source.run_id, outputs=output_uris(source), results=dict(source.results)
            )
            continue
        before = previous.get(name)
        detail = graph.run(before.run_id) if before is not None else None
        why = reasons(detail, key, name)
        if not why:
            why = ["caching is off" if not (cache and s.cache) else "the previous run's outputs are no longer stored"]
        planned[name] = PlannedStep(name, RUN, why)
    resources = run.runtime.get("resources") if image else None
    return Plan(run_id, run.namespace, spec, merged, [planned[n] for n in order], image, dict(resources or {}))


def execute_plan(
    plan: Plan, backend: Backend, *, cache: bool = True, progress: Callable[[StepState], None] | None = None
) -> PipelineResult:
    """Run the pipeline of `plan` again: locally (a KFP-engine run too), or, for a kubernetes-engine run,
    submitted to the pipeline controller, which decides each step by the same cache rule."""
    if plan.image is not None:
        return submit_pipeline(
            plan.spec,
            plan.params,
            image=plan.image,
            resources=plan.resources,
            project=plan.project,
            cache=cache,
            backend=backend,
        )
    return run_pipeline(plan.spec, plan.params, project=plan.project, cache=cache, backend=backend, progress=progress)


# -- stale --------------------------------------------------------------------------------------


@dataclass
class Staleness:
    dataset: str
    current: str
    stale_runs: list[LineageNode]
    stale_datasets: list[LineageNode]


def stale(target: str, backend: Backend, depth: int = 20) -> Staleness:
    """Runs and artifacts downstream of any version of `target` other than its current one.

    `target` is a dataset URI: a file or URL (its current content is hashed), or `store://p/key`
    (its latest version), `store://p/key:alias` or `store://p/key@sha256:…` (that version is the new one)."""
    graph = backend.graph()
    namespace, name = dataset_identity(target)
    if is_store_uri(target):
        try:
            current = resolve_version(parse_store_uri(target), graph)
        except NotFound:
            current = ""
    else:
        current = DataItem("target", target, s3_endpoint_url=backend.settings.s3_endpoint_url).hash
    dataset = graph.dataset(namespace, name)
    if dataset is None:
        raise NotFound(f"no dataset {target} in the graph")
    known = {v.version for v in dataset.versions}
    fresh = _downstream(backend, NodeId.dataset(namespace, name, current), depth) if current in known else {}
    stale_nodes: dict[str, LineageNode] = {}
    for v in dataset.versions:
        if v.version == current:
            continue
        for node in _downstream(backend, NodeId.dataset(namespace, name, v.version), depth).values():
            if node.hop > 0 and node.id not in fresh:
                stale_nodes.setdefault(node.id, node)
    ordered = sorted(stale_nodes.values(), key=lambda n: (n.hop, n.label))
    return Staleness(
        dataset=f"{target}",
        current=current,
        stale_runs=[n for n in ordered if n.kind == "run"],
        stale_datasets=[n for n in ordered if n.kind != "run"],
    )


def _downstream(backend: Backend, node: NodeId, depth: int) -> dict[str, LineageNode]:
    g = backend.graph().lineage(node, Direction.DOWNSTREAM, depth=depth, fan_out=1000)
    return {n.id: n for n in g.nodes}
