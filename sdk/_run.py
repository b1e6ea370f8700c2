"""`provgraph.run`: call a handler as a tracked run, locally or on Kubernetes, with the same call."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from provgraph._backend import Backend, default_backend
from provgraph._code import Handler, load_handler, snapshot
from provgraph._dataitem import ProtectedFiles
from provgraph._execution import RunResult, effective_params
from provgraph._naming import is_store_uri, normalise
from provgraph.events.errors import ConfigError
from provgraph.events.facets import ParentRunFacet
from provgraph.events.request import RunRequest
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
    settings: Settings | None = None,
    backend: Backend | None = None,
    parent: ParentRunFacet | None = None,
    hyperparams: dict[str, list[Any]] | None = None,
    strategy: str = "grid",
    max_iterations: int | None = None,
    selector: str | None = None,
) -> RunResult:
    """Run `handler` (a function, or "path/file.py:function") as a tracked run.

    `params` are passed by name; `inputs` map parameter names to URIs (any fsspec URL, a local
    path, or an artifact `store://project/key[@sha256:…]`) and arrive as `DataItem`s. The handler
    may take a `Context` first to log results, metrics and outputs. The return value (a dict, or
    any JSON value) becomes the run's results. A handler that raises ends the run FAIL; the result
    says so (`raise_for_state()` turns it into an exception). `parent`: the run this one is a step of.

    With `hyperparams` ({name: [values]}) it is a hyperparameter run: one child run per combination
    (`strategy` grid, list or random, at most `max_iterations`), run in parallel; the result's
    `results` hold the iteration table and the best iteration by `selector` ("max.accuracy"), whose
    outputs become this run's outputs.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r} (choose from {', '.join(RUNTIMES)})")
    backend = backend or (Backend(settings) if settings is not None else default_backend())
    func = load_handler(handler) if isinstance(handler, str) else handler
    if hyperparams is not None:
        if runtime != "local":
            raise ConfigError("hyperparameter runs run on the local runtime for now")
        from provgraph.pipelines.hyper import run_hyper

        return run_hyper(
            func,
            params or {},
            inputs or {},
            hyperparams=hyperparams,
            strategy=strategy,
            max_iterations=max_iterations,
            selector=selector,
            project=project or backend.settings.project,
            name=name,
            backend=backend,
        )
    snap = snapshot(func)
    code = code_facet(snap, backend)
    pinned = {key: uri if is_store_uri(uri) else normalise(uri) for key, uri in (inputs or {}).items()}
    protected = ProtectedFiles.of(backend.settings)
    for key, uri in pinned.items():
        protected.check(key, uri)
    request = RunRequest(
        run_id=new_run_id(),
        project=project or backend.settings.project,
        job=name or getattr(func, "__name__", "handler"),
        entrypoint=snap.entrypoint,
        code_hash=code.code_hash,
        params=effective_params(func, params or {}, pinned),
        inputs=pinned,
        runtime=runtime,
        image=image,
        resources=resources or {},
        parent=parent,
    )
    if runtime == "kubernetes":
        from provgraph.runtimes.kubernetes import submit

        return submit(request, code, backend)
    return run_local(request, func, code, backend, code_unknown=snap.unknown)
