"""Executes one run request with a handler: the same code path for local runs, `provgraph exec`
in a Kubernetes pod, and reproductions, so their events are indistinguishable.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import platform
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from provgraph._backend import Backend
from provgraph._code import Handler
from provgraph._context import Context
from provgraph._dataitem import DataItem
from provgraph._emitter import HeldEventFailed, RunEmitter, format_traceback
from provgraph._environment import packages_digest
from provgraph._lifeline import EndingSignals, Heartbeat, abort_reason
from provgraph._logs import LOG_FLUSH_S, LogCapture
from provgraph._mlrun import answering_get_or_create_ctx
from provgraph._naming import StoreRef, resolve_version
from provgraph._packagers import HandlerHints, annotations_of, convert_input, hints_of, log_returned
from provgraph.compat import mlrun_importable
from provgraph.events.errors import ConfigError, ProvgraphError
from provgraph.events.facets import CodeJobFacet, ReproducesRunFacet, RuntimeRunFacet
from provgraph.events.facets.values import encode_float
from provgraph.events.model import EventType, RunState
from provgraph.events.request import RunRequest
from provgraph.graph.ids import run_node_id
from provgraph.graph.liveness import this_process

log = logging.getLogger(__name__)

CONTEXT_NAMES = ("context", "ctx")


@dataclass
class RunResult:
    """What a run ended with. `outputs` maps keys to pinned artifact URIs you can pass as inputs."""

    run_id: str
    project: str
    job: str
    state: RunState
    results: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    verdict: ReproducesRunFacet | None = None
    position: str | None = None
    """Consistency token of the run's last event: a read with `consistentWith` this token sees the run
    as it ended. None when not known: the event waited in the spool (Kafka down) or went over HTTP."""

    @property
    def node_id(self) -> str:
        return run_node_id(self.run_id)

    def raise_for_state(self) -> RunResult:
        """Raise `RunFailed` unless the run completed (handy in scripts and tests)."""
        if self.state != RunState.COMPLETE:
            raise RunFailed(f"run {self.run_id} ({self.job}) ended {self.state}: {self.error}")
        return self


class RunFailed(ProvgraphError):
    pass


def bind_arguments(handler: Handler, ctx: Context, params: dict[str, Any], inputs: dict[str, str]) -> dict[str, Any]:
    """Map params and inputs onto the handler's signature; fail before the run starts if one is missing.
    Inputs are DataItems here; `convert_inputs` turns them into what their annotations ask for."""
    sig = inspect.signature(handler)
    annotations = annotations_of(handler)
    kwargs: dict[str, Any] = {}
    extra_ok = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    for i, (name, p) in enumerate(sig.parameters.items()):
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        annotation = annotations.get(name, p.annotation)
        if _is_context(annotation) or (i == 0 and name in CONTEXT_NAMES):
            kwargs[name] = ctx
        elif name in params:  # as MLRun's get_func_arg: a param wins over an input of the same name
            kwargs[name] = params[name]
        elif name in inputs:
            kwargs[name] = ctx.get_input(name)
        elif p.default is inspect.Parameter.empty:
            raise ConfigError(
                f"{getattr(handler, '__name__', 'handler')}() needs {name!r}: pass it as a param or input"
            )
    if extra_ok:  # as MLRun: `**kwargs` takes every param, then every input, the signature left
        kwargs.update({k: v for k, v in params.items() if k not in kwargs})
        kwargs.update({k: ctx.get_input(k) for k in inputs if k not in kwargs})
    return kwargs


def _is_context(annotation: Any) -> bool:
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(name).endswith(("Context", "MLClientCtx"))


def convert_inputs(handler: Handler, kwargs: dict[str, Any], hints: HandlerHints) -> dict[str, Any]:
    """Inputs converted to their parameter's annotation (DataFrame, ndarray, dict, … see `_packagers`);
    done inside the run, so reading them is recorded and a failure to convert fails the run."""
    out = dict(kwargs)
    for name, p in inspect.signature(handler).parameters.items():
        value = out.get(name)
        if isinstance(value, DataItem) and p.annotation is inspect.Parameter.empty and isinstance(p.default, str):
            out[name] = value.local()  # as MLRun: an unannotated input with a str default gets its local path
    if hints.parse_inputs is False:
        return out
    annotations = annotations_of(handler)
    if isinstance(hints.parse_inputs, dict):
        annotations.update(hints.parse_inputs)
    for name, value in out.items():
        if isinstance(value, DataItem):
            out[name] = convert_input(value, annotations.get(name, inspect.Parameter.empty))
    return out


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """CLI params arrive as text; convert text to the handler's annotated scalar type. Text that does
    not convert is refused (a typo); a parsed value of another shape (a list for a float, as MLRun
    handlers are sometimes called) is passed as it is."""
    target = {"int": int, "float": float, "bool": bool, "str": str}.get(_target_name(annotation))
    if target is None or value is None or isinstance(value, target) or (target is float and isinstance(value, int)):
        return value
    if not isinstance(value, str | int | float):
        return value
    if target is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
    if target is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"param {name}={value!r} is not a valid int")  # int() would drop the fraction
    try:
        return target(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"param {name}={value!r} is not a valid {target.__name__}") from exc


def _target_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else str(getattr(annotation, "__name__", ""))


def effective_params(
    handler: Handler,
    params: dict[str, Any],
    inputs: dict[str, str],
    *,
    report_unknown: bool = False,
    texts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Params converted to the handler's annotated types, plus the defaults it will use: exactly
    what the run executes with, and so what `reproduce` must pass again. `report_unknown`: warn about
    params the handler has no parameter for (they are recorded, but only `**kwargs` would receive them).
    `texts`: the params as typed on a command line, before JSON parsing: a `str` parameter gets its
    text as typed ("1.10" stays "1.10", not the float 1.1)."""
    out = dict(params)
    sig = inspect.signature(handler)
    for name, p in sig.parameters.items():
        if name in out and texts and name in texts and _target_name(p.annotation) == "str":
            out[name] = texts[name]
        elif name in out:
            out[name] = _coerce(out[name], p.annotation, name)
        elif name not in inputs and p.default is not inspect.Parameter.empty:
            try:
                json.dumps(p.default)
            except (TypeError, ValueError):
                continue
            out[name] = p.default
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    unknown = sorted(set(params) - set(sig.parameters))
    if report_unknown and unknown and not takes_any:
        func = getattr(handler, "__name__", "handler")
        log.warning(
            "param%s %s: %s() has no such parameter (recorded, not passed; parameters: %s)",
            "s" if len(unknown) > 1 else "",
            ", ".join(unknown),
            func,
            ", ".join(sig.parameters) or "none",
        )
    return out


