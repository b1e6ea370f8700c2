"""`provgraph.reproduce`: rebuild a run from the graph alone, re-run it, and say whether it matched.

The plan uses only what the graph recorded: the job version's source snapshot (by hash), the
exact params, every input pinned by content hash, and the original runtime and image. An input
is read from its stored snapshot when one exists (same bytes, verified); otherwise from where it
was, and its bytes must hash to the recorded version (checked when planning, and again on every
read), so a reproduction never silently runs on different data.

By default the reproduction runs in a fresh interpreter (`provgraph exec`, see runtimes/process.py):
a handler whose result depends on the process (hash seed, imported state) then diverges as it
would for anyone else. `in_process=True` runs it in the caller's interpreter: faster, weaker.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from provgraph._backend import Backend, default_backend
from provgraph._code import handler_from_snapshot
from provgraph._dataitem import DataItem, ProtectedFiles
from provgraph._execution import RunResult, output_versions
from provgraph._naming import is_store_uri, parse_store_uri, uri_of
from provgraph._run import RUNTIMES, new_run_id
from provgraph.events.artifacts import check_digest
from provgraph.events.errors import ConfigError, Forbidden, NotFound, ReproduceRefused
from provgraph.events.facets import CodeJobFacet, FunctionRef
from provgraph.events.model import UNVERSIONED, RunState
from provgraph.events.request import Expectation, RunRequest
from provgraph.events.settings import Settings
from provgraph.graph.views import RunView
from provgraph.runtimes.local import run_local


def plan(
    run_id: str,
    backend: Backend,
    *,
    runtime: str | None = None,
    image: str | None = None,
    check_inputs: bool = True,
) -> tuple[RunRequest, CodeJobFacet]:
    """The run request (and code version) that re-executes `run_id` exactly, or `ReproduceRefused`.

    `check_inputs=False` skips hashing the inputs' current data now (the API server reads no user
    data); the run still refuses bytes that do not hash to the recorded version when it reads them.
    """
    run = backend.graph().run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    unknown = run.runtime.get("code_unknown")
    if unknown:
        raise ReproduceRefused(f"run {run_id} ({run.namespace}/{run.job_name}) has no known code version: {unknown}")
    jv = run.job_version
    if jv is None or jv.entrypoint is None:
        raise ReproduceRefused(
            f"run {run_id} ({run.namespace}/{run.job_name}) has no source snapshot: it was not recorded by"
            " provgraph's SDK (e.g. another OpenLineage producer), so there is no code to re-run"
        )
    _pinned(jv.code_hash, f"the source snapshot of run {run_id}")
    if not backend.artifacts.exists(jv.code_hash):
        raise ReproduceRefused(f"the source snapshot {jv.code_hash} of run {run_id} is not in {backend.artifacts.url}")
    if run.state != RunState.COMPLETE:
        raise ReproduceRefused(f"run {run_id} ended {run.state}; only completed runs can be reproduced")
    function = _function(run, jv.code_hash)
    inputs, snapshots, versions = _pinned_inputs(run, backend, check_inputs)
    kind = runtime or str(run.runtime.get("kind") or "local")
    if kind not in RUNTIMES:
        raise ConfigError(f"unknown runtime {kind!r} (choose from {', '.join(RUNTIMES)})")
    code = CodeJobFacet(
        code_hash=jv.code_hash,
        entrypoint=jv.entrypoint,
        source_uri=jv.source_uri,
        git_commit=jv.git_commit,
        git_dirty=jv.git_dirty,
    )
    request = RunRequest(
        run_id=new_run_id(),
        project=run.namespace,
        job=run.job_name,
        entrypoint=jv.entrypoint,
        code_hash=jv.code_hash,
        params=run.params,
        inputs=inputs,
        input_snapshots=snapshots,
        input_versions=versions,
        runtime=kind,
        image=image or run.runtime.get("image"),
        resources=dict(run.runtime.get("resources") or {}),
        secrets=list(run.runtime.get("secrets") or []) if kind == "kubernetes" else [],
        function=function,
        reproduces=run.run_id,
        expected=Expectation(
            outputs=_outputs(run),
            results=run.results,
            metrics=run.metrics,
            environment={k: run.runtime.get(k) for k in ("python", "packages_digest", "image")},
        ),
    )
    return request, code


def _function(run: RunView, code_hash: str) -> FunctionRef | None:
    """The hub item or registered function the run executed, whose source hash taken when it was
    resolved must be the job's code snapshot: a graph any producer writes to may say otherwise."""
    recorded = run.runtime.get("function")
    if recorded is None:
        return None
    try:
        function = FunctionRef.model_validate(recorded)
    except ValueError as exc:
        raise ReproduceRefused(f"run {run.run_id}: its recorded function is malformed: {exc}") from exc
    if function.code_hash != code_hash:
        raise ReproduceRefused(
            f"run {run.run_id}: {function.name} {function.version} resolved to code {function.code_hash},"
            f" but the run's code snapshot is {code_hash}"
        )
    return function


def _pinned(digest: str, what: str) -> str:
    """`digest` if it is a well-formed content hash; a graph any producer writes to may say anything."""
    try:
        return check_digest(digest)
    except ConfigError as exc:
        raise ReproduceRefused(f"{what}: {exc}") from exc


