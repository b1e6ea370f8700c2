"""`provgraph.run`: call a handler as a tracked run, locally or on Kubernetes, with the same call."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provgraph._backend import Backend, default_backend
from provgraph._code import CodeSnapshot, Handler, load_handler, snapshot
from provgraph._execution import RunResult, effective_params
from provgraph._naming import is_store_uri, normalise, run_project
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import FunctionRef, ParentRunFacet
from provgraph.events.request import RunRequest, secrets_problem
from provgraph.events.settings import Settings
from provgraph.runtimes.local import code_facet, run_local

RUNTIMES = ("local", "kubernetes")


def new_run_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit millisecond time, then random bits, so ids sort by creation time.

    Only uniqueness is promised; do not parse the time back out of a run id.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (1 << 62) - 1
    return str(uuid.UUID(int=value))


def run(
    handler: Handler | str,
    params: dict[str, Any] | None = None,
    inputs: dict[str, str] | None = None,
    *,
    project: str | None = None,
    name: str | None = None,
    runtime: str = "local",
    image: str | None = None,
    resources: dict[str, str] | None = None,
    secrets: list[str] | None = None,
    settings: Settings | None = None,
    backend: Backend | None = None,
    isolated: bool | None = None,
    parent: ParentRunFacet | None = None,
    hyperparams: dict[str, list[Any]] | None = None,
    strategy: str = "grid",
    max_iterations: int | None = None,
    selector: str | None = None,
    param_texts: dict[str, str] | None = None,
) -> RunResult:
    """Run `handler` (a function, "path/file.py:function", a hub item "hub://[source/]name[:version]"
    or a registered function "function://name[@sha256:…]") as a tracked run.

    `params` are passed by name; `inputs` map parameter names to URIs (any fsspec URL, a local
    path, or an artifact `store://project/key[@sha256:…]`) and arrive as `DataItem`s. The handler
    may take a `Context` first to log results, metrics and outputs. The return value (a dict, or
    any JSON value) becomes the run's results. A handler that raises ends the run FAIL; the result
    says so (`raise_for_state()` turns it into an exception). `parent`: the run this one is a step of.

    A hub item's or registered function's `requirements` must be installed here, or it runs in a
    cached virtual environment that has them: `isolated=True`, or the `isolated` setting
    (`missing`, `always`).

    With `hyperparams` ({name: [values]}) it is a hyperparameter run: one child run per combination
    (`strategy` grid, list or random, at most `max_iterations`), run in parallel; the result's
    `results` hold the iteration table and the best iteration by `selector` ("max.accuracy"), whose
    outputs become this run's outputs.

    `secrets` (kubernetes runtime) name Kubernetes Secrets in the run's namespace: their keys reach the
    pod as environment variables, so `context.get_secret(key)` finds them; values are never recorded.

    `param_texts`: the params as typed on a command line (what `provgraph run -p` passes): a `str`
    parameter gets its text as typed, "1.10" rather than the number JSON reads it as.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r} (choose from {', '.join(RUNTIMES)})")
    if secrets and runtime != "kubernetes":
        raise ConfigError(
            "secrets name Kubernetes Secrets (runtime 'kubernetes'); elsewhere get_secret reads the secrets file"
            " (PROVGRAPH_SECRETS_FILE) and the environment"
        )
    problem = secrets_problem(list(secrets or []))
    if problem is not None:
        raise ConfigError(problem)
    backend = backend or (Backend(settings) if settings is not None else default_backend())
    project = run_project(project, backend.settings.project)
    function: FunctionRef | None = None
    func: Handler | None
    if isinstance(handler, str) and handler.startswith(("hub://", "function://")):
        named = resolve_named(handler, backend)
        # on Kubernetes the image provides the requirements
        isolate = runtime == "local" and _isolate(named.requirements, isolated, backend.settings, handler)
        function = named.ref(isolated=isolate)
        snap = named.snapshot(function)
        func = None if isolate else named.load(backend)
        name, image = name or named.name, image or named.image
        params = {**named.defaults, **(params or {})}
    else:
        if isolated:
            raise ConfigError("isolated runs are for functions with requirements: hub:// or function://")
        func = (
            load_handler(handler, mlrun_compat=backend.settings.mlrun_compat) if isinstance(handler, str) else handler
        )
        snap = snapshot(func)
    if hyperparams is not None:
        if func is None:
            raise ConfigError("hyperparameter runs of isolated functions are not supported: install its requirements")
        from provgraph.pipelines.hyper import HyperSearch, run_hyper

        search = HyperSearch(hyperparams, strategy, max_iterations, selector)
        if runtime == "kubernetes":  # one Job per child; the pipeline controller ends the parent
            from provgraph.pipelines.remote import submit_hyper

            return submit_hyper(
                func,
                params or {},
                inputs or {},
                search,
                project=project,
                name=name,
                image=image,
                resources=resources,
                secrets=secrets,
                backend=backend,
            )
        return run_hyper(
            func,
            params or {},
            inputs or {},
            search,
            project=project,
            name=name,
            backend=backend,
        )
    code = code_facet(snap, backend)
    pinned = {key: uri if is_store_uri(uri) else normalise(uri) for key, uri in (inputs or {}).items()}
    for key, uri in pinned.items():
        backend.protected.check(key, uri)
        _check_input(key, uri)
    request = RunRequest(
        run_id=new_run_id(),
        project=project,
        job=name or getattr(func, "__name__", "handler"),
        entrypoint=snap.entrypoint,
        code_hash=code.code_hash,
        params=effective_params(func, params or {}, pinned, report_unknown=True, texts=param_texts)
        if func is not None
        else dict(params or {}),
        inputs=pinned,
        runtime=runtime,
        image=image,
        resources=resources or {},
        secrets=list(secrets or []),
        function=function,
        parent=parent,
    )
    if function is not None and function.isolated:
        from provgraph._isolated import run_isolated

        return run_isolated(request, code, backend)
    if runtime == "kubernetes":
        from provgraph.runtimes.kubernetes import submit

        return submit(request, code, backend)
    assert func is not None
    return run_local(request, func, code, backend, code_unknown=snap.unknown, inputs_checked=True)