def runtime_facet(
    request: RunRequest, code_unknown: str | None = None, heartbeat_s: float | None = None
) -> RuntimeRunFacet:
    """Where the run executes, including this process's identity and heartbeat interval (for LOST,
    see `graph/liveness.py`)."""
    return RuntimeRunFacet(
        code_unknown=code_unknown,
        heartbeat_s=heartbeat_s,
        kind=request.runtime,
        image=request.image,
        resources=request.resources,
        secrets=request.secrets or None,
        python=platform.python_version(),
        packages_digest=packages_digest(),
        function=request.function,
        **_process_identity(os.getpid()),
    )


@functools.lru_cache(maxsize=1)
def _process_identity(pid: int) -> dict[str, Any]:
    """`this_process()`, read once per process (keyed by pid: a forked child reads its own)."""
    return this_process()


def execute(
    request: RunRequest,
    handler: Handler,
    code: CodeJobFacet | None,
    backend: Backend,
    code_unknown: str | None = None,
    *,
    inputs_checked: bool = False,
) -> RunResult:
    """Run `handler` for `request`: START, tracked reads and writes, heartbeats, then COMPLETE or
    FAIL, or ABORT on Ctrl-C, SIGTERM or SIGHUP (re-raised after it is recorded, see `_lifeline`).
    A request that reproduces another run gets its verdict on the COMPLETE event (FAILED when the
    run does not complete). `code=None` with `code_unknown` (the reason) records a run whose code
    version is not known. `inputs_checked`: the request's inputs were just checked against
    `backend.protected` (by `provgraph.run`), so their `DataItem`s do not check them again."""
    emitter = emitter_for(request, code, backend)
    ctx = Context(
        run_id=request.run_id,
        project=request.project,
        params=request.params,
        inputs=request.inputs,
        emitter=emitter,
        artifacts=backend.artifacts,
        s3_endpoint_url=backend.settings.s3_endpoint_url,
        job=request.job,
        secrets_file=backend.settings.secrets_file,
        resolve_version=_resolve_version(backend),
        snapshot_inputs_max_bytes=backend.settings.snapshot_inputs_max_bytes,
        input_snapshots=request.input_snapshots,
        input_versions=request.input_versions,
        protected=backend.protected,
        checked=request.inputs.values() if inputs_checked else (),
    )
    kwargs = bind_arguments(handler, ctx, request.params, request.inputs)
    pending = ReproducesRunFacet(run_id=request.reproduces) if request.reproduces else None
    emitter.start(
        request.params, runtime_facet(request, code_unknown, backend.settings.heartbeat_interval_s), reproduces=pending
    )
    result = RunResult(request.run_id, request.project, request.job, RunState.RUNNING)
    capture = LogCapture(backend.artifacts)
    emitter.logs = capture.take
    with EndingSignals() as signals:
        beats = [
            Heartbeat(emitter.running, backend.settings.heartbeat_interval_s),
            Heartbeat(lambda: capture.pending and emitter.running(), LOG_FLUSH_S),
        ]
        ended = False
        try:
            hints = hints_of(handler)
            for key, value in hints.labels.items():
                ctx.set_label(key, value)
            with capture, mlrun_importable(backend.settings.mlrun_compat), answering_get_or_create_ctx(ctx):
                returned = _awaited(handler(**convert_inputs(handler, kwargs, hints)), handler)
            _stop(beats)
            emitter.hold()  # no user code runs from here to COMPLETE: its events go with it, one commit
            log_returned(ctx, returned, hints)
            ctx.record_untouched_inputs()
            result.state, result.results, result.metrics = RunState.COMPLETE, ctx.results, ctx.metrics
            result.outputs = {key: a.uri for key, a in ctx.outputs.items()}
            if request.reproduces is not None:
                result.verdict = verdict(request, result, ctx.versions_logged)
            ctx._send_labels()
            with signals.held():
                _record_end(functools.partial(emitter.complete, ctx.results, reproduces=result.verdict), backend)
                ended = True
        except Exception as exc:  # noqa: BLE001 - whatever the handler raises is the run's FAIL, recorded
            if isinstance(exc, HeldEventFailed):  # an event held for COMPLETE was refused: the run fails with it
                exc = exc.error
            _stop(beats)
            _record_untouched(ctx)
            _send_labels(ctx)
            result.verdict = failed_verdict(request)
            with signals.held():
                fail = functools.partial(emitter.fail, exc, reproduces=result.verdict, results=ctx.results)
                _record_end(fail, backend)
            result.state, result.error = RunState.FAIL, f"{type(exc).__name__}: {exc}"
            result.results, result.metrics, result.traceback = ctx.results, ctx.metrics, format_traceback(exc)
        except BaseException as exc:  # Ctrl-C, SIGTERM/SIGHUP, or the handler called sys.exit()
            _stop(beats)
            if not ended:
                reason = abort_reason(exc)
                if reason is None:  # sys.exit(); a signal ends the run without reading what it never read
                    _record_untouched(ctx)
                kind = EventType.FAIL if reason is None else EventType.ABORT
                message = reason or f"run ended by {type(exc).__name__}({exc}) before returning"
                with signals.held():
                    fail = functools.partial(
                        emitter.fail,
                        exc,
                        kind=kind,
                        message=message,
                        reproduces=failed_verdict(request),
                        results=ctx.results,
                    )
                    _record_end(fail, backend)
                result.state = RunState.FAIL if reason is None else RunState.ABORT
                result.error, result.results, result.metrics = message, ctx.results, ctx.metrics
                result.verdict = failed_verdict(request)
            setattr(exc, RECORDED, result)  # a run process reports this end, not "ended without reporting"
            raise
        finally:
            ctx._end("completed" if result.state == RunState.COMPLETE else "error")
            result.position = emitter.position()
    return result


