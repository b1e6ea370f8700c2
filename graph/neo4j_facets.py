"""Facets and column lineage in Neo4j, the same facts as `sqlite_facets` (see `facets.py`):

    (:Facet {owner, name, part, value, okey})          one per row of SQLite's `facet` table
    (:Column {dataset, field})-[:FEEDS {transformations}]->(:Column)   one edge per `column_edge` row

Statements are constants; user data travels only as parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

from provgraph.events.model import RunEvent
from provgraph.graph.facets import COLUMNS, fold

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT facet_key IF NOT EXISTS FOR (n:Facet) REQUIRE (n.owner, n.name, n.part) IS UNIQUE",
    "CREATE INDEX facet_owner IF NOT EXISTS FOR (n:Facet) ON (n.owner)",
    "CREATE CONSTRAINT column_key IF NOT EXISTS FOR (n:Column) REQUIRE (n.dataset, n.field) IS UNIQUE",
)

MERGE_FACETS: LiteralString = """
UNWIND $batch.facets AS row
MERGE (f:Facet {owner: row.owner, name: row.name, part: row.part})
WITH f, row, row.okey > coalesce(f.okey, '') AS wins
SET f.value = CASE WHEN wins THEN row.value ELSE f.value END,
    f.okey = CASE WHEN wins THEN row.okey ELSE f.okey END
"""

# An output's column edges are replaced as a whole when its columnLineage facet wins.
MERGE_COLUMNS: LiteralString = """
UNWIND $batch.column_lineage AS row
MERGE (f:Facet {owner: row.owner, name: row.name, part: row.part})
WITH f, row WHERE row.okey > coalesce(f.okey, '')
SET f.value = row.value, f.okey = row.okey
WITH row
CALL (row) {
  MATCH (:Column)-[e:FEEDS]->(:Column {dataset: row.owner}) DELETE e
}
CALL (row) {
  UNWIND row.edges AS x
  MERGE (s:Column {dataset: x.src_dataset, field: x.src_field})
  MERGE (d:Column {dataset: x.dst_dataset, field: x.dst_field})
  MERGE (s)-[e:FEEDS]->(d) SET e.transformations = x.transformations
}
"""

WRITES: tuple[tuple[str, LiteralString], ...] = (("facets", MERGE_FACETS), ("column_lineage", MERGE_COLUMNS))

FACETS: LiteralString = f"""
MATCH (f:Facet) WHERE f.owner IN $owners AND f.name <> '{COLUMNS}'
RETURN f.owner AS owner, f.name AS name, f.part AS part, f.value AS value
"""


def _hop(pattern: LiteralString) -> LiteralString:
    return (
        "UNWIND $keys AS k MATCH (c:Column {dataset: k[0], field: k[1]})"
        " CALL (c) { MATCH " + pattern + " WITH o, e ORDER BY o.dataset, o.field LIMIT $cap"
        " RETURN collect([o.dataset, o.field, e.transformations]) AS hits }"
        " RETURN k[0] AS dataset, k[1] AS field, hits"
    )


COLUMN_HOP: dict[bool, LiteralString] = {
    True: _hop("(o:Column)-[e:FEEDS]->(c)"),
    False: _hop("(c)-[e:FEEDS]->(o:Column)"),
}

COLUMN_KNOWN: LiteralString = """
RETURN EXISTS { MATCH (:Dataset {namespace: $ns, name: $name}) }
    OR EXISTS { MATCH (c:Column {dataset: $dataset, field: $field}) WHERE EXISTS { (c)-[:FEEDS]-() } } AS known
"""

RUN_PREFIX: LiteralString = (
    "MATCH (r:Run) WHERE r.run_id STARTS WITH $prefix RETURN r.run_id AS id ORDER BY id LIMIT $limit"
)

DUMP: dict[str, LiteralString] = {
    "facet": "MATCH (n:Facet) RETURN n.owner AS owner, n.name AS name, n.part AS part, n.value AS value,"
    " n.okey AS okey",
    "column_edge": "MATCH (s:Column)-[e:FEEDS]->(d:Column) RETURN d.dataset AS dst_dataset, d.field AS dst_field,"
    " s.dataset AS src_dataset, s.field AS src_field, e.transformations AS transformations",
}


def rows_for(events: Sequence[RunEvent]) -> dict[str, list[dict[str, Any]]]:
    """The batch's facet rows and column-lineage replacements, as the statements read them."""
    facets, columns = fold(events)
    return {
        "facets": [r._asdict() for r in facets],
        "column_lineage": [{**c.facet._asdict(), "edges": [e._asdict() for e in c.edges]} for c in columns],
    }
