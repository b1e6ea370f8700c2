"""The local runtime: executes the handler in this process, tracked exactly like any other run."""

from __future__ import annotations

from provgraph._backend import Backend
from provgraph._code import CodeSnapshot, Handler
from provgraph._execution import RunResult, execute
from provgraph.events.facets import CodeJobFacet
from provgraph.events.request import RunRequest


def code_facet(snap: CodeSnapshot, backend: Backend) -> CodeJobFacet:
    """Store the source snapshot (once per hash) and describe it as the job's code version."""
    digest, _ = backend.artifacts.put_bytes(snap.source)
    return CodeJobFacet(
        code_hash=digest,
        entrypoint=snap.entrypoint,
        source_uri=backend.artifacts.uri(digest),
        git_commit=snap.git_commit,
        git_dirty=snap.git_dirty,
    )


def run_local(
    request: RunRequest,
    handler: Handler,
    code: CodeJobFacet,
    backend: Backend,
    *,
    code_unknown: str | None = None,
    inputs_checked: bool = False,
) -> RunResult:
    """In this process. `code_unknown`: the loaded handler is not the snapshot (its file was edited
    since it was imported), so the run records no code version rather than a wrong one.
    `inputs_checked`: the caller has just checked the request's inputs against `backend.protected`."""
    return execute(
        request, handler, None if code_unknown else code, backend, code_unknown, inputs_checked=inputs_checked
    )
