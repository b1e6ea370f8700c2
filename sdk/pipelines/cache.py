"""Step caching from the recorded graph: a step whose code hash, params, input content hashes and
runtime match an earlier COMPLETE run is not executed; a new COMPLETE run is recorded that reuses
the original's outputs, linked CACHED_FROM it, so lineage and reproduction stay exact.

The same comparison, against the previous run of a step, gives the reasons `pipeline rerun --plan`
prints ("input raw.csv changed sha256:ab… → cd…", "param lr changed 0.1 → 0.2").
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from provgraph._backend import Backend
from provgraph._context import _dataset
from provgraph._dataitem import DataItem
from provgraph._environment import packages_digest
from provgraph._execution import RunResult, emitter_for, runtime_facet
from provgraph._naming import STORE_SCHEME, dataset_identity, is_store_uri, parse_store_uri, resolve_version, uri_of
from provgraph.events.errors import NotFound
from provgraph.events.facets import CachedFromRunFacet, CodeJobFacet
from provgraph.events.model import Dataset, RunState
from provgraph.events.request import RunRequest
from provgraph.graph.contract import LineageStore, RunFilter
from provgraph.graph.projection import canonical_json
from provgraph.graph.views import DatasetRef, RunView

CANDIDATES = 20
"""Newest COMPLETE runs of a step's job compared against it; older matches are not looked for."""
FIRST_PAGE = 2
"""Candidates read first: an identical rerun's source is the newest one, so the usual hit reads two
runs, not twenty (each read builds a whole run view)."""

InputId = tuple[str, str, str]
"""(namespace, name, content hash) of one input."""


@dataclass(frozen=True)
class StepKey:
    """Everything a step's outputs depend on, as recorded on its runs."""

    job: str
    code_hash: str | None
    entrypoint: str
    """`file.py:function`: one file (one code hash) holds many handlers, and a step or `--name` may
    call any of them under one job name."""
    params: dict[str, Any]
    inputs: dict[str, InputId]
    runtime: dict[str, Any]

    @property
    def digest(self) -> str:
        body = canonical_json(
            [self.job, self.code_hash, self.entrypoint, self.params, sorted(self.inputs.items()), self.runtime]
        )
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def environment(image: str | None = None) -> dict[str, Any]:
    """The runtime a local step runs in: what a cache source must have run in too."""
    import platform

    return {"kind": "local", "image": image, "python": platform.python_version(), "packages_digest": packages_digest()}


def input_ids(inputs: dict[str, str], backend: Backend) -> dict[str, InputId]:
    """The content hash each input has now (a pinned store URI says it; files are hashed)."""
    out: dict[str, InputId] = {}
    for key, uri in inputs.items():
        if is_store_uri(uri):
            ref = parse_store_uri(uri)
            try:
                version = resolve_version(ref, backend.graph())
            except NotFound:
                raise NotFound(f"input {key!r}: no artifact {uri}") from None
            out[key] = (ref.namespace, ref.key, version)
            continue
        namespace, name = dataset_identity(uri)
        out[key] = (namespace, name, DataItem(key, uri, s3_endpoint_url=backend.settings.s3_endpoint_url).hash)
    return out


def _recorded_inputs(run: RunView) -> dict[str, InputId]:
    return {(i.binding or i.name): (i.namespace, i.name, i.version) for i in run.inputs}


def _same_runtime(run: RunView, runtime: dict[str, Any]) -> bool:
    return all(run.runtime.get(k) == v for k, v in runtime.items())


def find_cached(graph: LineageStore, backend: Backend, project: str, key: StepKey) -> RunView | None:
    """The newest COMPLETE run this step may reuse (its outputs live and still stored), or None. A run that
    was itself cached points at the run that executed, which becomes the source."""
    if key.code_hash is None:
        return None
    params = canonical_json(key.params)
    for summary in _candidates(graph, RunFilter(project=project, job=key.job, state=RunState.COMPLETE)):
        if (summary.code_hash, summary.entrypoint) != (key.code_hash, key.entrypoint):
            continue
        if canonical_json(summary.params) != params:
            continue
        if not _same_runtime(summary, key.runtime):
            continue
        run = graph.run(summary.cached_from or summary.run_id)
        if run is None or run.state != RunState.COMPLETE or _recorded_inputs(run) != key.inputs:
            continue
        stored = [o for o in run.outputs if _stored(o)]
        # a deleted output version (the graph hides it) is never reused, even while its bytes remain
        if all(graph.dataset_version(o.namespace, o.name, o.version) for o in stored) and all(
            backend.artifacts.exists(o.version) for o in stored
        ):
            return run
    return None


