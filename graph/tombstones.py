"""Deleted runs, artifacts and projects, read back from deletion runs, and the store view that hides them.

A tombstone is a COMPLETE run of job `DELETE_JOB` in the deleted object's project whose parameters
are the `provgraph_tombstone` facet's `as_params()` (`events/admission.py` holds every deletion run
to that), so both stores answer from the run parameters they already keep and replay rebuilds the
same state; nothing here is store-specific. A tombstone counts only for its own project's objects:
one naming another project's run, artifact or project is ignored even if it was admitted (a run
target unknown when the event arrived), so no project can hide another's data.

`LiveStore` wraps any `LineageStore`: runs, datasets and versions that a tombstone names (or whose
project is deleted) are not found, listed, searched or resolved; lineage walks still pass through
them (`Deleted.of_node` marks them). `StoreHandle.fresh()` hands it out unless asked otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from provgraph.events.admission import store_project
from provgraph.events.states import ARTIFACT_TARGET, DELETE_JOB
from provgraph.graph.contract import DEFAULT_DEPTH, NOW, AsOf, LineageStore, RunFilter
from provgraph.graph.ids import NodeId, parse_node_id
from provgraph.graph.views import DatasetVersionView, DatasetView, Direction, LineageGraph, RunView

MAX_TOMBSTONES = 100_000
"""Deletion runs read per question (per project when `deleted` is given projects, else across them)."""


@dataclass(frozen=True)
class Tombstone:
    """One deletion: `kind` `target` (in `project`) deleted at `at` by `by`, recorded by run `run_id`."""

    kind: str
    target: str
    project: str
    at: datetime
    by: str
    reason: str
    run_id: str


@dataclass(frozen=True)
class Deleted:
    """What the tombstones delete, by key."""

    runs: dict[str, Tombstone] = field(default_factory=dict)
    artifacts: dict[tuple[str, str], Tombstone] = field(default_factory=dict)
    versions: dict[tuple[str, str, str], Tombstone] = field(default_factory=dict)
    projects: dict[str, Tombstone] = field(default_factory=dict)

    def run(self, run_id: str, namespace: str, started: datetime | None = None) -> Tombstone | None:
        """The run's tombstone, or its project's when the run `started` before that (unknown: it did)."""
        return self.runs.get(run_id) or _covers(self.projects.get(namespace), started)

    def artifact(self, namespace: str, name: str, created: datetime | None = None) -> Tombstone | None:
        """The tombstone of the whole artifact (or its project) that covers a version `created` then
        (unknown: any); a dataset outside `store://` never has one."""
        project = store_project(namespace)
        whole = _covers(self.artifacts.get((namespace, name)), created)
        return whole or (_covers(self.projects.get(project), created) if project else None)

    def version(self, namespace: str, name: str, version: str, created: datetime | None = None) -> Tombstone | None:
        return self.versions.get((namespace, name, version)) or self.artifact(namespace, name, created)

    def of_node(self, node_id: str, namespace: str | None = None, when: datetime | None = None) -> Tombstone | None:
        """The tombstone of a graph node id (`run:…`, `dataset:…@version`); runs need their `namespace`,
        and `when` (a run's start, a version's creation) tells objects made after a deletion apart."""
        node = parse_node_id(node_id)
        if node.kind == "run":
            return self.run(node.key[0], namespace or "", when)
        if node.kind == "datasetVersion":
            namespace, name, version = node.key
            return self.version(namespace, name, version, when)
        if node.kind == "dataset":
            namespace, name = node.key
            return self.artifact(namespace, name, when)
        return _covers(self.projects.get(node.key[0]), when)

    def __bool__(self) -> bool:
        return bool(self.runs or self.artifacts or self.versions or self.projects)


def _covers(tomb: Tombstone | None, when: datetime | None) -> Tombstone | None:
    """`tomb`, when it deletes an object of time `when`: a project or a whole artifact is deleted as it
    was then, so a run or version made later under the same name is not (None `when`: assume it is)."""
    return tomb if tomb is not None and (when is None or when <= tomb.at) else None


def _tombstone(run: RunView) -> Tombstone | None:
    """The tombstone a deletion run recorded; None for one that is malformed or names another project."""
    p, at = run.params, run.ended_at or run.started_at
    kind, target = p.get("kind"), p.get("target")
    if not isinstance(kind, str) or not isinstance(target, str) or at is None:
        return None
    if kind == "project" and target != run.namespace:
        return None
    if kind == "artifact":
        found = ARTIFACT_TARGET.fullmatch(target)
        if found is None or found["project"] != run.namespace:
            return None
    return Tombstone(kind, target, run.namespace, at, str(p.get("by") or ""), str(p.get("reason") or ""), run.run_id)


def tombstones(store: LineageStore, project: str | None = None) -> list[Tombstone]:
    """Every effective tombstone (of one project), oldest first. A run tombstone counts only when the
    run belongs to the tombstone's project."""
    if isinstance(store, LiveStore):  # a deleted project's own tombstones are what hides it
        store = store.inner
    runs = store.runs(RunFilter(project=project, job=DELETE_JOB), first=MAX_TOMBSTONES)
    found = [t for t in map(_tombstone, runs) if t is not None]
    targets = [t.target for t in found if t.kind == "run"]
    owners = store.run_owners(targets) if targets else {}
    found = [t for t in found if t.kind != "run" or owners.get(t.target) == t.project]
    return sorted(found, key=lambda t: (t.at, t.run_id))


