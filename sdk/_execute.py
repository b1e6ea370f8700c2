"""Executes one run request with a handler: the same code path for local runs, `provgraph exec`
in a Kubernetes pod, and reproductions, so their events are indistinguishable.
"""

from __future__ import annotations

import inspect
import json
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provgraph._backend import Backend
from provgraph._code import Handler
from provgraph._context import Artifact, Context
from provgraph._emitter import RunEmitter
from provgraph._environment import packages_digest
from provgraph.events.errors import ConfigError, ProvgraphError
from provgraph.events.facets import CodeJobFacet, ReproducesRunFacet, RuntimeRunFacet
from provgraph.events.facets.values import encode_float
from provgraph.events.model import EventType
from provgraph.events.request import RunRequest

CONTEXT_NAMES = ("context", "ctx")


@dataclass
class RunResult:
    """What a run ended with. `outputs` maps keys to pinned artifact URIs you can pass as inputs."""

    run_id: str
    project: str
    job: str
    state: str
    results: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    verdict: ReproducesRunFacet | None = None

    @property
    def node_id(self) -> str:
        return f"run:{self.run_id}"

    def raise_for_state(self) -> RunResult:
        """Raise `RunFailed` unless the run completed (handy in scripts and tests)."""
        if self.state != "COMPLETE":
            raise RunFailed(f"run {self.run_id} ({self.job}) ended {self.state}: {self.error}")
        return self


class RunFailed(ProvgraphError):
    pass


def bind_arguments(handler: Handler, ctx: Context, params: dict[str, Any], inputs: dict[str, str]) -> dict[str, Any]:
    """Map params and inputs onto the handler's signature; fail before the run starts if one is missing."""
    sig = inspect.signature(handler)
    kwargs: dict[str, Any] = {}
    extra_ok = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    for i, (name, p) in enumerate(sig.parameters.items()):
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        annotation = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        if annotation.endswith("Context") or (i == 0 and name in CONTEXT_NAMES):
            kwargs[name] = ctx
        elif name in inputs:
            kwargs[name] = ctx.get_input(name)
        elif name in params:
            kwargs[name] = params[name]
        elif p.default is inspect.Parameter.empty:
            raise ConfigError(
                f"{getattr(handler, '__name__', 'handler')}() needs {name!r}: pass it as a param or input"
            )
    if extra_ok:
        kwargs.update({k: v for k, v in params.items() if k not in kwargs})
    return kwargs


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """CLI params arrive as text; convert to the handler's annotated scalar type."""
    target = {"int": int, "float": float, "bool": bool, "str": str}.get(
        annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    )
    if target is None or isinstance(value, target) or (target is float and isinstance(value, int)):
        return value
    if target is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
    try:
        return target(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"param {name}={value!r} is not a valid {target.__name__}") from exc


def effective_params(handler: Handler, params: dict[str, Any], inputs: dict[str, str]) -> dict[str, Any]:
    """Params converted to the handler's annotated types, plus the defaults it will use: exactly
    what the run executes with, and so what `reproduce` must pass again."""
    out = dict(params)
    for name, p in inspect.signature(handler).parameters.items():
        if name in out:
            out[name] = _coerce(out[name], p.annotation, name)
        elif name not in inputs and p.default is not inspect.Parameter.empty:
            try:
                json.dumps(p.default)
            except (TypeError, ValueError):
                continue
            out[name] = p.default
    return out


def runtime_facet(request: RunRequest) -> RuntimeRunFacet:
    return RuntimeRunFacet(
        kind=request.runtime,
        host=socket.gethostname(),
        image=request.image,
        resources=request.resources,
        python=platform.python_version(),
        packages_digest=packages_digest(),
    )


