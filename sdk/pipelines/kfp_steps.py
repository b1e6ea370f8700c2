"""What the components of a compiled KFP pipeline run (see `kfp_engine.py`): this module never
imports `kfp`, so a component needs only provgraph (and the pipeline's file) in its image.

A KFP run of a provgraph pipeline is three kinds of task: `start` records the pipeline run (START),
one task per step runs the step as a tracked run whose `parent` facet names that pipeline run
(CHILD_OF), exactly as the local engine would (cache included), and `finish` records the pipeline
run's end with every step's state. Tasks pass base64url-encoded JSON (kfp.local breaks JSON
strings inside a list input): the pipeline run's request from `start`, each step's `StepState` to
the steps after it. A step that fails is reported, not raised,
so its dependants run as tasks that record themselves SKIPPED, as on the local engine.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from typing import Any

from provgraph._backend import Backend
from provgraph._emitter import RunEmitter
from provgraph._execution import runtime_facet
from provgraph.events.request import dumps_request, loads_request
from provgraph.events.settings import load_settings
from provgraph.pipelines.engine import (
    SKIPPED,
    Options,
    ProcessRunner,
    Scheduler,
    Started,
    StepState,
    start_request,
)

_ANONYMOUS = {"host": None, "pid": None, "pid_start": None, "boot_id": None, "pid_namespace": None}
"""The pipeline run outlives the `start` task's process: no process identity, so it is never LOST for
that process ending (and no heartbeats are promised)."""


def _started(spec: str, params: str, pipeline_run: str, backend: Backend) -> Started:
    """The pipeline as `start` built it, with the pipeline run `start` recorded."""
    recorded = loads_request(unpack(pipeline_run))
    return start_request(spec, json.loads(params), recorded.project, backend, run_id=recorded.run_id)


def _emitter(started: Started, backend: Backend, sent: int) -> RunEmitter:
    """The pipeline run's emitter in this task, after the `sent` events earlier tasks sent for it."""
    request = started.request
    return RunEmitter(
        backend.transport,
        run_id=request.run_id,
        namespace=request.project,
        job_name=request.job,
        code=started.code,
        sent=sent,
    )


def start(spec: str, params: str, project: str) -> str:
    """Validate the pipeline and record its pipeline run's START; returns that run's request (JSON)."""
    backend = Backend(load_settings())
    try:
        started = start_request(spec, json.loads(params), project or None, backend)
        started.pipe.validate()
        runtime = runtime_facet(started.request, started.code_unknown).model_copy(update=_ANONYMOUS)
        _emitter(started, backend, 0).start(started.request.params, runtime)
        backend.transport.flush()
        return pack(dumps_request(started.request))
    finally:
        backend.close()


def step(spec: str, params: str, pipeline_run: str, name: str, upstream: list[str], cache: bool) -> str:
    """Run step `name` as the local engine does (cached, retried, or SKIPPED after a failed upstream
    step); returns its `StepState` (JSON) for the steps after it and for `finish`."""
    backend = Backend(load_settings())
    # the step in a process of its own, as locally: `os._exit`, a kill or a KeyboardInterrupt in the
    # handler ends that process, recorded and retried, not this task before `finish` can run
    runner = ProcessRunner()
    try:
        started = _started(spec, params, pipeline_run, backend)
        scheduler = Scheduler(
            started.pipe, backend, started.request.project, started.parent, Options(cache=cache), runner
        )
        scheduler.states = {s.name: s for s in map(_state, upstream)}
        s = started.pipe.steps[name]
        why = scheduler._blocked(s)
        state = StepState(name, SKIPPED, sorted(s.upstream), reason=why) if why else scheduler.run_step(s)
        return pack(json.dumps(asdict(state)).encode())
    finally:
        runner.close()
        backend.close()


def finish(spec: str, params: str, pipeline_run: str, steps: list[str]) -> str:
    """Record the pipeline run's end (COMPLETE, or FAIL naming the first failed step) with every
    step's state; returns the pipeline run's results (JSON)."""
    backend = Backend(load_settings())
    try:
        started = _started(spec, params, pipeline_run, backend)
        states = {s.name: s for s in map(_state, steps)}
        summary, failure = started.summary({name: states[name] for name in started.pipe.order()})
        emitter = _emitter(started, backend, 1)
        if failure is None:
            emitter.complete(summary)
        else:
            emitter.fail(failure, results=summary)
        backend.transport.flush()
        ended = {"run_id": started.request.run_id, "state": emitter.finished.value if emitter.finished else None}
        return pack(json.dumps({**ended, **summary}).encode())
    finally:
        backend.close()


def _state(body: str) -> StepState:
    fields: dict[str, Any] = json.loads(unpack(body))
    return StepState(**fields)


def pack(body: bytes) -> str:
    return base64.urlsafe_b64encode(body).decode()


def unpack(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())
