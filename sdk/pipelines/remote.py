"""The kubernetes pipeline engine: the client records the pipeline run and stores its DAG as a
document; the pipeline controller (`provgraph pipeline-controller`) advances it from run events.

The client does everything that needs the user's code or files: it builds and validates the DAG,
snapshots each step's code, computes each step's effective params and hashes its static inputs.
The result, a `PipelineDocument`, is stored content-addressed in the artifact store and named by
the pipeline run's REQUESTED event (`provgraph_requested.request_hash`, runtime
`pipeline:kubernetes`). The controller never imports user code: `advance` needs only the document
and the graph (the pipeline run's step runs, CHILD_OF it, and earlier runs for the cache).

`advance` is a pure decision from what the graph holds, so any controller, restarted at any time,
makes the same one. A step's run id is derived from the pipeline run id, the step's name and the
attempt (`step_run_id`): a step requested twice (a controller crashed between requesting it and
seeing its REQUESTED event) is one run and one Job (the launcher meets 409 AlreadyExists).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from provgraph._backend import Backend
from provgraph._code import Handler, snapshot
from provgraph._emitter import RunEmitter
from provgraph._execution import RunFailed, RunResult, effective_params
from provgraph._naming import is_store_uri, normalise, run_project
from provgraph._run import new_run_id, resolve_named
from provgraph.events.errors import ConfigError
from provgraph.events.facets import CodeJobFacet, FunctionRef, RequestedRunFacet, RuntimeRunFacet
from provgraph.events.model import RunState
from provgraph.events.request import RunRequest, dumps_request, secrets_problem
from provgraph.graph.contract import LineageStore
from provgraph.graph.views import DatasetRef, RunView
from provgraph.pipelines.cache import StepKey, find_cached, input_ids, output_uris, record_cached
from provgraph.pipelines.dsl import (
    Condition,
    OutputRef,
    Pipeline,
    PipelineDef,
    PipelineError,
    ResultRef,
    as_pipeline,
    default_name,
    resolve,
)
from provgraph.pipelines.engine import CACHED, DONE, SKIPPED, PipelineResult, StepState, load_pipeline, record
from provgraph.pipelines.hyper import HyperSearch, child_name, children, outcome, parent_of, parse_selector
from provgraph.runtimes.local import code_facet

PENDING = "PENDING"
ENGINE = "pipeline:kubernetes"
"""`provgraph_requested.runtime` of a pipeline run the controller advances."""
_RUN_IDS = uuid.UUID("7d0c0f64-5b8e-4e8f-9d0c-6a1f3b2e9c41")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocRef(_Doc):
    step: str
    key: str


class DocCondition(_Doc):
    ref: DocRef
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: Any


class DocStep(_Doc):
    """One step as the controller needs it: everything but the user's code, which is in the store."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    entrypoint: str
    code_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    git_commit: str | None = None
    git_dirty: bool | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    param_refs: dict[str, DocRef] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    input_ids: dict[str, tuple[str, str, str]] = Field(default_factory=dict)
    """Content identity of each static input, hashed by the client (the controller reads no files)."""
    input_refs: dict[str, DocRef] = Field(default_factory=dict)
    upstream: list[str] = Field(default_factory=list)
    when: DocCondition | None = None
    retries: int = Field(default=0, ge=0, le=10)
    cache: bool = True
    function: FunctionRef | None = None
    """A `hub://` step's item, resolved by the client (its code is the snapshot `code_hash`)."""


class HyperSpec(_Doc):
    """A hyperparameter run's iterations (step `<job>-<i>` ran `combos[i - 1]`) and its selector."""

    combos: list[dict[str, Any]] = Field(min_length=1)
    selector: str | None = None

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None:
            parse_selector(value)  # ConfigError is a ValueError: a validation error here
        return value


