"""The artifact registry's read side: a project's logged artifacts with their versions, aliases,
producing runs and consumers, answered through the `LineageStore` protocol (so by both stores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from provgraph.events.errors import ConfigError
from provgraph.graph.contract import LineageStore
from provgraph.graph.ids import NodeId, as_run_id
from provgraph.graph.tags import TagMove, aliases, history
from provgraph.graph.views import DatasetVersionView, Direction

KINDS = {"model": "model", "artifact": "artifact", "data": "data", "dataset": "data"}
"""`--kind` values and the artifact kind each one means (`dataset` is MLRun's word for `data`)."""
MAX_LISTED = 1000
MAX_CONSUMERS = 100


@dataclass(frozen=True)
class ArtifactSummary:
    namespace: str
    name: str
    kind: str | None
    latest: DatasetVersionView | None
    version_count: int
    aliases: dict[str, str]
    """alias -> version, now."""

    @property
    def uri(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class VersionDetail:
    version: DatasetVersionView
    produced_by: str | None
    consumers: list[str]
    aliases: list[str]
    """The aliases pointing at this version (as of the question's time)."""


@dataclass(frozen=True)
class ArtifactDetail:
    summary: ArtifactSummary
    versions: list[VersionDetail]
    tag_history: list[TagMove] = field(default_factory=list)


def kind_of(kind: str | None) -> str | None:
    if kind is None:
        return None
    if kind not in KINDS:
        raise ConfigError(f"unknown artifact kind {kind!r} (one of {', '.join(KINDS)})")
    return KINDS[kind]


def summary(store: LineageStore, namespace: str, name: str, as_of: datetime | None = None) -> ArtifactSummary | None:
    found = store.dataset(namespace, name)
    if found is None:
        return None
    tags = {alias: move.version for alias, move in aliases(store, namespace, name, as_of).items()}
    latest = found.versions[-1] if found.versions else None
    return ArtifactSummary(namespace, name, found.kind, latest, len(found.versions), tags)


def artifacts(
    store: LineageStore, project: str, kind: str | None = None, tag: str | None = None, first: int = 100
) -> list[ArtifactSummary]:
    """The project's logged artifacts in name order (of one kind; with alias `tag` set), at most `first`."""
    namespace = f"store://{project}"
    names = store.dataset_names(namespace, kind_of(kind), min(max(0, first), MAX_LISTED) if tag is None else MAX_LISTED)
    found = [s for s in (summary(store, namespace, n) for n in names) if s is not None]
    return [s for s in found if tag is None or tag in s.aliases][: max(0, first)]


def detail(store: LineageStore, namespace: str, name: str, as_of: datetime | None = None) -> ArtifactDetail | None:
    """Every version (oldest first) with its producer, consumers and aliases, and the alias history."""
    head = summary(store, namespace, name, as_of)
    if head is None:
        return None
    found = store.dataset(namespace, name)
    by_version: dict[str, list[str]] = {}
    for alias, version in head.aliases.items():
        by_version.setdefault(version, []).append(alias)
    versions = []
    for v in found.versions if found else []:
        producer = store.produced_by(namespace, name, v.version)
        tags = sorted(by_version.get(v.version, []))
        versions.append(VersionDetail(v, producer.run_id if producer else None, consumers(store, v), tags))
    return ArtifactDetail(head, versions, history(store, namespace, name, as_of))


def consumers(store: LineageStore, version: DatasetVersionView) -> list[str]:
    """Run ids of the runs that read this version."""
    root = NodeId.dataset(version.namespace, version.name, version.version)
    graph = store.lineage(root, Direction.DOWNSTREAM, depth=1, fan_out=MAX_CONSUMERS)
    readers = [e.source for e in graph.edges if e.kind == "READ" and e.target == str(root)]
    return sorted({as_run_id(r) for r in readers})
