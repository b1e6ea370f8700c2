"""The local pipeline engine: a pipeline run is an ordinary tracked run (job = the pipeline) whose
handler schedules the steps; every step is a tracked run with the pipeline run as its OpenLineage
`parent` (CHILD_OF in the graph).

Steps run in dependency order; independent steps run at once, each in its own process (forked
from a preloaded fork server, so a step costs milliseconds, not an interpreter start), at most
`pipeline_parallelism` at a time. A failed step is retried `retries` times; when it still fails its
dependants are SKIPPED. Before a step executes, the graph is asked whether an identical run exists
(`cache.find_cached`); if so the step is recorded as a COMPLETE run CACHED_FROM it instead.

The pipeline run's results are the DAG with each step's state (`steps`), so `pipeline show` and
GraphQL read a pipeline's progress, its skipped steps included, from the graph alone.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provgraph._backend import Backend
from provgraph._code import Handler, load_handler, snapshot
from provgraph._context import Context
from provgraph._dataitem import ProtectedFiles
from provgraph._execution import RunResult, effective_params, execute
from provgraph._lifeline import Terminated
from provgraph._naming import is_store_uri, normalise, run_project
from provgraph._run import new_run_id
from provgraph.events.errors import ConfigError, ProvgraphError
from provgraph.events.facets import CodeJobFacet, JobRef, ParentRunFacet, RunRef
from provgraph.events.facets.standard import RootRef
from provgraph.events.model import RunState
from provgraph.events.request import RunRequest, dumps_request
from provgraph.graph.views import RunView
from provgraph.pipelines.cache import StepKey, environment, find_cached, input_ids, record_cached
from provgraph.pipelines.dsl import (
    OutputRef,
    Pipeline,
    PipelineDef,
    PipelineError,
    ResultRef,
    Step,
    as_pipeline,
    resolve,
)
from provgraph.pipelines.worker import Snapshot, StepServer
from provgraph.runtimes.local import code_facet
from provgraph.runtimes.process import settings_env, settle

CACHED = "CACHED"
SKIPPED = "SKIPPED"
DONE = (RunState.COMPLETE.value, CACHED)


class PipelineFailed(ProvgraphError):
    """A step failed (after its retries); the pipeline run ends FAIL with every step's state."""


@dataclass
class StepState:
    """What happened to one step (or, in a plan, what will)."""

    name: str
    state: str
    upstream: list[str]
    run_id: str | None = None
    cached_from: str | None = None
    attempts: int = 0
    reason: str | None = None
    duration_s: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class PipelineResult:
    run_id: str
    project: str
    name: str
    state: RunState
    steps: dict[str, StepState]
    error: str | None = None

    def raise_for_state(self) -> PipelineResult:
        if self.state != RunState.COMPLETE:
            raise PipelineFailed(f"pipeline run {self.run_id} ({self.name}) ended {self.state}: {self.error}")
        return self


def load_pipeline(spec: str) -> PipelineDef:
    """`path/file.py:function` -> the pipeline function in that file."""
    return as_pipeline(load_handler(spec))


# -- one step ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A step ready to execute: its request, code, function and cache key."""

    request: RunRequest
    code: CodeJobFacet | None
    func: Handler
    key: StepKey
    source_path: str | None = None
    """The file the code snapshot was read from (None: an interactively defined handler)."""


def prepare(
    s: Step, params: dict[str, Any], inputs: dict[str, str], backend: Backend, project: str, parent: ParentRunFacet
) -> Prepared:
    """Build the run request of `s` with its arguments resolved, as `provgraph.run` would."""
    func = resolve(s)
    snap = snapshot(func)
    code = code_facet(snap, backend)
    pinned = {key: uri if is_store_uri(uri) else normalise(uri) for key, uri in inputs.items()}
    protected = ProtectedFiles.of(backend.settings)
    for key, uri in pinned.items():
        protected.check(key, uri)
    request = RunRequest(
        run_id=new_run_id(),
        project=project,
        job=s.name,
        entrypoint=snap.entrypoint,
        code_hash=code.code_hash,
        git_commit=code.git_commit,
        git_dirty=code.git_dirty,
        params=effective_params(func, params, pinned),
        inputs=pinned,
        parent=parent,
        artifact_store=backend.settings.artifact_url,
    )
    step_key = StepKey(
        s.name,
        None if snap.unknown else code.code_hash,
        snap.entrypoint,
        request.params,
        input_ids(pinned, backend),
        environment(),
    )
    return Prepared(request, None if snap.unknown else code, func, step_key, snap.source_path)