class PipelineDocument(_Doc):
    """A pipeline run's DAG, stored content-addressed; the controller's only input besides events.
    With `hyper` it is a hyperparameter run: the controller ends it as `hyper.outcome` says."""

    run_id: str
    project: str
    name: str
    spec: str | None = None
    image: str
    resources: dict[str, str] = Field(default_factory=dict)
    namespace: str | None = None
    cache: bool = True
    secrets: list[str] = Field(default_factory=list)
    hyper: HyperSpec | None = None
    steps: list[DocStep]
    """In run order (dependency order, declaration order among independent steps)."""

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        problem = secrets_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _iterations(self) -> PipelineDocument:
        """A hyperparameter run's steps are its iterations, one per combination, without edges."""
        if self.hyper is not None:
            expected = [child_name(self.name, i) for i in range(1, len(self.hyper.combos) + 1)]
            if [s.name for s in self.steps] != expected or any(s.upstream or s.when is not None for s in self.steps):
                raise ValueError(f"a hyperparameter run's steps must be {', '.join(expected)}, independent")
        return self


def step_run_id(pipeline_run_id: str, step: str, attempt: int) -> str:
    """The run id of attempt `attempt` (1-based) of `step` in pipeline run `pipeline_run_id`: the
    same for every controller, so a re-request is the same run (and the same Job)."""
    return str(uuid.uuid5(_RUN_IDS, f"{pipeline_run_id}/{step}/{attempt}"))


def runtime_key(image: str) -> dict[str, Any]:
    """What a cache source of a kubernetes step must have run in: the same image."""
    return {"kind": "kubernetes", "image": image}


# -- the client ---------------------------------------------------------------------------------


def document(pipe: Pipeline, run_id: str, project: str, backend: Backend, **options: Any) -> PipelineDocument:
    """The stored form of `pipe` (validated): code snapshotted, params bound, static inputs hashed."""
    order = pipe.validate()
    steps: list[DocStep] = []
    for name in order:
        s = pipe.steps[name]
        function: FunctionRef | None = None
        if s.is_hub:  # resolved here, once: the controller and the pods never ask the hub
            named = resolve_named(str(s.handler), backend)
            function = named.ref()
            snap, func = named.snapshot(function), named.load(backend)
        else:
            func = resolve(s)
            snap = snapshot(func)
        if snap.unknown:
            raise PipelineError(f"step {name!r}: its code cannot be snapshotted ({snap.unknown})")
        code = code_facet(snap, backend)
        static = {k: v for k, v in s.params.items() if not isinstance(v, ResultRef)}
        refs = {k: DocRef(step=v.step, key=v.key) for k, v in s.params.items() if isinstance(v, ResultRef)}
        inputs = {
            k: v if is_store_uri(v) else normalise(v) for k, v in s.inputs.items() if not isinstance(v, OutputRef)
        }
        params = {k: v for k, v in effective_params(func, static, dict.fromkeys(s.inputs, "")).items() if k not in refs}
        when = None
        if s.when is not None:
            ref = DocRef(step=s.when.ref.step, key=s.when.ref.key)
            when = DocCondition.model_validate({"ref": ref, "op": s.when.op, "value": s.when.value})
        steps.append(
            DocStep(
                name=name,
                entrypoint=code.entrypoint,
                code_hash=code.code_hash,
                git_commit=code.git_commit,
                git_dirty=code.git_dirty,
                params=params,
                param_refs=refs,
                inputs=inputs,
                input_ids=input_ids(inputs, backend),
                input_refs={k: DocRef(step=v.step, key=v.key) for k, v in s.inputs.items() if isinstance(v, OutputRef)},
                upstream=sorted(s.upstream),
                when=when,
                retries=s.retries,
                cache=s.cache and not s.is_hub,  # as on the local engine: hub steps are not cached
                function=function,
            )
        )
    return PipelineDocument(run_id=run_id, project=project, name=pipe.name, steps=steps, **options)


def submit_pipeline(
    spec: str | PipelineDef | Callable[..., Any],
    params: dict[str, Any] | None,
    *,
    image: str,
    backend: Backend | None = None,
    project: str | None = None,
    cache: bool = True,
    resources: dict[str, str] | None = None,
    namespace: str | None = None,
) -> PipelineResult:
    """Record a pipeline run for the controller (state REQUESTED); nothing runs here. The steps run
    as Jobs in `image` once the pipeline controller and the launcher see it (docs/PIPELINES.md)."""
    from provgraph._backend import default_backend
    from provgraph.events.transport.factory import kafka_config

    backend = backend or default_backend()

    kafka_config(backend.settings)  # the controller and the launcher are reached through Kafka only
    definition = load_pipeline(spec) if isinstance(spec, str) else as_pipeline(spec)
    pipe = definition.build(params)
    project = run_project(project, backend.settings.project)
    snap = snapshot(definition.func)
    source = (
        spec
        if isinstance(spec, str)
        else (f"{snap.source_path}:{getattr(definition.func, '__name__', pipe.name)}" if snap.source_path else None)
    )
    run_id = new_run_id()
    doc = document(
        pipe,
        run_id,
        project,
        backend,
        spec=source,
        image=image,
        resources=dict(resources or {}),
        namespace=namespace,
        cache=cache,
    )
    code = None if snap.unknown else code_facet(snap, backend)
    record_requested(doc, code, pipe.params, "pipeline", backend)
    states = {s.name: StepState(s.name, PENDING, s.upstream) for s in doc.steps}
    return PipelineResult(run_id, project, pipe.name, RunState.REQUESTED, states)


