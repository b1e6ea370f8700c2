"""Artifact metadata (`provgraph_artifact.meta`) per dataset version: any value the contract accepts is
stored and read back the same by every store, bounded in size, and independent of arrival order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from provgraph.events.facets import ArtifactDatasetFacet, DatasetVersionDatasetFacet
from provgraph.events.facets.values import INT64_MAX, INT64_MIN
from provgraph.events.model import Dataset, DatasetFacets, RunEvent
from provgraph.events.serde import dumps, loads
from provgraph.events.synthetic import EPOCH, content_hash, run_events
from provgraph.graph.artifacts import detail
from provgraph.graph.contract import LineageStore
from provgraph.graph.projection import MAX_META_BYTES, TRUNCATED, canonical_json

NS = "store://demo"
V1, V2 = content_hash("table-1"), content_hash("table-2")

ODD: dict[str, Any] = {
    "schema": {"a.b": "int64", "naïve 名前 🙂": "object", "": "float64", "quote\"'`": "bool"},
    "preview": [[1, "x", None, True], [INT64_MAX, INT64_MIN, -0.0, 1e308], [], [[[]]]],
    "stats": {"a.b": {"mean": 2.5, "std": 5e-324, "count": 4}},
    "$truncated": "a producer's own key of the marker's name, kept while nothing is cut",
    "metrics": {"accuracy": 0.93},
    "parameters": {"lr": 0.01, "layers": [64, 32]},
    "framework": "sklearn",
    "empty": {},
    "null": None,
    "multi\nline\ttext\u2028": "\\u0000 is text here, not NUL; \r\n and \x7f too",
}


def _events(run_id: str, version: str, meta: dict[str, Any] | None, day: int = 0) -> list[RunEvent]:
    facets = DatasetFacets(
        version=DatasetVersionDatasetFacet(dataset_version=version),
        artifact=ArtifactDatasetFacet(kind="data", meta=meta),
    )
    out = Dataset(namespace=NS, name="table", facets=facets)
    # through the wire, as every event reaches a store
    return [loads(dumps(e)) for e in run_events(run_id, namespace="demo", outputs=[out], start=EPOCH + timedelta(day))]


def _metas(store: LineageStore) -> list[Any]:
    shown = detail(store, NS, "table")
    assert shown is not None
    return [v.version.meta for v in shown.versions]


def test_odd_metadata_is_stored_and_read_back_as_logged(store: LineageStore) -> None:
    store.apply([*_events("r1", V1, ODD), *_events("r2", V2, None, day=1)])
    assert _metas(store) == [ODD, None]
    assert store.dataset_version(NS, "table", V1).meta == ODD  # type: ignore[union-attr]
    found = store.dataset(NS, "table")
    assert found is not None and [v.meta for v in found.versions] == [ODD, None]


def test_metadata_over_the_bound_keeps_its_smallest_values_and_says_what_was_cut(store: LineageStore) -> None:
    big = {
        "preview": [["x" * 1000] * 10] * 10,  # ~100 KB alone: cut
        "stats": {"col": {"mean": 1.5}},
        "schema": {"col": "float64"},
        "$truncated": "yields to the marker",
    }
    store.apply(_events("r1", V1, big))
    (meta,) = _metas(store)
    assert meta == {
        "schema": {"col": "float64"},
        "stats": {"col": {"mean": 1.5}},
        TRUNCATED: {"bytes": len(canonical_json(big).encode()), "dropped": 2},
    }
    many = {f"k{i:05}": "v" * 100 for i in range(1000)}  # ~110 KB of equal values: kept in key order
    store.apply(_events("r2", V2, many, day=1))
    meta = _metas(store)[1]
    assert len(canonical_json(meta).encode()) <= MAX_META_BYTES
    kept = sorted(k for k in meta if k != TRUNCATED)
    assert kept == sorted(many)[: len(kept)] and 500 < len(kept) < 1000
    assert meta[TRUNCATED] == {"bytes": len(canonical_json(many).encode()), "dropped": 1000 - len(kept)}


def test_metadata_of_one_version_logged_twice_is_the_same_in_any_order(store: LineageStore) -> None:
    first, second = {"stats": {"a": 1}}, {"stats": {"a": 2}, "schema": {"a": "int"}}
    store.apply([*_events("r2", V1, second, day=1), *_events("r1", V1, first)])
    again = [*_events("r1", V1, first), *_events("r2", V1, second, day=1)]
    store.apply(again)  # replays change nothing
    winner = max(canonical_json(first), canonical_json(second))
    assert _metas(store) == [json.loads(winner)]
