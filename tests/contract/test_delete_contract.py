"""Deletion as tombstone events: the same hidden, marked and resolved answers from every store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provgraph._delete import tombstone_event
from provgraph._naming import StoreRef, resolve_version
from provgraph.events.errors import NotFound
from provgraph.events.facets import ArtifactDatasetFacet, DatasetVersionDatasetFacet, TombstoneRunFacet
from provgraph.events.facets.tombstone_run import TombstoneKind
from provgraph.events.model import Dataset, DatasetFacets, RunEvent
from provgraph.events.synthetic import EPOCH, content_hash, run_events
from provgraph.graph.artifacts import artifacts
from provgraph.graph.contract import LineageStore, RunFilter
from provgraph.graph.ids import NodeId
from provgraph.graph.tombstones import LiveStore, deleted, tombstones
from provgraph.graph.views import Direction

NS = "store://demo"
V1, V2 = content_hash("weights-1"), content_hash("weights-2")


def _artifact(name: str, version: str) -> Dataset:
    facets = DatasetFacets(
        version=DatasetVersionDatasetFacet(dataset_version=version), artifact=ArtifactDatasetFacet(kind="model")
    )
    return Dataset(namespace=NS, name=name, facets=facets)


def _delete(kind: TombstoneKind, target: str, project: str = "demo", days: int = 5) -> list[RunEvent]:
    tomb = TombstoneRunFacet(kind=kind, target=target, by="ann@host", reason="test")
    return [tombstone_event(tomb, project, at=EPOCH + timedelta(days=days))]


@pytest.fixture
def graph(store: LineageStore) -> LineageStore:
    day = timedelta(days=1)
    store.apply(
        [
            *run_events("train1", namespace="demo", job="train", outputs=[_artifact("model", V1)], start=EPOCH),
            *run_events("train2", namespace="demo", job="train", outputs=[_artifact("model", V2)], start=EPOCH + day),
            *run_events("serve", namespace="demo", job="serve", inputs=[_artifact("model", V1)], start=EPOCH + 2 * day),
            *run_events("other", namespace="other", job="train", start=EPOCH),
        ]
    )
    return store


def test_a_deleted_run_is_hidden_but_lineage_walks_through_it_marked(graph: LineageStore) -> None:
    graph.apply(_delete("run", "train1"))
    live = LiveStore(graph)
    assert live.run("train1") is None and graph.run("train1") is not None
    assert [r.run_id for r in live.runs(RunFilter(project="demo", job="train"))] == ["train2"]
    assert "run:train1" not in live.search("train1", ("run",))
    walk = live.lineage(NodeId.run("serve"), Direction.UPSTREAM, depth=2)
    marks = {n.id: n.props.get("deleted") for n in walk.nodes}
    assert marks["run:serve"] is None
    assert marks["run:train1"] is not None and marks["run:train1"]["by"] == "ann@host"
    assert [t.target for t in tombstones(graph)] == ["train1"]


def test_a_deleted_version_is_not_resolved_as_latest_and_a_deleted_artifact_not_listed(graph: LineageStore) -> None:
    graph.apply(_delete("artifact", f"{NS}/model@{V2}"))
    live = LiveStore(graph)
    assert resolve_version(StoreRef("demo", "model"), live) == V1
    assert live.dataset_version(NS, "model", V2) is None
    assert [a.version_count for a in artifacts(live, "demo")] == [1]
    graph.apply(_delete("artifact", f"{NS}/model", days=6))
    with pytest.raises(NotFound, match="no artifact 'model' in project 'demo'"):
        resolve_version(StoreRef("demo", "model"), live)
    assert artifacts(live, "demo") == [] and [a.name for a in artifacts(graph, "demo")] == ["model"]


def test_a_deleted_project_hides_its_runs_only(graph: LineageStore) -> None:
    graph.apply(_delete("project", "demo"))
    live = LiveStore(graph)
    assert live.runs(RunFilter(project="demo")) == []
    assert [r.run_id for r in live.runs()] == ["other"]
    assert live.dataset(NS, "model") is None
    assert live.run("train1") is None and live.run("other") is not None
    assert live.dataset_version(NS, "model", V1) is None and live.latest_version(NS, "model") is None


class _Spy:
    """A store that records the filters of the run lists asked of it."""

    def __init__(self, inner: LineageStore) -> None:
        self.inner, self.asked = inner, list[RunFilter | None]()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def runs(self, where: RunFilter | None = None, **kw: object) -> object:
        self.asked.append(where)
        return self.inner.runs(where, **kw)  # type: ignore[arg-type]


def test_one_object_read_asks_only_its_projects_tombstones_and_answers_as_all_of_them(graph: LineageStore) -> None:
    """`run(id:)` behind `@consistentWith` must stay cheap in a store full of deletions elsewhere,
    and still hide what a tombstone just deleted (run, project, version) the moment it is in."""
    graph.apply(_delete("run", "late", project="third"))  # admitted before "late" turned out to be demo's
    graph.apply(run_events("late", namespace="demo", job="train", start=EPOCH))
    graph.apply(run_events("x", namespace="third", job="train", start=EPOCH))
    graph.apply(_delete("run", "other", project="other"))
    spy = _Spy(graph)
    live = LiveStore(spy)  # type: ignore[arg-type]
    assert live.run("serve") is not None and live.run("late") is not None and live.run("train1") is not None
    assert {w.project for w in spy.asked if w is not None} == {"demo"} and None not in spy.asked
    assert live.run("other") is None and live.run("x") is not None
    graph.apply(_delete("run", "train1", days=6))
    assert live.run("train1") is None
    graph.apply(_delete("artifact", f"{NS}/model@{V1}", days=7))
    assert live.dataset_version(NS, "model", V1) is None and live.dataset_version(NS, "model", V2) is not None
    graph.apply(_delete("project", "demo", days=8))
    assert live.run("serve") is None and live.run("x") is not None
    everything = deleted(graph)
    for project in ("demo", "other", "third"):
        assert deleted(graph, [project]).run("train1", "demo") in (None, everything.run("train1", "demo"))
    assert deleted(graph, ["third"]).run("late", "demo") is None and everything.runs.get("late") is None
    assert deleted(graph, ["demo"]).run("train1", "demo") == everything.runs["train1"]
    assert deleted(graph, ["demo"]).run("serve", "demo") == everything.projects["demo"]
    assert deleted(graph, ["demo"]).version(NS, "model", V1) == everything.version(NS, "model", V1)
    assert deleted(graph, ["other"]).run("other", "other") == everything.run("other", "other") is not None


def test_a_tombstone_naming_another_projects_run_hides_nothing(graph: LineageStore) -> None:
    """Admitted before its target run was known: read as nothing once the run turns out to be another project's."""
    graph.apply(_delete("run", "late", project="demo"))
    graph.apply(run_events("late", namespace="other", job="train", start=EPOCH))
    assert tombstones(graph) == [] and not deleted(graph)
    assert LiveStore(graph).run("late") is not None


def test_replay_rebuilds_the_same_deletions(graph: LineageStore) -> None:
    events = _delete("run", "train1") + _delete("artifact", f"{NS}/model@{V2}", days=6)
    graph.apply(events)
    before = deleted(graph)
    graph.reset()
    graph.apply(
        [
            *run_events("train1", namespace="demo", job="train", outputs=[_artifact("model", V1)], start=EPOCH),
            *run_events(
                "train2", namespace="demo", job="train", outputs=[_artifact("model", V2)], start=EPOCH + timedelta(1)
            ),
            *events,
        ]
    )
    assert deleted(graph) == before