def submit_hyper(
    handler: Handler,
    params: dict[str, Any],
    inputs: dict[str, str],
    search: HyperSearch,
    *,
    project: str,
    name: str | None,
    image: str | None,
    resources: dict[str, str] | None,
    secrets: list[str] | None,
    backend: Backend,
) -> RunResult:
    """Record a hyperparameter run for the controller (state REQUESTED): each combination becomes a
    Job through the launcher; the controller ends the parent with the iteration table and the best
    child's outputs once every child has ended (`hyper.outcome`, as a local hyperparameter run)."""
    from provgraph.events.transport.factory import kafka_config

    if not image:
        raise ConfigError("the kubernetes runtime needs a container image: pass image=... (or --image)")
    kafka_config(backend.settings)  # the controller and the launcher are reached through Kafka only
    combos = search.combos()
    job = name or default_name(handler)
    run_id = new_run_id()
    doc = document(
        children(handler, params, inputs, combos, job),
        run_id,
        project,
        backend,
        image=image,
        resources=dict(resources or {}),
        secrets=list(secrets or []),
        hyper=HyperSpec(combos=combos, selector=search.selector),
    )
    snap = snapshot(handler)
    code = None if snap.unknown else code_facet(snap, backend)
    position = record_requested(doc, code, search.parent_params(params), "hyper", backend)
    return RunResult(run_id, project, job, RunState.REQUESTED, position=position)


def record_requested(
    doc: PipelineDocument, code: CodeJobFacet | None, params: dict[str, Any], kind: str, backend: Backend
) -> str | None:
    """Store `doc` and record its run REQUESTED, naming the document for the controller; the
    REQUESTED event's consistency token."""
    digest, _ = backend.artifacts.put_bytes(doc.model_dump_json().encode())
    emitter = pipeline_emitter(doc, code, backend)
    emitter.requested(
        params,
        RuntimeRunFacet(kind=kind, image=doc.image, resources=doc.resources, secrets=doc.secrets or None),
        RequestedRunFacet(request_hash=digest, runtime=ENGINE),
    )
    backend.transport.flush()
    return emitter.position()


def pipeline_emitter(doc: PipelineDocument, code: CodeJobFacet | None, backend: Backend) -> RunEmitter:
    """The pipeline run's events: its REQUESTED from the client, its end from the controller."""
    return RunEmitter(backend.transport, run_id=doc.run_id, namespace=doc.project, job_name=doc.name, code=code)


def load_document(digest: str, backend: Backend) -> PipelineDocument:
    """The stored document `digest`; `ConfigError` when missing or not a pipeline document."""
    if not digest.startswith("sha256:") or not backend.artifacts.exists(digest):
        raise ConfigError(f"pipeline document {digest} is not in the artifact store")
    try:
        return PipelineDocument.model_validate_json(backend.artifacts.get_bytes(digest))
    except ValueError as exc:
        raise ConfigError(f"{digest} is not a pipeline document: {exc}") from exc


# -- the controller's decision ------------------------------------------------------------------


@dataclass
class Decision:
    """What `advance` did for one pipeline run."""

    requested: dict[str, str]
    """Step -> run id of the runs requested (a Job each)."""
    cached: dict[str, str]
    """Step -> run id of the runs recorded CACHED_FROM an earlier one (no Job)."""
    finished: RunState | None = None


Submit = Callable[[RunRequest, CodeJobFacet], None]
"""Publish one step's run request (and record it REQUESTED)."""


