"""`provgraph.tag(uri, alias)`: move an alias of a logged artifact to a version, as an event.

The event is a COMPLETE run of the project's `TAG_JOB` carrying the `provgraph_tag` facet (and the
same values as its parameters, which is how both graph stores keep it): the event log records who
moved which alias when, and `graph/tags.py` reads the history back, as of any time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from provgraph._backend import Backend, default_backend
from provgraph._naming import is_store_uri, parse_store_uri, resolve_version
from provgraph._run import new_run_id
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import EventRunFacet, ParamsRunFacet, TagRunFacet
from provgraph.events.facets.tag_run import ALIAS, TAG_JOB
from provgraph.events.model import EventType, Job, Run, RunEvent, RunFacets
from provgraph.graph.tags import TagMove


def tag_event(tag: TagRunFacet, project: str, at: datetime | None = None) -> RunEvent:
    """The one event of a tag run (`events/admission.py` says what makes it admissible)."""
    return one_event_run(project, TAG_JOB, at, tag=tag, params=ParamsRunFacet(params=tag.as_params()))


def one_event_run(project: str, job: str, at: datetime | None, **facets: Any) -> RunEvent:
    """A run recorded by one COMPLETE event (a tag move, a deletion): `facets` plus its event numbering."""
    run_id = new_run_id()
    event = EventRunFacet(event_id=f"{run_id}:1", seq=1, total=1)
    return RunEvent(
        event_type=EventType.COMPLETE,
        event_time=at or datetime.now(UTC),
        run=Run(run_id=run_id, facets=RunFacets(**facets, event=event)),
        job=Job(namespace=project, name=job),
    )


def check_alias(alias: str) -> None:
    """`ConfigError` for an alias the write rules refuse, before anything is sent."""
    if not ALIAS.fullmatch(alias) or alias == "latest":
        raise ConfigError(
            f"bad alias {alias!r}: lower-case letters, digits, '_', '.', '-', starting with a letter,"
            " at most 63 characters, and not 'latest'"
        )


def tag(uri: str, alias: str, backend: Backend | None = None, *, by: str | None = None) -> TagMove:
    """Point `alias` of the artifact `uri` (`store://p/key@sha256:…`, `:other-alias` or the latest) at
    that version; `NotFound` if the version is not in the graph. Returns the recorded move."""
    from provgraph._abort import who

    check_alias(alias)
    if not is_store_uri(uri):
        raise ConfigError(f"not an artifact URI: {uri!r} (expected store://<project>/<key>[@sha256:…|:alias])")
    ref = parse_store_uri(uri)
    backend = backend or default_backend()
    graph = backend.graph()
    version = resolve_version(ref, graph)
    if graph.dataset_version(ref.namespace, ref.key, version) is None:
        raise NotFound(f"no version {version} of artifact {ref.key!r} in project {ref.project!r}")
    facet = TagRunFacet(namespace=ref.namespace, name=ref.key, version=version, alias=alias, by=by or who())
    event = tag_event(facet, ref.project)
    backend.transport.emit(event)
    backend.transport.flush()
    return TagMove(ref.namespace, ref.key, alias, version, event.event_time, facet.by, event.run.run_id)