@dataclass(frozen=True)
class _Named:
    """A hub item or a registered function, resolved but not yet imported."""

    name: str
    source: bytes
    entrypoint: str
    requirements: list[str]
    defaults: dict[str, Any]
    ref: Callable[..., FunctionRef]
    load: Callable[[Backend], Handler]
    image: str | None = None
    """A registered function's image (kubernetes runtime); a hub item's names MLRun's, not one with provgraph."""

    def snapshot(self, function: FunctionRef) -> CodeSnapshot:
        """The code snapshot of a run of it: the resolved source, under the hash `function` pins."""
        return CodeSnapshot(self.source, function.code_hash, self.entrypoint, None, None, None)


def resolve_named(uri: str, backend: Backend) -> _Named:
    """A `hub://` item or `function://` registered function, resolved (not imported yet)."""
    if uri.startswith("hub://"):
        from provgraph import _hub

        hub = _hub.resolve(uri, backend.settings)
        item = hub.item
        return _Named(
            item.name,
            hub.code,
            f"{item.filename}:{item.handler}",
            item.requirements,
            {},
            hub.ref,
            lambda b: _hub.load(hub, b.settings),
        )
    from provgraph import _function

    fn = _function.resolve(uri, backend)
    d = fn.registered.definition
    requirements, defaults = list(d["requirements"]), dict(d["params"])
    return _Named(fn.registered.name, fn.source, fn.entrypoint, requirements, defaults, fn.ref, fn.load, d["image"])


def _isolate(requirements: list[str], asked: bool | None, settings: Settings, what: str) -> bool:
    """Whether a function with `requirements` runs isolated; refuses to run it here without them."""
    if asked is False or (asked is None and settings.isolated == "never") or not requirements:
        if requirements:
            from provgraph._isolated import missing

            lacking = missing(requirements)
            if lacking:
                raise ConfigError(
                    f"{what} needs {', '.join(lacking)}, not installed here: run it with --isolated"
                    " (or set PROVGRAPH_ISOLATED=missing)"
                )
        return False
    if asked or settings.isolated == "always":
        return True
    from provgraph._isolated import missing

    return bool(missing(requirements))


def _check_input(key: str, uri: str) -> None:
    """A missing local input or an unknown URL scheme is a typo, refused before a run exists for it."""
    if "://" not in uri:
        if not os.path.lexists(uri):
            raise NotFound(f"input {key!r}: no file or folder at {uri!r}")
    elif not is_store_uri(uri):
        from fsspec.registry import get_filesystem_class  # lazy, as every fsspec use of a local run

        try:
            get_filesystem_class(uri.split("://", 1)[0])
        except (ValueError, ImportError) as exc:  # unknown, or its package is not installed
            raise ConfigError(f"input {key!r}: cannot open {uri!r}: {exc}") from None
