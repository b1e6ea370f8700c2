"""`provgraph.reproduce`: rebuild a run from the graph alone, re-run it, and say whether it matched.

The plan uses only what the graph recorded: the job version's source snapshot (by hash), the
exact params, every input pinned by content hash, and the original runtime and image. An input
whose data changed is read from its snapshot when one exists; otherwise the reproduction is refused
with both hashes, never silently run on different data.
"""

from __future__ import annotations

from provgraph._backend import Backend, default_backend
from provgraph._code import handler_from_snapshot
from provgraph._dataitem import DataItem
from provgraph._execute import RunResult
from provgraph._naming import is_store_uri, uri_of
from provgraph._run import RUNTIMES, new_run_id
from provgraph.events.errors import ConfigError, NotFound, ReproduceRefused
from provgraph.events.facets import CodeJobFacet
from provgraph.events.model import UNVERSIONED
from provgraph.events.request import Expectation, RunRequest
from provgraph.events.settings import Settings
from provgraph.graph.views import RunView
from provgraph.runtimes.local import run_local


def plan(
    run_id: str, backend: Backend, *, runtime: str | None = None, image: str | None = None
) -> tuple[RunRequest, CodeJobFacet]:
    """The run request (and code version) that re-executes `run_id` exactly, or `ReproduceRefused`."""
    run = backend.graph().run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    jv = run.job_version
    if jv is None or jv.entrypoint is None:
        raise ReproduceRefused(
            f"run {run_id} ({run.namespace}/{run.job_name}) has no source snapshot: it was not recorded by"
            " provgraph's SDK (e.g. another OpenLineage producer), so there is no code to re-run"
        )
    if not backend.artifacts.exists(jv.code_hash):
        raise ReproduceRefused(f"the source snapshot {jv.code_hash} of run {run_id} is not in {backend.artifacts.url}")
    if run.state != "COMPLETE":
        raise ReproduceRefused(f"run {run_id} ended {run.state}; only completed runs can be reproduced")
    inputs, snapshots = _pinned_inputs(run, backend)
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
        runtime=kind,
        image=image or run.runtime.get("image"),
        resources=dict(run.runtime.get("resources") or {}),
        reproduces=run.run_id,
        expected=Expectation(
            outputs={o.binding: o.version for o in run.outputs},
            results=run.results,
            metrics=run.metrics,
            environment={k: run.runtime.get(k) for k in ("python", "packages_digest", "image")},
        ),
    )
    return request, code


def _pinned_inputs(run: RunView, backend: Backend) -> tuple[dict[str, str], dict[str, str]]:
    inputs: dict[str, str] = {}
    snapshots: dict[str, str] = {}
    for ref in run.inputs:
        name = ref.binding or ref.name
        uri = uri_of(ref.namespace, ref.name)
        if ref.version == UNVERSIONED:
            raise ReproduceRefused(f"input {name!r} ({uri}) was recorded without a content hash; cannot pin it")
        if is_store_uri(uri):
            if not backend.artifacts.exists(ref.version):
                raise ReproduceRefused(f"input {name!r}: artifact {uri}@{ref.version} is no longer in the store")
            inputs[name] = f"{uri}@{ref.version}"
            continue
        inputs[name] = uri
        current = _current_hash(uri, backend)
        if current == ref.version:
            continue
        if backend.artifacts.exists(ref.version):
            snapshots[name] = ref.version
            continue
        raise ReproduceRefused(
            f"input {name!r} ({uri}) changed since run {run.run_id}: recorded {ref.version},"
            f" now {current or 'missing'}; no snapshot of the recorded version exists"
            " (set PROVGRAPH_SNAPSHOT_INPUTS_MAX_BYTES to keep them)"
        )
    return inputs, snapshots


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
    settings: Settings | None = None,
    backend: Backend | None = None,
) -> RunResult:
    """Re-run `run_id` from the graph and compare: `result.verdict.verdict` is REPRODUCED or DIVERGED.

    On the kubernetes runtime the run is submitted and the verdict arrives with its COMPLETE event;
    the returned result is then in state REQUESTED.
    """
    backend = backend or (Backend(settings) if settings is not None else default_backend())
    request, code = plan(run_id, backend, runtime=runtime, image=image)
    if request.runtime == "kubernetes":
        from provgraph.runtimes.kubernetes import submit

        return submit(request, code, backend)
    handler = handler_from_snapshot(
        backend.artifacts.get_bytes(request.code_hash), request.code_hash, request.entrypoint
    )
    return run_local(request, handler, code, backend)
