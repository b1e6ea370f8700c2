"""Aliases of logged artifacts (`production`, `staging`, …), read back from tag runs.

A tag is a COMPLETE run of job `TAG_JOB` in the artifact's project whose parameters are the
`provgraph_tag` facet's `as_params()` (`events/admission.py` holds every tag run to that), so both
stores answer these questions from the indexed run parameters they already keep; nothing here is
store-specific. An alias points at the version of its latest tag run (event time, then run id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from provgraph.events.admission import CONTENT_HASH, store_project
from provgraph.events.facets.tag_run import ALIAS, TAG_JOB
from provgraph.graph.contract import Condition, LineageStore, RunFilter
from provgraph.graph.views import DatasetVersionView, RunView

MAX_TAGS = 10_000
"""Tag runs read for one artifact (its whole alias history, in practice)."""


@dataclass(frozen=True)
class TagMove:
    """One tag run: `alias` of `namespace`/`name` moved to `version` at `at` by `by`."""

    namespace: str
    name: str
    alias: str
    version: str
    at: datetime
    by: str
    run_id: str


def _move(run: RunView) -> TagMove | None:
    """The tag a run recorded; None for a run that is not a well-formed tag of its own project."""
    p, at = run.params, run.ended_at or run.started_at
    dataset, version, alias, by = (p.get(k) for k in ("dataset", "version", "alias", "by"))
    if not (isinstance(dataset, str) and isinstance(version, str) and isinstance(alias, str)) or at is None:
        return None
    namespace, name = _split(dataset)
    if store_project(namespace) != run.namespace or not CONTENT_HASH.fullmatch(version) or not ALIAS.fullmatch(alias):
        return None
    return TagMove(namespace, name, alias, version, at, str(by or ""), run.run_id)


def _split(dataset: str) -> tuple[str, str]:
    """`store://p/some/key` -> (`store://p`, `some/key`)."""
    project, _, name = dataset.removeprefix("store://").partition("/")
    return f"store://{project}", name


def history(store: LineageStore, namespace: str, name: str, as_of: datetime | None = None) -> list[TagMove]:
    """Every move of every alias of the artifact up to `as_of` (default: now), oldest first."""
    project = store_project(namespace)
    if project is None:
        return []
    where = RunFilter(
        project=project,
        job=TAG_JOB,
        until=as_of + timedelta(microseconds=1) if as_of else None,
        conditions=(Condition("param", "dataset", "=", f"{namespace}/{name}"),),
    )
    moves = [m for m in map(_move, store.runs(where, first=MAX_TAGS)) if m is not None and m.name == name]
    if as_of is not None:
        moves = [m for m in moves if m.at <= as_of]
    return sorted(moves, key=lambda m: (m.at, m.run_id))


def aliases(store: LineageStore, namespace: str, name: str, as_of: datetime | None = None) -> dict[str, TagMove]:
    """Each alias's current move (as of `as_of`), by alias."""
    return {m.alias: m for m in history(store, namespace, name, as_of)}


def resolve(
    store: LineageStore, namespace: str, name: str, alias: str | None, as_of: datetime | None = None
) -> DatasetVersionView | None:
    """The version an alias points at (no alias or `latest`: the newest version); None if there is none."""
    if alias in (None, "latest"):
        return store.latest_version(namespace, name)
    move = aliases(store, namespace, name, as_of).get(alias)
    return store.dataset_version(namespace, name, move.version) if move else None