def emitter_for(request: RunRequest, code: CodeJobFacet | None, backend: Backend) -> RunEmitter:
    """The emitter of the run `request` describes, with its parent run (a pipeline step's) if any."""
    p = request.parent
    return RunEmitter(
        backend.transport,
        run_id=request.run_id,
        namespace=request.project,
        job_name=request.job,
        code=code,
        parent=(p.run.run_id, p.job.namespace, p.job.name) if p is not None else None,
    )


def _stop(beats: list[Heartbeat]) -> None:
    for beat in beats:
        beat.stop()


END_ATTEMPTS = 4
"""Tries to write a run's terminal event. A full disk is the usual reason a try fails, and the
failure that caused it (an artifact write) has removed its partial file by then."""


def _record_end(send: Callable[[], object], backend: Backend) -> None:
    """Send the terminal event and flush, retrying a few times: a run left START/RUNNING
    because one write failed would otherwise only be found LOST later."""
    for attempt in range(END_ATTEMPTS):
        try:
            send()
            backend.transport.flush()
            return
        except (OSError, sqlite3.Error, ProvgraphError) as exc:
            if attempt == END_ATTEMPTS - 1:
                raise
            log.warning("recording the end of the run failed (%s); retrying", exc)
            time.sleep(0.25 * 2**attempt)


