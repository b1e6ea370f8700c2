"""Aliases and the artifact registry: the same answers from every store, alias history as of any time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provgraph._naming import StoreRef, resolve_version
from provgraph._tags import tag_event
from provgraph.events.errors import Inadmissible, NotFound
from provgraph.events.facets import ArtifactDatasetFacet, DatasetVersionDatasetFacet, TagRunFacet
from provgraph.events.model import Dataset, DatasetFacets
from provgraph.events.synthetic import EPOCH, content_hash, run_events
from provgraph.graph.artifacts import artifacts, detail
from provgraph.graph.contract import LineageStore
from provgraph.graph.tags import aliases, history

NS = "store://demo"
V1, V2 = content_hash("weights-1"), content_hash("weights-2")


def _artifact(name: str, version: str, kind: str = "model") -> Dataset:
    facets = DatasetFacets(
        version=DatasetVersionDatasetFacet(dataset_version=version),
        artifact=ArtifactDatasetFacet(kind=kind),
    )
    return Dataset(namespace=NS, name=name, facets=facets)


def _tag(version: str, alias: str, name: str = "model", by: str = "ann@host") -> TagRunFacet:
    return TagRunFacet(namespace=NS, name=name, version=version, alias=alias, by=by)


@pytest.fixture
def registry(store: LineageStore) -> LineageStore:
    store.apply(
        [
            *run_events("train1", namespace="demo", job="train", outputs=[_artifact("model", V1)], start=EPOCH),
            *run_events(
                "train2", namespace="demo", job="train", outputs=[_artifact("model", V2)], start=EPOCH + timedelta(1)
            ),
            *run_events("prep", namespace="demo", job="prep", outputs=[_artifact("table", V1, "data")], start=EPOCH),
            *run_events("serve", namespace="demo", job="serve", inputs=[_artifact("model", V1)], start=EPOCH),
            tag_event(_tag(V1, "production"), "demo", at=EPOCH + timedelta(days=2)),
            tag_event(_tag(V1, "staging"), "demo", at=EPOCH + timedelta(days=2, hours=1)),
            tag_event(_tag(V2, "production", by="bob@host"), "demo", at=EPOCH + timedelta(days=3)),
        ]
    )
    return store


def test_an_alias_moves_and_its_history_answers_as_of_any_time(registry: LineageStore) -> None:
    assert {a: m.version for a, m in aliases(registry, NS, "model").items()} == {"production": V2, "staging": V1}
    before = aliases(registry, NS, "model", EPOCH + timedelta(days=2, minutes=30))
    assert {a: m.version for a, m in before.items()} == {"production": V1}
    assert aliases(registry, NS, "model", EPOCH + timedelta(days=1)) == {}
    moves = [(m.alias, m.version, m.by, m.at) for m in history(registry, NS, "model")]
    assert moves == [
        ("production", V1, "ann@host", EPOCH + timedelta(days=2)),
        ("staging", V1, "ann@host", EPOCH + timedelta(days=2, hours=1)),
        ("production", V2, "bob@host", EPOCH + timedelta(days=3)),
    ]


def test_an_alias_resolves_like_a_pinned_version(registry: LineageStore) -> None:
    assert resolve_version(StoreRef("demo", "model", alias="production"), registry) == V2
    assert resolve_version(StoreRef("demo", "model", alias="staging"), registry) == V1
    assert resolve_version(StoreRef("demo", "model"), registry) == V2  # no alias: the newest
    with pytest.raises(NotFound) as err:
        resolve_version(StoreRef("demo", "model", alias="canary"), registry)
    assert str(err.value) == "no alias 'canary' of artifact 'model' in project 'demo'"


def test_artifacts_list_and_show(registry: LineageStore) -> None:
    listed = artifacts(registry, "demo")
    assert [(s.uri, s.kind, s.version_count, s.aliases) for s in listed] == [
        (f"{NS}/model", "model", 2, {"production": V2, "staging": V1}),
        (f"{NS}/table", "data", 1, {}),
    ]
    assert [s.name for s in artifacts(registry, "demo", kind="dataset")] == ["table"]
    assert [s.name for s in artifacts(registry, "demo", tag="production")] == ["model"]
    assert artifacts(registry, "other") == []
    shown = detail(registry, NS, "model")
    assert shown is not None
    assert [(v.version.version, v.produced_by, v.consumers, v.aliases) for v in shown.versions] == [
        (V1, "train1", ["serve"], ["staging"]),
        (V2, "train2", [], ["production"]),
    ]
    then = detail(registry, NS, "model", EPOCH + timedelta(days=2, minutes=30))
    assert then is not None and [v.aliases for v in then.versions] == [["production"], []]


def test_a_store_refuses_a_tag_of_another_projects_artifact(store: LineageStore) -> None:
    foreign = tag_event(_tag(V1, "production"), "intruder")
    with pytest.raises(Inadmissible) as err:
        store.apply([foreign])
    assert "may not tag store://demo/model: only the artifact's project (store://intruder) tags it" in str(err.value)
    assert history(store, NS, "model") == []