class ProcessRunner:
    """Runs each step in its own process, forked by the pipeline run's step server (started on
    the first step that executes); a process that dies without reporting is recorded FAIL."""

    def __init__(self) -> None:
        self._server: StepServer | None = None
        self._lock = threading.Lock()

    def _started(self, backend: Backend) -> StepServer:
        with self._lock:
            if self._server is None:
                self._server = StepServer({**os.environ, **settings_env(backend.settings)})
            return self._server

    def __call__(self, prepared: Prepared, backend: Backend) -> RunResult:
        request = prepared.request
        if prepared.code is None:  # the loaded code is not the snapshot: only this process has it
            return execute(request, prepared.func, None, backend, code_unknown="the step's file changed after import")
        digest, _ = backend.artifacts.put_bytes(dumps_request(request))
        result_file = Path(tempfile.mkdtemp(prefix="provgraph-step-")) / "result.json"
        source = Snapshot(prepared.source_path, request.code_hash, request.entrypoint) if prepared.source_path else None
        status = self._started(backend).run(digest, result_file, source)
        return settle(request, status, result_file, b"", backend.transport)

    def terminate_steps(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.terminate_steps()

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None


# -- the scheduler ------------------------------------------------------------------------------


@dataclass
class Options:
    cache: bool = True
    parallelism: int = 4


class Scheduler:
    """Runs the steps of one pipeline run (the handler of the pipeline run)."""

    def __init__(
        self,
        pipe: Pipeline,
        backend: Backend,
        project: str,
        parent: ParentRunFacet,
        opts: Options,
        runner: Callable[[Prepared, Backend], RunResult] | None = None,
    ) -> None:
        self.pipe = pipe
        self.backend = backend
        self.project = project
        self.parent = parent
        self.opts = opts
        self.order = pipe.validate()
        self.states: dict[str, StepState] = {}
        self.runner = runner or ProcessRunner()

    def _args(self, s: Step) -> tuple[dict[str, Any], dict[str, str]]:
        params = {
            k: self.states[v.step].results.get(v.key) if isinstance(v, ResultRef) else v for k, v in s.params.items()
        }
        inputs: dict[str, str] = {}
        for k, v in s.inputs.items():
            if isinstance(v, OutputRef):
                produced = self.states[v.step].outputs
                if v.key not in produced:
                    raise PipelineError(f"step {v.step!r} completed without logging its declared output {v.key!r}")
                inputs[k] = produced[v.key]
            else:
                inputs[k] = v
        for k, v in s.params.items():
            if isinstance(v, ResultRef) and v.key not in self.states[v.step].results:
                raise PipelineError(f"step {v.step!r} completed without result {v.key!r} (param {k!r} of {s.name!r})")
        return params, inputs

    def _blocked(self, s: Step) -> str | None:
        """Why `s` cannot run (an upstream step did not complete, or its condition is false), or None."""
        for up in sorted(s.upstream):
            st = self.states[up]
            if st.state not in DONE:
                return f"upstream step {up} {st.state}"
        if s.when is not None and not s.when.holds(self.states[s.when.ref.step].results):
            return f"condition {s.when} is false"
        return None

    def run_step(self, s: Step) -> StepState:
        state = StepState(s.name, RunState.FAIL.value, sorted(s.upstream))
        started = time.perf_counter()
        try:
            params, inputs = self._args(s)
            if s.is_hub:
                return self._hub(s, params, inputs, state, started)
            prepared = prepare(s, params, inputs, self.backend, self.project, self.parent)
        except ProvgraphError as exc:
            state.reason = str(exc)
            return state
        if self.opts.cache and s.cache:
            source = find_cached(self.backend.graph(), self.backend, self.project, prepared.key)
            if source is not None:
                result = record_cached(self.backend, prepared.request, prepared.code, source, prepared.key)
                state.state, state.cached_from = CACHED, source.run_id
                return self._ended(state, result, started)
        for attempt in range(1, s.retries + 2):
            if attempt > 1:
                prepared.request = prepared.request.model_copy(update={"run_id": new_run_id()})
            result = self.runner(prepared, self.backend)
            state.attempts = attempt
            if result.state == RunState.COMPLETE:
                break
        state.state = result.state.value
        state.reason = result.error
        return self._ended(state, result, started)

    def _hub(
        self, s: Step, params: dict[str, Any], inputs: dict[str, str], state: StepState, started: float
    ) -> StepState:
        """A `hub://` step goes through `provgraph.run`, which resolves the name (no cache: its code
        hash is known only once resolved)."""
        from provgraph._run import run

        for attempt in range(1, s.retries + 2):
            result = run(
                str(s.handler),
                params,
                inputs,
                project=self.project,
                name=s.name,
                backend=self.backend,
                parent=self.parent,
            )
            state.attempts = attempt
            if result.state == RunState.COMPLETE:
                break
        state.state, state.reason = result.state.value, result.error
        return self._ended(state, result, started)

    @staticmethod
    def _ended(state: StepState, result: RunResult, started: float) -> StepState:
        state.run_id = result.run_id
        state.outputs, state.results, state.metrics = dict(result.outputs), dict(result.results), dict(result.metrics)
        state.duration_s = round(time.perf_counter() - started, 4)
        return state

    def run(self, progress: Callable[[StepState], None] | None = None) -> dict[str, StepState]:
        try:
            return self._run(progress)
        finally:
            if isinstance(self.runner, ProcessRunner):
                self.runner.close()

    def _run(self, progress: Callable[[StepState], None] | None) -> dict[str, StepState]:
        running: dict[Future[StepState], str] = {}
        with ThreadPoolExecutor(max_workers=self.opts.parallelism, thread_name_prefix="step") as pool:
            try:
                self._loop(pool, running, progress)
            except Terminated:  # SIGTERM to this process alone (Ctrl-C reaches the steps by itself):
                if isinstance(self.runner, ProcessRunner):  # the steps end too, not after their work
                    self.runner.terminate_steps()
                raise
        return {name: self.states[name] for name in self.order}

    def _loop(
        self,
        pool: ThreadPoolExecutor,
        running: dict[Future[StepState], str],
        progress: Callable[[StepState], None] | None,
    ) -> None:
        while len(self.states) < len(self.order):
            for name in self.order:
                s = self.pipe.steps[name]
                if name in self.states or name in running.values():
                    continue
                if any(up not in self.states for up in s.upstream):
                    continue
                try:
                    why = self._blocked(s)
                except PipelineError as exc:
                    self._settle(StepState(name, RunState.FAIL.value, sorted(s.upstream), reason=str(exc)), progress)
                    continue
                if why is not None:
                    self._settle(StepState(name, SKIPPED, sorted(s.upstream), reason=why), progress)
                    continue
                running[pool.submit(self.run_step, s)] = name
            if not running:
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                running.pop(fut)
                self._settle(fut.result(), progress)

    def _settle(self, state: StepState, progress: Callable[[StepState], None] | None) -> None:
        self.states[state.name] = state
        if progress is not None:
            progress(state)


def record(steps: dict[str, StepState]) -> list[dict[str, Any]]:
    """The steps, in run order, as the pipeline run's results (JSON; step results stay on the steps' runs)."""
    return [
        {k: v for k, v in asdict(st).items() if k not in ("results", "metrics") and v not in (None, [], {})}
        for st in steps.values()
    ]


def run_pipeline(
    pipeline: PipelineDef | Callable[..., Any] | str,
    params: dict[str, Any] | None = None,
    *,
    project: str | None = None,
    cache: bool = True,
    parallelism: int | None = None,
    backend: Backend | None = None,
    progress: Callable[[StepState], None] | None = None,
) -> PipelineResult:
    """Build the pipeline with `params`, validate it, and run it as a tracked pipeline run.

    `pipeline` is a `@pipeline` function or `"path/file.py:function"`. Nothing runs (and nothing is
    recorded) when validation refuses the DAG. `cache=False` executes every step.
    """
    from provgraph._backend import default_backend

    backend = backend or default_backend()
    started = start_request(pipeline, params, project, backend)
    opts = Options(
        cache=cache,
        parallelism=parallelism or backend.settings.pipeline_parallelism,
    )
    scheduler = Scheduler(started.pipe, backend, started.request.project, started.parent, opts)

    def orchestrate(ctx: Context) -> dict[str, Any]:
        if started.source:  # sent now, so a run killed before its end can still be rerun
            ctx.log_result("pipeline", started.source, commit=True)
        try:
            steps = scheduler.run(progress)
        except BaseException:  # Ctrl-C, SIGTERM: the steps so far stay recorded with the ABORT
            ctx.log_results(started.summary(dict(scheduler.states))[0])
            raise
        summary, failure = started.summary(steps)
        if failure is not None:
            ctx.log_results(summary)
            raise failure
        return summary

    result = execute(started.request, orchestrate, started.code, backend, code_unknown=started.code_unknown)
    return PipelineResult(
        result.run_id,
        started.request.project,
        started.pipe.name,
        result.state,
        dict(scheduler.states),
        error=result.error,
    )


@dataclass
class Started:
    """A pipeline built and validated, with the request of its pipeline run (not yet recorded)."""

    pipe: Pipeline
    request: RunRequest
    code: CodeJobFacet | None
    code_unknown: str | None
    parent: ParentRunFacet
    source: str | None

    def summary(self, steps: dict[str, StepState]) -> tuple[dict[str, Any], PipelineFailed | None]:
        """The pipeline run's results, and the failure it ends with when a step failed."""
        summary = {"steps": record(steps), **({"pipeline": self.source} if self.source else {})}
        failed = [n for n, st in steps.items() if st.state not in (*DONE, SKIPPED)]
        if not failed:
            return summary, None
        first = steps[failed[0]]
        return summary, PipelineFailed(f"step {first.name} ended {first.state}: {first.reason}")


def start_request(
    pipeline: PipelineDef | Callable[..., Any] | str,
    params: dict[str, Any] | None,
    project: str | None,
    backend: Backend,
    run_id: str | None = None,
) -> Started:
    """Build the pipeline and make its pipeline run's request (every engine's first step); `run_id`
    names a pipeline run already recorded (a KFP task rebuilding the pipeline of its run)."""
    spec = pipeline if isinstance(pipeline, str) else None
    definition = load_pipeline(pipeline) if isinstance(pipeline, str) else as_pipeline(pipeline)
    pipe = definition.build(params)
    project = run_project(project, backend.settings.project)
    snap = snapshot(definition.func)
    code = code_facet(snap, backend)
    request = RunRequest(
        run_id=run_id or new_run_id(),
        project=project,
        job=pipe.name,
        entrypoint=snap.entrypoint,
        code_hash=code.code_hash,
        params=pipe.params,
        runtime="pipeline",
    )
    parent_job = JobRef(namespace=project, name=pipe.name)
    parent = ParentRunFacet(
        run=RunRef(run_id=request.run_id),
        job=parent_job,
        root=RootRef(run=RunRef(run_id=request.run_id), job=parent_job),
    )
    source = None
    if spec:
        source = _absolute(spec)
    elif snap.source_path:
        source = f"{snap.source_path}:{getattr(definition.func, '__name__', pipe.name)}"
    return Started(pipe, request, None if snap.unknown else code, snap.unknown, parent, source)


def _absolute(spec: str) -> str:
    """`flow.py:flow` as `/abs/flow.py:flow`: a rerun from another folder must find the same file."""
    path, sep, func = spec.rpartition(":")
    return f"{os.path.abspath(path)}:{func}" if sep and path.endswith(".py") else spec


def pipeline_spec(run: RunView) -> str:
    """Where the pipeline of a recorded run is defined (`path/file.py:function`)."""
    spec = run.results.get("pipeline")
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"run {run.run_id} is not a pipeline run (or it has not ended)")
    if not os.path.isfile(spec.rpartition(":")[0]):
        raise ConfigError(f"pipeline file {spec.rpartition(':')[0]} of run {run.run_id} no longer exists")
    return spec
