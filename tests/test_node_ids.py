"""Node ids are built in one place (`graph/ids.py`) and parse back to what built them."""

from __future__ import annotations

from typing import Any

from provgraph.graph.ids import (
    NodeId,
    as_run_id,
    dataset_node_id,
    job_node_id,
    parse_node_id,
    run_node_id,
    split_runs,
)

NAMESPACES = (
    "default",
    "s3://bucket",
    "file",
    "postgres://db.example:5432",
    "kafka://broker:9092",
    "duckdb://warehouse",
    "arn:aws:glue:us-east-1:123456789012",  # OpenLineage's Glue namespace
)
NAMES = ("train", "/data/raw.csv", "a@b/c", "public.orders", "a:b", "table/sales/orders")


def test_built_ids_parse_back_to_the_node_that_built_them() -> None:
    assert parse_node_id(run_node_id("r-1")) == NodeId.run("r-1")
    for ns in NAMESPACES:
        for name in NAMES:
            assert parse_node_id(job_node_id(ns, name)) == NodeId.job(ns, name)
            assert parse_node_id(dataset_node_id(ns, name)) == NodeId.dataset(ns, name)
            version = "sha256:" + "0" * 64
            assert parse_node_id(dataset_node_id(ns, name, version)) == NodeId.dataset(ns, name, version)
            assert str(NodeId.dataset(ns, name, version)) == dataset_node_id(ns, name, version)


def test_runs_are_told_from_other_nodes_by_their_id() -> None:
    dsv = dataset_node_id("file", "/run:x", "v1")
    assert split_runs([run_node_id("a"), dsv, run_node_id("run:b")]) == (["a", "run:b"], [dsv])
    assert as_run_id("r-1") == as_run_id(run_node_id("r-1")) == "r-1"


def test_every_namespace_the_openlineage_client_names_reads_back_from_its_ids() -> None:
    """The real openlineage-python client's dataset naming helpers (its spec's naming conventions:
    Glue's ARN namespace, JDBC hosts with ports, buckets …) give ids that parse back to the dataset."""
    import inspect

    from openlineage.client.naming import dataset as naming

    checked = []
    for name, cls in vars(naming).items():
        if not (inspect.isclass(cls) and hasattr(cls, "get_namespace") and hasattr(cls, "get_name")):
            continue
        params = inspect.signature(cls).parameters
        args = {p: "5432" if "port" in p else f"{p.replace('_', '')}1" for p in params}
        try:
            made: Any = cls(**args)
            ns, dataset = made.get_namespace(), made.get_name()
        except Exception:  # noqa: BLE001 - a helper whose arguments are not plain text (an enum): not a namespace case
            continue
        assert parse_node_id(dataset_node_id(ns, dataset)) == NodeId.dataset(ns, dataset), (name, ns, dataset)
        checked.append(name)
    assert {"AWSGlue", "Postgres", "S3", "BigQuery", "Kafka", "HDFS"} <= set(checked), checked


def test_a_dataset_name_holding_an_at_sign_starts_a_walk_as_itself(tmp_path: Any) -> None:
    """`dataset:ns:a@b` reads as version `b` of `a` when that version exists, else as the dataset
    `a@b` when it does: names such as `db.t@v1`, `/p/a@b` or `x@run-abc` start walks."""
    from provgraph.events.synthetic import content_hash, dataset, run_events
    from provgraph.graph.ids import NodeId, as_recorded, parse_node_id
    from provgraph.graph.sqlite_store import SqliteLineageStore
    from provgraph.graph.views import Direction

    store = SqliteLineageStore(tmp_path / "graph.db")
    odd = dataset("pg", "db.t@v1", content_hash("t"), "out", output=True)
    plain = dataset("pg", "db.t", content_hash("plain"), "out", output=True)
    store.apply([*run_events("w1", outputs=[odd]), *run_events("w2", outputs=[plain])])
    assert as_recorded(parse_node_id("dataset:pg:db.t@v1"), store) == NodeId.dataset("pg", "db.t@v1")
    version = f"dataset:pg:db.t@{content_hash('plain')}"  # a real version keeps its reading
    assert as_recorded(parse_node_id(version), store) == NodeId.dataset("pg", "db.t", content_hash("plain"))
    # for columns (per dataset) the split reading stands when dataset `db.t` exists
    assert as_recorded(parse_node_id("dataset:pg:db.t@v1"), store, versioned=False) == NodeId.dataset(
        "pg", "db.t", "v1"
    )
    walk = store.lineage(as_recorded(parse_node_id("dataset:pg:db.t@v1"), store), Direction.UPSTREAM, 2, 10)
    assert "run:w1" in {n.id for n in walk.nodes}
    store.close()