def execute(
    request: RunRequest,
    handler: Handler,
    code: CodeJobFacet,
    backend: Backend,
) -> RunResult:
    """Run `handler` for `request`: START, tracked reads and writes, then COMPLETE or FAIL (ABORT on
    Ctrl-C). A request that reproduces another run gets its verdict on the COMPLETE event."""
    emitter = RunEmitter(
        backend.transport, run_id=request.run_id, namespace=request.project, job_name=request.job, code=code
    )
    ctx = Context(
        run_id=request.run_id,
        project=request.project,
        params=request.params,
        inputs=request.inputs,
        emitter=emitter,
        artifacts=backend.artifacts,
        s3_endpoint_url=backend.settings.s3_endpoint_url,
        latest_version=_latest_version(backend),
        snapshot_inputs_max_bytes=backend.settings.snapshot_inputs_max_bytes,
        input_snapshots=request.input_snapshots,
    )
    kwargs = bind_arguments(handler, ctx, request.params, request.inputs)
    pending = ReproducesRunFacet(run_id=request.reproduces) if request.reproduces else None
    emitter.start(request.params, runtime_facet(request), reproduces=pending)
    result = RunResult(request.run_id, request.project, request.job, "RUNNING")
    try:
        returned = handler(**kwargs)
        # inside the try: a result the contract refuses (NaN, a 2**70 integer) fails the run, saying why
        if isinstance(returned, dict):
            ctx.log_results(returned)
        elif returned is not None:
            ctx.log_result("return", returned)
    except KeyboardInterrupt as exc:
        ctx.record_untouched_inputs()
        emitter.fail(exc, kind=EventType.ABORT)
        backend.transport.flush()
        raise
    except Exception as exc:
        ctx.record_untouched_inputs()
        emitter.fail(exc)
        backend.transport.flush()
        result.state, result.error = "FAIL", f"{type(exc).__name__}: {exc}"
        return result
    ctx.record_untouched_inputs()
    result.state, result.results, result.metrics = "COMPLETE", ctx.results, ctx.metrics
    result.outputs = {key: a.uri for key, a in ctx.outputs.items()}
    if request.reproduces is not None:
        result.verdict = verdict(request, result, ctx.outputs)
    emitter.complete(ctx.results, reproduces=result.verdict)
    backend.transport.flush()
    return result


def verdict(request: RunRequest, result: RunResult, outputs: dict[str, Artifact]) -> ReproducesRunFacet:
    """REPRODUCED when every output has the original's content hash and results and metrics match."""
    assert request.reproduces is not None
    expected = request.expected
    differences: list[dict[str, Any]] = []
    environment: dict[str, Any] = {}
    if expected is not None:
        got = {key: a.digest for key, a in outputs.items()}
        for key in sorted(expected.outputs.keys() | got.keys()):
            if expected.outputs.get(key) != got.get(key):
                differences.append({"output": key, "original": expected.outputs.get(key), "reproduced": got.get(key)})
        for kind, before, after in (
            ("result", expected.results, result.results),
            # encoded, so NaN equals NaN and the differences stay JSON
            ("metric", _encoded(expected.metrics), _encoded(result.metrics)),
        ):
            for key in sorted(before.keys() | after.keys()):
                if before.get(key) != after.get(key):
                    differences.append({kind: key, "original": before.get(key), "reproduced": after.get(key)})
        now = runtime_facet(request)
        for key in ("python", "packages_digest", "image"):
            was, is_ = expected.environment.get(key), getattr(now, key)
            environment[key] = {"original": was, "reproduced": is_, "same": was == is_}
    return ReproducesRunFacet(
        run_id=request.reproduces,
        verdict="DIVERGED" if differences else "REPRODUCED",
        differences=differences,
        environment=environment,
    )


def _encoded(metrics: dict[str, float]) -> dict[str, float | str]:
    return {key: encode_float(value) for key, value in metrics.items()}


def _latest_version(backend: Backend) -> Callable[[str, str], str | None]:
    def latest(namespace: str, name: str) -> str | None:
        found = backend.graph().latest_version(namespace, name)
        return found.version if found else None

    return latest
