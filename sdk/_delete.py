"""`provgraph.delete(kind, target)`: delete a run, an artifact (or one version) or a project, as an event.

The event is a COMPLETE run of the object's project's `DELETE_JOB` carrying the `provgraph_tombstone`
facet (and the same values as its parameters, which is how both graph stores keep it). Nothing is
rewritten: `graph/tombstones.py` hides what tombstones name, and `provgraph gc` later frees the
artifact bytes no live version references.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from provgraph._backend import Backend, default_backend
from provgraph._naming import is_store_uri, parse_store_uri, resolve_version
from provgraph._tags import one_event_run
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import ParamsRunFacet, TombstoneRunFacet
from provgraph.events.facets.tombstone_run import DELETE_JOB, TombstoneKind
from provgraph.events.model import RunEvent
from provgraph.graph.contract import LineageStore, RunFilter
from provgraph.graph.gc import GcReport, collect, referenced
from provgraph.graph.tombstones import Tombstone, deleted

KINDS: tuple[TombstoneKind, ...] = ("run", "artifact", "project")


def tombstone_event(tomb: TombstoneRunFacet, project: str, at: datetime | None = None) -> RunEvent:
    """The one event of a deletion run (`events/admission.py` says what makes it admissible)."""
    return one_event_run(project, DELETE_JOB, at, tombstone=tomb, params=ParamsRunFacet(params=tomb.as_params()))


def target_of(kind: str, target: str, graph: LineageStore) -> tuple[TombstoneKind, str, str]:
    """(kind, canonical target, project) of a live object; `NotFound` if there is none to delete."""
    if kind == "run":
        run = graph.run(target)
        if run is None:
            raise NotFound(f"no run {target!r}")
        if run.job_name == DELETE_JOB:
            raise ConfigError(f"run {run.run_id} is a deletion: tombstones are kept (the log is never rewritten)")
        return "run", run.run_id, run.namespace
    if kind == "artifact":
        if not is_store_uri(target):
            raise ConfigError(f"not an artifact URI: {target!r} (expected store://<project>/<key>[@sha256:…|:alias])")
        ref = parse_store_uri(target)
        pinned = ref.version or ref.alias or ref.producer or target.endswith(":latest")  # `:latest`: one version
        if not pinned:
            if graph.dataset(ref.namespace, ref.key) is None:
                raise NotFound(f"no artifact {ref.key!r} in project {ref.project!r}")
            return "artifact", f"{ref.namespace}/{ref.key}", ref.project
        version = resolve_version(ref, graph)
        if graph.dataset_version(ref.namespace, ref.key, version) is None:
            raise NotFound(f"no version {version} of artifact {ref.key!r} in project {ref.project!r}")
        return "artifact", f"{ref.namespace}/{ref.key}@{version}", ref.project
    if kind == "project":
        if not graph.runs(RunFilter(project=target), first=1):
            raise NotFound(f"no project {target!r} (it has no runs)")
        return "project", target, target
    raise ConfigError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")


def delete(
    kind: str, target: str, backend: Backend | None = None, *, by: str | None = None, reason: str = ""
) -> Tombstone:
    """Delete the run, artifact (`store://p/key`: every version; `@sha256:…` or `:alias`: that one) or
    project `target`: records a tombstone in its project. Returns the recorded tombstone."""
    from provgraph._abort import who

    backend = backend or default_backend()
    kind, canonical, project = target_of(kind, target, backend.graph())
    facet = TombstoneRunFacet(kind=kind, target=canonical, by=by or who(), reason=reason)
    event = tombstone_event(facet, project)
    backend.transport.emit(event)
    backend.transport.flush()
    return Tombstone(kind, canonical, project, event.event_time, facet.by, reason, event.run.run_id)


def gc(backend: Backend | None = None, *, dry_run: bool = False, min_age: timedelta = timedelta(hours=1)) -> GcReport:
    """Remove the artifact-store objects that nothing live references (`graph/gc.py`), reading every
    event of the embedded log; objects younger than `min_age` are kept (uploads under way)."""
    from provgraph.events.serde import loads
    from provgraph.events.transport.sqlite import SqliteEventLog

    backend = backend or default_backend()
    if backend.settings.transport != "sqlite":
        raise ConfigError("gc reads the embedded event log (transport sqlite); other transports are not supported yet")
    gone = deleted(backend.graph())
    log = SqliteEventLog(backend.settings.events_db)
    try:
        live = referenced((loads(r.body) for r in log.scan()), gone)
    finally:
        log.close()
    return collect(backend.artifacts, live, dry_run=dry_run, min_age=min_age)