def _candidates(graph: LineageStore, where: RunFilter) -> Iterator[RunView]:
    """The job's CANDIDATES newest COMPLETE runs, newest first, read in two pages (see FIRST_PAGE)."""
    page = graph.runs(where, first=FIRST_PAGE)
    yield from page
    if len(page) == FIRST_PAGE:
        yield from graph.runs(where, first=CANDIDATES - FIRST_PAGE, after=page[-1].run_id)


def _stored(ref: DatasetRef) -> bool:
    return ref.namespace.startswith(f"{STORE_SCHEME}://")


def output_uris(run: RunView) -> dict[str, str]:
    """Pinned URIs of a run's outputs, by the key it logged them under."""
    return {(o.binding or o.name): f"{uri_of(o.namespace, o.name)}@{o.version}" for o in run.outputs}


def record_cached(
    backend: Backend, request: RunRequest, code: CodeJobFacet | None, source: RunView, key: StepKey
) -> RunResult:
    """Record `request` as a COMPLETE run that reused `source`'s outputs (CACHED_FROM `source`)."""
    graph = backend.graph()
    emitter = emitter_for(request, code, backend)
    emitter.start(
        request.params,
        runtime_facet(request),
        cached_from=CachedFromRunFacet(run_id=source.run_id, cache_key=key.digest),
    )
    for name, value in source.metrics.items():
        emitter.metric(name, value, 0)
    emitter.running(
        inputs=[copy_dataset(graph, ref, output=False) for ref in source.inputs],
        outputs=[copy_dataset(graph, ref, output=True) for ref in source.outputs],
    )
    emitter.complete(source.results)
    backend.transport.flush()
    return RunResult(
        request.run_id,
        request.project,
        request.job,
        RunState.COMPLETE,
        results=dict(source.results),
        outputs=output_uris(source),
        metrics=dict(source.metrics),
        position=emitter.position(),
    )


def copy_dataset(graph: LineageStore, ref: DatasetRef, *, output: bool) -> Dataset:
    """A recorded dataset version as another run's input or output (its artifact facts from the graph)."""
    dsv = graph.dataset_version(ref.namespace, ref.name, ref.version)
    return _dataset(
        ref.namespace,
        ref.name,
        ref.version,
        ref.binding or ref.name,
        output=output,
        kind=ref.kind or (dsv.kind if dsv else None) or "data",
        size=dsv.size if dsv else None,
        uri=dsv.uri if dsv else None,
    )


def _short(digest: str) -> str:
    algo, _, hexa = digest.partition(":")
    return f"{algo}:{hexa[:8]}…" if hexa else digest[:12]


def reasons(previous: RunView | None, key: StepKey, step: str) -> list[str]:
    """Why `key` differs from the step's previous run (empty: nothing changed)."""
    if previous is None:
        return [f"step {step} has no previous run"]
    if previous.state != RunState.COMPLETE:
        return [f"previous run of {step} ended {previous.state}"]
    out: list[str] = []
    if previous.code_hash != key.code_hash:
        out.append(f"code of {step} changed {_short(previous.code_hash or '?')} → {_short(key.code_hash or '?')}")
    elif previous.entrypoint != key.entrypoint:
        out.append(f"handler of {step} changed {previous.entrypoint or '?'} → {key.entrypoint}")
    for name in sorted(previous.params.keys() | key.params.keys()):
        before, after = previous.params.get(name), key.params.get(name)
        if canonical_json(before) != canonical_json(after):
            out.append(f"param {name} changed {before!r} → {after!r}")
    recorded = _recorded_inputs(previous)
    for name in sorted(recorded.keys() | key.inputs.keys()):
        before_id, after_id = recorded.get(name), key.inputs.get(name)
        if before_id == after_id:
            continue
        label = os.path.basename((after_id or before_id or ("", name, ""))[1]) or name
        if before_id is None or after_id is None:
            out.append(f"input {label} {'added' if before_id is None else 'removed'}")
        elif before_id[:2] != after_id[:2]:
            out.append(f"input {name} now reads {uri_of(*after_id[:2])} instead of {uri_of(*before_id[:2])}")
        else:
            out.append(f"input {label} changed {_short(before_id[2])} → {_short(after_id[2])}")
    for name, value in key.runtime.items():
        if previous.runtime.get(name) != value:
            out.append(f"runtime {name} changed {previous.runtime.get(name)!r} → {value!r}")
    return out