def deleted(store: LineageStore, projects: Iterable[str] | None = None) -> Deleted:
    """What is deleted now (the first tombstone of an object is the one reported).

    With `projects`, only their deletion runs are read: a tombstone counts only for its own project's
    objects, so the answer about any object of those projects is the same, and a read of one run
    asks the graph for its project's few deletion runs instead of every one in the store."""
    if projects is None:
        tombs = tombstones(store)
    else:
        tombs = sorted((t for p in sorted(set(projects)) for t in tombstones(store, p)), key=lambda t: (t.at, t.run_id))
    d = Deleted()
    for t in tombs:
        if t.kind == "run":
            d.runs.setdefault(t.target, t)
        elif t.kind == "project":
            d.projects.setdefault(t.target, t)
        elif (found := ARTIFACT_TARGET.fullmatch(t.target)) is not None:
            namespace, key = f"store://{found['project']}", found["key"]
            if found["version"]:
                d.versions.setdefault((namespace, key, found["version"]), t)
            else:
                d.artifacts.setdefault((namespace, key), t)
    return d


def _time(text: Any) -> datetime | None:
    """A lineage node's time prop (ISO text) as a datetime; None when it has none."""
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def tombstone_mark(t: Tombstone) -> dict[str, str]:
    """How a deleted node is marked in a lineage answer."""
    return {"at": t.at.isoformat(), "by": t.by, "run_id": t.run_id}