def _pinned_inputs(
    run: RunView, backend: Backend, check_inputs: bool
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Input URIs, the inputs to read from their snapshots, and the version every input must have."""
    inputs: dict[str, str] = {}
    snapshots: dict[str, str] = {}
    versions: dict[str, str] = {}
    protected = ProtectedFiles.of(backend.settings)
    for ref in run.inputs:
        name = ref.binding or ref.name
        uri = uri_of(ref.namespace, ref.name)
        if ref.version == UNVERSIONED:
            raise ReproduceRefused(f"input {name!r} ({uri}) was recorded without a content hash; cannot pin it")
        version = _pinned(ref.version, f"input {name!r} ({uri})")
        if is_store_uri(uri):
            if not backend.artifacts.exists(version):
                raise ReproduceRefused(f"input {name!r}: artifact {uri}@{version} is no longer in the store")
            inputs[name] = f"{uri}@{version}"
            continue
        protected.check(name, uri)
        inputs[name], versions[name] = uri, version
        if backend.artifacts.exists(version):
            snapshots[name] = version
            continue
        if not check_inputs:
            continue
        current = _current_hash(uri, backend)
        if current != version:
            raise ReproduceRefused(
                f"input {name!r} ({uri}) changed since run {run.run_id}: recorded {version},"
                f" now {current or 'missing'}; no snapshot of the recorded version exists"
                " (set PROVGRAPH_SNAPSHOT_INPUTS_MAX_BYTES to keep them)"
            )
    return inputs, snapshots, versions


def _current_hash(uri: str, backend: Backend) -> str | None:
    try:
        return DataItem("check", uri, s3_endpoint_url=backend.settings.s3_endpoint_url).hash
    except NotFound:
        return None


def reproduce(
    run_id: str,
    *,
    runtime: str | None = None,
    image: str | None = None,
    in_process: bool = False,
    settings: Settings | None = None,
    backend: Backend | None = None,
) -> RunResult:
    """Re-run `run_id` from the graph and compare: `result.verdict.verdict` is REPRODUCED or DIVERGED
    (FAILED when the reproduction could not finish).

    The local runtime runs it in a fresh interpreter and waits for it; `in_process=True` runs it in
    this one, which cannot notice results that depend on the process (hash seed, state left by
    earlier imports). On the kubernetes runtime the run is submitted and the verdict arrives with
    its COMPLETE event; the returned result is then in state REQUESTED.
    """
    backend = backend or (Backend(settings) if settings is not None else default_backend())
    request, code = plan(run_id, backend, runtime=runtime, image=image)
    if request.runtime == "kubernetes":
        from provgraph.runtimes.kubernetes import submit

        return submit(request, code, backend)
    if request.function is not None and request.function.isolated:
        from provgraph._isolated import run_isolated

        return run_isolated(request, code, backend)
    if in_process:
        handler = handler_from_snapshot(
            backend.artifacts.get_bytes(request.code_hash),
            request.code_hash,
            request.entrypoint,
            mlrun_compat=backend.settings.mlrun_compat,
        )
        return run_local(request, handler, code, backend)
    from provgraph.runtimes.process import launch, settings_env, supervise

    env = {**os.environ, **settings_env(backend.settings)}
    child = launch(request, code, backend, backend.transport, env=env, cwd=os.getcwd())
    return supervise(child, backend.transport)


def request_reproduction(
    run_id: str,
    backend: Backend,
    *,
    runtime: str | None = None,
    on_host: bool = True,
    may_use: Callable[[str], bool] | None = None,
) -> str:
    """Start a reproduction of `run_id` elsewhere and return its run id at once (for servers).

    Nothing of the run executes in this process and no user data is read here (the run verifies
    every input against its recorded hash when it reads it). Local: `provgraph exec` in a new
    session with a minimal environment (no API tokens, no database credentials), watched by a thread
    that reports it FAIL if it dies without saying so; refused unless `on_host` (a server's token
    holders would run code as its user, reading its files). Kubernetes: submitted to the launcher.
    `may_use(project)`: whether the caller may read that project's `store://` artifacts (the
    reproduction reads every input the run read, as its ingest would check).
    """
    from provgraph.runtimes.process import clean_env, launch, supervise_in_background

    request, code = plan(run_id, backend, runtime=runtime, check_inputs=False)
    if may_use is not None:
        for key, uri in request.inputs.items():
            project = parse_store_uri(uri).project if is_store_uri(uri) else None
            if project is not None and not may_use(project):
                raise Forbidden(f"run {run_id} read {key} from project {project!r}, which this token may not use")
    if request.runtime != "kubernetes" and not on_host:
        raise ReproduceRefused(
            f"this server reproduces token holders' runs on Kubernetes only (runtime: kubernetes): a local"
            f" reproduction of {run_id} would run its code as the server's user on its host"
            " (PROVGRAPH_API_REPRODUCE_ON_HOST=true allows it)"
        )
    if request.runtime == "kubernetes":
        from provgraph.runtimes.kubernetes import submit

        return submit(request, code, backend).run_id
    python = None
    if request.function is not None and request.function.isolated:
        from provgraph._isolated import cached_environment

        python = cached_environment(request.function.requirements, backend.settings)
        if python is None:  # a server does not build environments; the CLI or SDK does, once
            raise ReproduceRefused(
                f"run {run_id} ran in an isolated environment ({', '.join(request.function.requirements)}) that"
                " is not built here: reproduce it once with `provgraph reproduce`"
            )
    transport = backend.transport
    env = clean_env(backend.settings)
    child = launch(request, code, backend, transport, env=env, capture_stderr=True, python=python)
    supervise_in_background(child, transport)
    return request.run_id


def _outputs(run: RunView) -> dict[str, str]:
    """Each output key's versions as the verdict compares them (`output_versions`)."""
    by_key: dict[str, list[str]] = {}
    for o in run.outputs:
        by_key.setdefault(o.binding, []).append(o.version)
    return {key: output_versions(versions) for key, versions in by_key.items()}
