"""`provgraph exec`: run a request stored in the artifact store (in a Kubernetes pod, or the fresh
interpreter of a reproduction). Fetch the request and the code by hash, check both hashes, and
execute with the normal SDK, so the events are exactly those of a local run."""

from __future__ import annotations

from provgraph._backend import Backend
from provgraph._code import handler_from_snapshot
from provgraph._execution import RunResult, effective_params, execute
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import CodeJobFacet
from provgraph.events.request import RunRequest, loads_request, request_hash


def load_request(ref: str, backend: Backend) -> RunRequest:
    """The stored request named by `ref` (its `sha256:` hash), verified against that hash."""
    digest = ref if ref.startswith("sha256:") else f"sha256:{ref}"
    if not backend.artifacts.exists(digest):
        raise NotFound(f"run request {digest} is not in the artifact store {backend.artifacts.url}")
    body = backend.artifacts.get_bytes(digest)
    if request_hash(body) != digest:
        raise ConfigError(f"run request {digest} is corrupt: its bytes hash to {request_hash(body)}")
    return loads_request(body)


def exec_request(ref: str, backend: Backend) -> RunResult:
    request = load_request(ref, backend)
    if not backend.artifacts.exists(request.code_hash):
        raise NotFound(f"code snapshot {request.code_hash} of run {request.run_id} is not in {backend.artifacts.url}")
    handler = handler_from_snapshot(
        backend.artifacts.get_bytes(request.code_hash),
        request.code_hash,
        request.entrypoint,
        mlrun_compat=backend.settings.mlrun_compat,
    )
    code = CodeJobFacet(
        code_hash=request.code_hash,
        entrypoint=request.entrypoint,
        source_uri=backend.artifacts.uri(request.code_hash),
        git_commit=request.git_commit,
        git_dirty=request.git_dirty,
    )
    # a hub run isolated before its handler was loaded carries the params as given: bind them here
    # (idempotent for requests whose params already are the effective ones)
    params = effective_params(handler, request.params, request.inputs)
    return execute(request.model_copy(update={"params": params}), handler, code, backend)