def _send_labels(ctx: Context) -> None:
    """The labels set before a run failed; recording them must not hide the run's own failure."""
    try:
        ctx._send_labels()
    except Exception as exc:  # noqa: BLE001 - the run's own failure is the one to report
        log.warning("recording the run's labels failed: %s", exc)


RECORDED = "provgraph_run_result"
"""The attribute of an exception that ended a run (a signal, `sys.exit`) holding the `RunResult` its
end was recorded as: `recorded_result`."""


def recorded_result(exc: BaseException) -> RunResult | None:
    """The recorded end of the run `exc` ended, when `execute` recorded one before letting it go on."""
    found = getattr(exc, RECORDED, None)
    return found if isinstance(found, RunResult) else None


def _awaited(returned: Any, handler: Handler) -> Any:
    """What the handler returned; an `async def` handler's coroutine is run to its end first (in a
    thread of its own when this thread already runs an event loop, as a notebook does). A generator
    is refused: its body would run only if something iterated it."""
    if inspect.iscoroutine(returned):
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(returned)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="provgraph-async-handler") as pool:
            return pool.submit(asyncio.run, returned).result()
    if inspect.isgenerator(returned) or inspect.isasyncgen(returned):
        name = getattr(handler, "__name__", "handler")
        raise ConfigError(f"handler {name!r} is a generator: its body runs only when iterated; return a value instead")
    return returned


def _record_untouched(ctx: Context) -> None:
    """`record_untouched_inputs` on the way out of a failed run: its own failure must not hide the run's."""
    try:
        ctx.record_untouched_inputs()
    except Exception as exc:  # noqa: BLE001 - the run's own failure is the one to report
        log.warning("recording the inputs the run never read failed: %s", exc)


def output_versions(versions: Iterable[str]) -> str:
    """The versions an output key was logged with, as one comparable text: the content hash, or
    several joined by "+" in hash order (a key logged twice: the graph keeps both, in no order)."""
    return "+".join(sorted(set(versions)))


def verdict(request: RunRequest, result: RunResult, logged: dict[str, list[str]]) -> ReproducesRunFacet:
    """REPRODUCED when every output key has the original's content hashes and results and metrics match."""
    from provgraph.graph.projection import canonical_json  # only a reproduction: not on a first run's imports

    assert request.reproduces is not None
    expected = request.expected
    differences: list[dict[str, Any]] = []
    if expected is not None:
        got = {key: output_versions(digests) for key, digests in logged.items()}
        for key in sorted(expected.outputs.keys() | got.keys()):
            if expected.outputs.get(key) != got.get(key):
                differences.append({"output": key, "original": expected.outputs.get(key), "reproduced": got.get(key)})
        for kind, before, after in (
            ("result", expected.results, result.results),
            # encoded, so NaN equals NaN and the differences stay JSON
            ("metric", _encoded(expected.metrics), _encoded(result.metrics)),
        ):
            for key in sorted(before.keys() | after.keys()):
                if canonical_json(before.get(key)) != canonical_json(after.get(key)):  # 1 is not true, 1.0 or -0 0
                    differences.append({kind: key, "original": before.get(key), "reproduced": after.get(key)})
    return ReproducesRunFacet(
        run_id=request.reproduces,
        verdict="DIVERGED" if differences else "REPRODUCED",
        differences=differences,
        environment=environment_diff(request),
        snapshot_inputs=sorted(request.input_snapshots),
    )


def failed_verdict(request: RunRequest) -> ReproducesRunFacet | None:
    """FAILED, with the environment comparison, for a reproduction that could not finish; None otherwise."""
    if request.reproduces is None:
        return None
    return ReproducesRunFacet(
        run_id=request.reproduces,
        verdict="FAILED",
        environment=environment_diff(request),
        snapshot_inputs=sorted(request.input_snapshots),
    )


def environment_diff(request: RunRequest) -> dict[str, Any]:
    """python, packages digest and image: the original's (from the request) against this process's."""
    if request.expected is None:
        return {}
    now = runtime_facet(request)
    environment: dict[str, Any] = {}
    for key in ("python", "packages_digest", "image"):
        was, is_ = request.expected.environment.get(key), getattr(now, key)
        environment[key] = {"original": was, "reproduced": is_, "same": was == is_}
    return environment


def _encoded(metrics: dict[str, float]) -> dict[str, float | str]:
    return {key: encode_float(value) for key, value in metrics.items()}


def _resolve_version(backend: Backend) -> Callable[[StoreRef], str]:
    return lambda ref: resolve_version(ref, backend.graph())
