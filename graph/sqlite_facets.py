"""Facets and column lineage in the SQLite graph (tables `facet` and `column_edge`), see `facets.py`.

`SqliteLineageStore` calls these inside its own transactions and locks; every statement is
parametrised, frontiers travel as one JSON parameter (`json_each`), as in the dataset walk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from provgraph.graph import sqlite_db
from provgraph.graph.columns import ColumnKey, Neighbour

if TYPE_CHECKING:
    from provgraph.events.model import RunEvent
    from provgraph.graph.facets import Facets

SCHEMA = """
CREATE TABLE IF NOT EXISTS facet (
    owner TEXT NOT NULL, name TEXT NOT NULL, part TEXT NOT NULL, value TEXT NOT NULL, okey TEXT NOT NULL,
    PRIMARY KEY (owner, name, part));
CREATE TABLE IF NOT EXISTS column_edge (
    dst_dataset TEXT NOT NULL, dst_field TEXT NOT NULL, src_dataset TEXT NOT NULL, src_field TEXT NOT NULL,
    transformations TEXT NOT NULL, PRIMARY KEY (dst_dataset, dst_field, src_dataset, src_field));
CREATE INDEX IF NOT EXISTS column_edge_src ON column_edge(src_dataset, src_field);
"""
TABLES = ("facet", "column_edge")

_UPSERT = """
INSERT INTO facet (owner, name, part, value, okey) VALUES (?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET value = CASE WHEN excluded.okey > facet.okey THEN excluded.value ELSE facet.value END,
    okey = MAX(facet.okey, excluded.okey)
"""


def write(c: sqlite_db.Connection, events: Sequence[RunEvent]) -> None:
    from provgraph.graph.facets import COLUMNS, fold  # here: a store only read (`provgraph runs`) never loads them

    rows, columns = fold(events)
    c.executemany(_UPSERT, rows)
    for col in columns:
        stored = c.execute(
            "SELECT okey FROM facet WHERE owner = ? AND name = ? AND part = ''", (col.facet.owner, COLUMNS)
        ).fetchone()
        if stored is not None and stored[0] >= col.facet.okey:
            continue
        c.execute(_UPSERT, col.facet)
        c.execute("DELETE FROM column_edge WHERE dst_dataset = ?", (col.facet.owner,))
        c.executemany(
            "INSERT INTO column_edge (src_dataset, src_field, dst_dataset, dst_field, transformations)"
            " VALUES (?, ?, ?, ?, ?)",
            col.edges,
        )


def facets(c: sqlite_db.Connection, owners: Sequence[str]) -> dict[str, Facets]:
    from provgraph.graph.facets import COLUMNS, facet_views

    rows: list[Any] = c.execute(
        "SELECT owner, name, part, value FROM facet WHERE owner IN (SELECT value FROM json_each(?)) AND name <> ?",
        (json.dumps(sorted(set(owners))), COLUMNS),
    ).fetchall()
    return facet_views(tuple(r) for r in rows)


def column_hop(
    c: sqlite_db.Connection, frontier: list[ColumnKey], upstream: bool, cap: int
) -> dict[ColumnKey, list[Neighbour]]:
    here, there = ("dst", "src") if upstream else ("src", "dst")
    rows: list[Any] = c.execute(
        f"SELECT {here}_dataset, {here}_field, {there}_dataset, {there}_field, transformations FROM ("  # noqa: S608
        f" SELECT *, ROW_NUMBER() OVER (PARTITION BY {here}_dataset, {here}_field"
        f" ORDER BY {there}_dataset, {there}_field) AS n FROM column_edge"
        f" WHERE ({here}_dataset, {here}_field) IN"
        " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)))"
        f" WHERE n <= ? ORDER BY {here}_dataset, {here}_field, n",
        (json.dumps(frontier), cap),
    ).fetchall()
    out: dict[ColumnKey, list[Neighbour]] = {}
    for r in rows:
        out.setdefault((r[0], r[1]), []).append((r[2], r[3], r[4]))
    return out


def column_known(c: sqlite_db.Connection, key: ColumnKey, namespace: str, name: str) -> bool:
    """The column's dataset is in the graph, or some column edge names the column."""
    dataset, field = key
    row: Any = c.execute(
        "SELECT EXISTS (SELECT 1 FROM dataset WHERE namespace = ? AND name = ?)"
        " OR EXISTS (SELECT 1 FROM column_edge WHERE dst_dataset = ? AND dst_field = ?)"
        " OR EXISTS (SELECT 1 FROM column_edge WHERE src_dataset = ? AND src_field = ?)",
        (namespace, name, dataset, field, dataset, field),
    ).fetchone()
    return bool(row[0])


def run_ids_with_prefix(c: sqlite_db.Connection, prefix: str, limit: int) -> list[str]:
    """Run ids starting with `prefix` (the primary key's range, so an index lookup)."""
    rows: list[Any] = c.execute(
        "SELECT run_id FROM run WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT ?",
        (prefix, prefix + "\U0010ffff", limit),
    ).fetchall()
    return [r[0] for r in rows if r[0].startswith(prefix)]