def _latest(step: DocStep, doc: PipelineDocument, runs: dict[str, RunView]) -> tuple[RunView | None, int]:
    """The run of the step's latest attempt the graph holds, and that attempt (0: none yet)."""
    latest: tuple[RunView | None, int] = (None, 0)
    for n in range(1, step.retries + 2):
        run = runs.get(step_run_id(doc.run_id, step.name, n))
        if run is None:
            break
        latest = (run, n)
    return latest


def _state(step: DocStep, run: RunView | None, attempt: int) -> StepState:
    state = StepState(step.name, PENDING, list(step.upstream))
    if run is None:
        return state
    state.run_id, state.attempts = run.run_id, attempt
    state.state = CACHED if run.cached_from else run.state.value
    state.cached_from, state.reason = run.cached_from, run.error
    state.outputs, state.results, state.metrics = output_uris(run), dict(run.results), dict(run.metrics)
    if run.started_at and run.ended_at:
        state.duration_s = round((run.ended_at - run.started_at).total_seconds(), 4)
    return state


def advance(
    doc: PipelineDocument,
    children: list[RunView],
    backend: Backend,
    submit: Submit,
    acted: Callable[[str], bool] = lambda run_id: False,
) -> Decision:
    """Request every step that is ready and not yet requested; end the pipeline run once every step
    has settled. `children` are the step runs the graph holds (CHILD_OF the pipeline run); `acted`
    says whether this controller already requested a run id it cannot see yet."""
    runs = {c.run_id: c for c in children}
    graph = backend.graph()
    views = _Views(graph)
    states: dict[str, StepState] = {}
    decision = Decision({}, {})
    open_steps = False
    for step in doc.steps:
        run, attempt = _latest(step, doc, runs)
        if run is not None and run.state in (RunState.COMPLETE, RunState.FAIL, RunState.ABORT):
            views.ended[step.name] = run.run_id
        state = states[step.name] = _state(step, run, attempt)
        if state.state in (*DONE, SKIPPED):
            continue
        if state.state != PENDING and not RunState(state.state).is_terminal:
            open_steps = True  # requested or running: its end is an event to come
            continue
        if state.state != PENDING:
            if attempt > step.retries:
                continue  # failed, no retries left
            state.state = PENDING  # the next attempt is requested below
        blocked = _blocked(step, states)
        if blocked is not None:
            state.state, state.reason = SKIPPED, blocked
            continue
        if any(states[u].state not in DONE for u in step.upstream):
            open_steps = True
            continue  # waits for its upstream steps
        run_id = step_run_id(doc.run_id, step.name, attempt + 1)
        if acted(run_id):
            open_steps = True
            continue
        try:
            request, key = _request(doc, step, states, views, run_id, backend)
        except PipelineError as exc:
            state.state, state.reason = RunState.FAIL.value, str(exc)
            continue
        open_steps = True
        code = CodeJobFacet(
            code_hash=step.code_hash,
            entrypoint=step.entrypoint,
            source_uri=backend.artifacts.uri(step.code_hash),
            git_commit=step.git_commit,
            git_dirty=step.git_dirty,
        )
        source = find_cached(graph, backend, doc.project, key) if doc.cache and step.cache else None
        if source is not None:
            record_cached(backend, request, code, source, key)
            decision.cached[step.name] = run_id
        else:
            submit(request, code)
            decision.requested[step.name] = run_id
    if not open_steps:
        for name in views.ended:
            views.outputs(name, states)
        decision.finished = _finish(doc, states, backend)
    return decision


class _Views:
    """Ended step runs read whole (with their inputs and outputs) only when a decision needs their
    outputs: `children` gives the rest, and reading every ended step on every event made each
    decision cost as much as the steps already done (quadratic in a long pipeline)."""

    def __init__(self, graph: LineageStore) -> None:
        self.graph = graph
        self.ended: dict[str, str] = {}
        """Step -> run id of its latest run when that run ended (COMPLETE, FAIL, ABORT)."""
        self._read: dict[str, RunView] = {}

    def outputs(self, name: str, states: dict[str, StepState]) -> list[DatasetRef]:
        """The outputs of step `name`'s ended run; its state gets their pinned URIs."""
        if name not in self._read:
            run = self.graph.run(self.ended[name]) if name in self.ended else None
            if run is not None:
                self._read[name] = run
                states[name].outputs = output_uris(run)
        return self._read[name].outputs if name in self._read else []