class LiveStore:
    """A `LineageStore` without what tombstones delete (see the module docstring). Every other call
    goes to the wrapped store; `inner` is the store itself (`--include-deleted`)."""

    def __init__(self, inner: LineageStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def deleted(self) -> Deleted:
        return deleted(self.inner)

    def _deleted_in(self, namespace: str) -> Deleted:
        """What is deleted in the project of a `store://` dataset namespace (none outside `store://`)."""
        project = store_project(namespace)
        return deleted(self.inner, [project]) if project else Deleted()

    def run(self, run_id: str) -> RunView | None:
        found = self.inner.run(run_id)
        if found is None or deleted(self.inner, [found.namespace]).run(found.run_id, found.namespace, found.started_at):
            return None
        return found

    def runs(self, where: RunFilter | None = None, *, first: int = 50, after: str | None = None) -> list[RunView]:
        gone = self.deleted() if where is None or where.project is None else deleted(self.inner, [where.project])
        if not gone:
            return self.inner.runs(where, first=first, after=after)
        if where is not None and (project := gone.projects.get(where.project or "")) is not None:
            # a deleted project's runs are its later ones: asked for directly, not paged through and dropped
            where = replace(where, since=project.at if where.since is None else max(where.since, project.at))
        live: list[RunView] = []
        page = max(1, first) + len(gone.runs)
        while len(live) < first:
            batch = self.inner.runs(where, first=page, after=after)
            live += [r for r in batch if not gone.run(r.run_id, r.namespace, r.started_at)]
            if len(batch) < page:
                break
            after = batch[-1].run_id
        return live[: max(0, first)]

    def children(self, run_id: str, first: int = 1000) -> list[RunView]:
        gone = self.deleted()
        return [r for r in self.inner.children(run_id, first) if not gone.run(r.run_id, r.namespace, r.started_at)]

    def incomplete_runs(self, project: str | None = None, first: int = 50) -> list[RunView]:
        gone = self.deleted()
        return [
            r for r in self.inner.incomplete_runs(project, first) if not gone.run(r.run_id, r.namespace, r.started_at)
        ]

    def dataset(self, namespace: str, name: str, at: AsOf = NOW) -> DatasetView | None:
        found = self.inner.dataset(namespace, name, at)
        if found is None:
            return None
        gone = self._deleted_in(namespace)
        versions = [v for v in found.versions if not gone.version(namespace, name, v.version, v.created_at)]
        if (found.versions and not versions) or (not found.versions and gone.artifact(namespace, name)):
            return None
        return found.model_copy(update={"versions": versions})

    def dataset_version(self, namespace: str, name: str, version: str) -> DatasetVersionView | None:
        found = self.inner.dataset_version(namespace, name, version)
        if found is None or self._deleted_in(namespace).version(namespace, name, version, found.created_at):
            return None
        return found

    def dataset_names(self, namespace: str, kind: str | None = None, first: int = 100) -> list[str]:
        gone = self.deleted()
        names = self.inner.dataset_names(namespace, kind, first + len(gone.artifacts))
        # a deleted artifact logged again since is listed (with its new versions only)
        return [n for n in names if not gone.artifact(namespace, n) or self.dataset(namespace, n)][: max(0, first)]

    def latest_version(self, namespace: str, name: str) -> DatasetVersionView | None:
        """The newest version no tombstone deletes (a deleted latest is never resolved or cached from)."""
        found = self.inner.latest_version(namespace, name)
        gone = self._deleted_in(namespace)
        if found is None or not gone.version(namespace, name, found.version, found.created_at):
            return found
        live = self.dataset(namespace, name)
        return live.versions[-1] if live and live.versions else None

    def lineage(
        self,
        node: NodeId,
        direction: Direction,
        depth: int = DEFAULT_DEPTH,
        fan_out: int = 100,
        *,
        include_failed: bool = False,
        at: AsOf = NOW,
    ) -> LineageGraph:
        """The walk through deleted nodes too; each deleted node's props carry `deleted` {at, by, run_id}."""
        graph = self.inner.lineage(node, direction, depth, fan_out, include_failed=include_failed, at=at)
        gone = self.deleted()
        if not gone:
            return graph
        nodes = []
        for n in graph.nodes:
            when = _time(n.props.get("started_at")) if n.kind == "run" else None
            tomb = gone.of_node(n.id, n.props.get("namespace"), when) if n.kind in ("run", "datasetVersion") else None
            if tomb is not None:
                n = replace(n, props={**n.props, "deleted": tombstone_mark(tomb)})
            nodes.append(n)
        return graph.model_copy(update={"nodes": nodes})

    def search(self, text: str, kinds: Sequence[str] = ("job", "run", "dataset"), limit: int = 20) -> list[str]:
        gone = self.deleted()
        hits = self.inner.search(text, kinds, limit)
        if not gone:
            return hits

        def live(hit: str) -> bool:
            if hit.startswith("run:"):  # read with its start: a run made after its project's deletion is live
                return self.run(hit.partition(":")[2]) is not None
            return gone.of_node(hit) is None

        return [h for h in hits if live(h)]

    def run_ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        gone = self.deleted()
        ids = self.inner.run_ids_with_prefix(prefix, limit)
        if not gone:
            return ids
        return [r for r in ids if self.run(r) is not None]