def _blocked(step: DocStep, states: dict[str, StepState]) -> str | None:
    """Why `step` will never run (an upstream step failed or was skipped, its condition is false)."""
    for up in step.upstream:
        st = states[up].state
        if st == SKIPPED or (st not in (*DONE, PENDING) and RunState(st).is_terminal):
            return f"upstream step {up} {st}"
    if step.when is not None and states[step.when.ref.step].state in DONE:
        cond = Condition(ResultRef(step.when.ref.step, step.when.ref.key), step.when.op, step.when.value)
        try:
            if not cond.holds(states[step.when.ref.step].results):
                return f"condition {cond} is false"
        except PipelineError as exc:
            return str(exc)
    return None


def _request(
    doc: PipelineDocument,
    step: DocStep,
    states: dict[str, StepState],
    views: _Views,
    run_id: str,
    backend: Backend,
) -> tuple[RunRequest, StepKey]:
    params = dict(step.params)
    for k, ref in step.param_refs.items():
        if ref.key not in states[ref.step].results:
            raise PipelineError(
                f"step {ref.step!r} completed without result {ref.key!r} (param {k!r} of {step.name!r})"
            )
        params[k] = states[ref.step].results[ref.key]
    inputs, ids = dict(step.inputs), dict(step.input_ids)
    for k, ref in step.input_refs.items():
        recorded = views.outputs(ref.step, states)
        produced = states[ref.step].outputs
        if ref.key not in produced:
            raise PipelineError(f"step {ref.step!r} completed without logging its declared output {ref.key!r}")
        inputs[k] = produced[ref.key]
        # the identity the upstream run recorded: the controller reads no data
        [out] = [o for o in recorded if (o.binding or o.name) == ref.key]
        ids[k] = (out.namespace, out.name, out.version)
    request = RunRequest(
        run_id=run_id,
        project=doc.project,
        job=step.name,
        entrypoint=step.entrypoint,
        code_hash=step.code_hash,
        git_commit=step.git_commit,
        git_dirty=step.git_dirty,
        params=params,
        inputs=inputs,
        runtime="kubernetes",
        image=doc.image,
        resources=doc.resources,
        secrets=doc.secrets,
        function=step.function,
        namespace=doc.namespace,
        parent=parent_of(doc.run_id, doc.project, doc.name),
        artifact_store=backend.settings.artifact_url,
    )
    return request, StepKey(step.name, step.code_hash, step.entrypoint, params, ids, runtime_key(doc.image))


def _finish(doc: PipelineDocument, states: dict[str, StepState], backend: Backend) -> RunState:
    """End the pipeline run with every step's state as its results (as the local engine does); a
    hyperparameter run with its iteration table and the best child's outputs (as `run_hyper` does)."""
    emitter = pipeline_emitter(doc, None, backend)
    if doc.hyper is not None:
        try:
            results, outputs, _ = outcome(doc.name, doc.hyper.combos, states, doc.hyper.selector, backend.graph())
        except RunFailed as exc:
            emitter.fail(exc)
            return RunState.FAIL
        if outputs:
            emitter.running(outputs=outputs)
        emitter.complete(results)
        return RunState.COMPLETE
    summary: dict[str, Any] = {"steps": record(states), **({"pipeline": doc.spec} if doc.spec else {})}
    failed = [n for n, st in states.items() if st.state not in (*DONE, SKIPPED)]
    if failed:
        first = states[failed[0]]
        emitter.fail(f"step {failed[0]} ended {first.state}: {first.reason}", results=summary)
        return RunState.FAIL
    emitter.complete(summary)
    return RunState.COMPLETE


def submitter(backend: Backend, publish: Callable[[str, bytes], None]) -> Submit:
    """Store the request, publish it for the launcher, record it REQUESTED (as `runtime="kubernetes"`)."""
    from provgraph.runtimes.process import announce

    def submit(request: RunRequest, code: CodeJobFacet) -> None:
        body = dumps_request(request)
        backend.artifacts.put_bytes(body)  # before it is published: the pod fetches it by hash
        publish(request.run_id, body)
        announce(
            request,
            code,
            backend,
            backend.transport,
            RuntimeRunFacet(
                kind="kubernetes", image=request.image, resources=request.resources, secrets=request.secrets or None
            ),
        )

    return submit
