"""Every Cypher statement of the Neo4j store, built once from constants: labels, relationship
types and property names are fixed here, user data only ever travels as parameters ($rows, $ids).

The graph model:

    (:Project)-[:HAS_JOB]->(:Job)-[:HAS_VERSION]->(:JobVersion)
    (:Run)-[:EXECUTED]->(:JobVersion)       (:Run)-[:CHILD_OF]->(:Run)      (:Run)-[:REPRODUCES]->(:Run)
    (:Run)-[:CACHED_FROM]->(:Run)
    (:Dataset)-[:HAS_VERSION]->(:DatasetVersion)
    (:Run)-[:READ {binding}]->(:DatasetVersion)      (:Run)-[:WROTE {binding}]->(:DatasetVersion)
    (:Metric {run_id, key, step})                    one node per logged metric point
    (:LogChunk {run_id, offset, size, digest})       one node per chunk of captured output
    (:RunParam {run_id, key, num, str})              one per scalar param of the run's stored params
                                                     (derived, for `--where`; not in `dump`)
    (:RunLabel {run_id, key, value})                 one per label of the run's stored labels (idem;
    (:RunLabelLong {run_id, key, value})             a long one, beyond what Neo4j indexes, is a RunLabelLong)

Edges carry `first_at`/`known_at` (earliest event time and ingestion time declaring them), runs
`known_at`, `ended_known_at`, `has_start`, `declared_events` and `seqs` (their sorted sequence
numbers), as the SQLite store's columns and `run_seq` table do.

The merge statements apply the rules `neo4j_rows` folds a batch with, against what is stored.
"""

from __future__ import annotations

from typing import LiteralString

from provgraph.events.model import UNVERSIONED
from provgraph.graph.neo4j_rows import DATASET_VERSION_MAX, JOB_VERSION_MAX, KEYED
from provgraph.graph.rows import DATASET_VERSION_NODE_FIELDS, RUN_NODE_FIELDS

# -- plan once ------------------------------------------------------------------------------------

PLAN_ONCE: LiteralString = "CYPHER replan=skip\n"
"""Prefix of every statement on the write path and of the keyed reads a `@consistentWith` query
makes: reuse the cached plan even after the graph's statistics moved.

Neo4j discards a cached plan once label counts or index selectivities diverge from those it was
planned with (from 75% soon after planning, down to 10% hours later), and plans it again inside
the next transaction that runs it. Planning `MERGE_RUNS` costs 1-7 s of CPU on this machine, so
while the graph grows every few such replans stalled a projector batch, and every read waiting on
it, for seconds (issue #15 freshness). These statements find every node through a uniqueness
constraint or a property index whatever the counts are, so a fresh plan would be the same plan
(tests/test_consistency_kafka.py checks that they seek, planned on an empty graph). A schema change still
empties the cache.
"""

# -- schema -----------------------------------------------------------------------------------------

SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT project_name IF NOT EXISTS FOR (n:Project) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT job_key IF NOT EXISTS FOR (n:Job) REQUIRE (n.namespace, n.name) IS UNIQUE",
    "CREATE CONSTRAINT job_version_key IF NOT EXISTS FOR (n:JobVersion)"
    " REQUIRE (n.namespace, n.name, n.code_hash) IS UNIQUE",
    "CREATE CONSTRAINT run_id IF NOT EXISTS FOR (n:Run) REQUIRE n.run_id IS UNIQUE",
    "CREATE CONSTRAINT metric_key IF NOT EXISTS FOR (n:Metric) REQUIRE (n.run_id, n.key, n.step) IS UNIQUE",
    "CREATE CONSTRAINT log_chunk_key IF NOT EXISTS FOR (n:LogChunk) REQUIRE (n.run_id, n.offset) IS UNIQUE",
    "CREATE CONSTRAINT dataset_key IF NOT EXISTS FOR (n:Dataset) REQUIRE (n.namespace, n.name) IS UNIQUE",
    "CREATE CONSTRAINT dataset_version_id IF NOT EXISTS FOR (n:DatasetVersion) REQUIRE n.node_id IS UNIQUE",
    # runs of a job, newest first; runs() pages by start time; child/reproduction links in both directions
    "CREATE INDEX run_job IF NOT EXISTS FOR (n:Run) ON (n.namespace, n.job_name)",
    "CREATE INDEX run_started IF NOT EXISTS FOR (n:Run) ON (n.started_at)",
    "CREATE INDEX run_job_name IF NOT EXISTS FOR (n:Run) ON (n.job_name)",
    "CREATE INDEX run_parent IF NOT EXISTS FOR (n:Run) ON (n.parent_run_id)",
    "CREATE INDEX run_reproduces IF NOT EXISTS FOR (n:Run) ON (n.reproduces_of)",
    "CREATE INDEX run_cached_from IF NOT EXISTS FOR (n:Run) ON (n.cached_from)",
    "CREATE INDEX metric_run IF NOT EXISTS FOR (n:Metric) ON (n.run_id)",
    # run queries (`graph/run_query.py`): a param's or a metric's value by key
    "CREATE INDEX metric_key_value IF NOT EXISTS FOR (n:Metric) ON (n.key, n.value)",
    "CREATE INDEX run_param_num IF NOT EXISTS FOR (n:RunParam) ON (n.key, n.num)",
    "CREATE INDEX run_param_str IF NOT EXISTS FOR (n:RunParam) ON (n.key, n.str)",
    "CREATE INDEX run_param_run IF NOT EXISTS FOR (n:RunParam) ON (n.run_id)",
    "CREATE INDEX run_label_value IF NOT EXISTS FOR (n:RunLabel) ON (n.key, n.value)",
    "CREATE INDEX run_label_run IF NOT EXISTS FOR (n:RunLabel) ON (n.run_id)",
    "CREATE INDEX run_label_long_run IF NOT EXISTS FOR (n:RunLabelLong) ON (n.run_id)",
    "CREATE INDEX dataset_version_dataset IF NOT EXISTS FOR (n:DatasetVersion) ON (n.namespace, n.name)",
)


def _max(var: str, prop: str) -> str:
    """SET item: the greatest non-NULL of stored and incoming (commutative, like SQLite's MAX(COALESCE))."""
    return (
        f"{var}.{prop} = CASE WHEN row.{prop} IS NULL OR ({var}.{prop} IS NOT NULL AND {var}.{prop} >= row.{prop})"
        f" THEN {var}.{prop} ELSE row.{prop} END"
    )


def _newer(prop: str, *carried: str) -> str:
    """SET items: take `prop` (and props carried with it) when the incoming order key is greater."""
    win = f"coalesce(row.{prop}_key > coalesce(r.{prop}_key, ''), false)"
    return ", ".join(f"r.{p} = CASE WHEN {win} THEN row.{p} ELSE r.{p} END" for p in (prop, *carried, f"{prop}_key"))


def _min(var: str, prop: str, source: str = "row") -> str:
    """SET item: the least of stored and incoming (first-seen times)."""
    return (
        f"{var}.{prop} = CASE WHEN {var}.{prop} IS NULL OR {source}.{prop} < {var}.{prop}"
        f" THEN {source}.{prop} ELSE {var}.{prop} END"
    )


def _max_all(var: str, props: tuple[str, ...]) -> str:
    return ", ".join(_max(var, p) for p in props)


def _props(var: str, props: tuple[str, ...]) -> str:
    """`var`'s properties, comma-separated in the order given (the inside of a Cypher list)."""
    return ", ".join(f"{var}.{p}" for p in props)


MERGE_JOBS = """
UNWIND $batch.jobs AS row
MERGE (p:Project {name: row.namespace})
MERGE (j:Job {namespace: row.namespace, name: row.name})
MERGE (p)-[:HAS_JOB]->(j)
"""

MERGE_JOB_VERSIONS = f"""
UNWIND $batch.job_versions AS row
MATCH (j:Job {{namespace: row.namespace, name: row.name}})
MERGE (v:JobVersion {{namespace: row.namespace, name: row.name, code_hash: row.code_hash}})
SET {_max_all("v", JOB_VERSION_MAX)}
MERGE (j)-[:HAS_VERSION]->(v)
"""

# A dataset's kind is the MAX over its versions' kinds, so one row per version also folds the dataset.
MERGE_DATASET_VERSIONS = f"""
UNWIND $batch.dataset_versions AS row
MERGE (d:Dataset {{namespace: row.namespace, name: row.name}})
SET {_max("d", "kind")}
MERGE (v:DatasetVersion {{node_id: row.node_id}})
ON CREATE SET v.namespace = row.namespace, v.name = row.name, v.version = row.version
SET {_max_all("v", DATASET_VERSION_MAX)},
    {_min("v", "created_at")}, {_min("v", "known_at")}
MERGE (d)-[:HAS_VERSION]->(v)
"""

_newer_keyed = ", ".join(_newer(prop, *carried) for prop, carried in KEYED.items())

RUN_PROPS: tuple[str, ...] = (
    "state",
    "ended_at",
    "ended_known_at",
    "state_key",
    "started_at",
    "known_at",
    "last_event_at",
    "code_hash",
    "entrypoint",
    "parent_run_id",
    "cached_from",
    "has_start",
    "declared_events",
    "seqs",
    *(p for prop, carried in KEYED.items() for p in (prop, *carried, f"{prop}_key")),
)
"""What `MERGE_RUNS` sets on a run from its row; on a run created by the statement, every rule
reduces to the row's value (the row is already folded), so a new run takes them as they are."""


def _edges(kind: str, field: str) -> str:
    """READ/WROTE edges of the run `r` (new: created as they are; stored: merged, first times kept)."""
    return f"""CALL (r, row, fresh) {{
  WITH * WHERE fresh
  UNWIND row.{field} AS e
  MATCH (v:DatasetVersion {{node_id: e.dsv}})
  CREATE (r)-[:{kind} {{binding: e.binding, first_at: e.first_at, known_at: e.known_at}}]->(v)
}}
CALL (r, row, fresh) {{
  WITH * WHERE NOT fresh
  UNWIND row.{field} AS e
  MATCH (v:DatasetVersion {{node_id: e.dsv}})
  MERGE (r)-[x:{kind} {{binding: e.binding}}]->(v)
  SET {_min("x", "first_at", "e")}, {_min("x", "known_at", "e")}
}}"""


# One row per run, carrying its metrics and edges. A run the statement creates (`fresh`: no
# state_key yet, which every stored run has) has no edges, metrics, params, labels or chunks yet,
# so they are CREATEd; a stored run merges them. For a stored run, state, ended_at and state_key
# move together, decided once in WITH (before any SET). Dataset versions and job versions exist already.
# It returns the runs stored under another namespace (`owner`, read right after the MERGE,
# which waited for a concurrent creator to commit, so it is the run's one and only namespace): the
# caller refuses the batch and the transaction rolls back. The check rides on the MERGE's own lookup
# instead of a second statement that looked every run up again.
MERGE_RUNS = f"""
UNWIND $batch.runs AS row
MERGE (r:Run {{run_id: row.run_id}})
ON CREATE SET r.namespace = row.namespace, r.job_name = row.job_name
WITH r, row, r.state_key IS NULL AS fresh, r.namespace AS owner
CALL (r, row, fresh) {{
  WITH * WHERE fresh
  SET r += row {{{", ".join("." + p for p in RUN_PROPS)}}}
}}
CALL (r, row, fresh) {{
  WITH * WHERE NOT fresh
  WITH r, row, row.state_key > r.state_key AS state_wins, row.state_key = r.state_key AS state_ties,
       row.started_at < r.started_at OR (row.started_at = r.started_at AND row.job_name < r.job_name) AS job_wins
  SET r.state = CASE WHEN state_wins THEN row.state ELSE r.state END,
      r.job_name = CASE WHEN job_wins THEN row.job_name ELSE r.job_name END,
      r.ended_at = CASE WHEN state_wins THEN row.ended_at ELSE r.ended_at END,
      r.ended_known_at = CASE WHEN state_wins THEN row.ended_known_at
                              WHEN state_ties AND row.ended_known_at < r.ended_known_at THEN row.ended_known_at
                              ELSE r.ended_known_at END,
      r.state_key = CASE WHEN state_wins THEN row.state_key ELSE r.state_key END,
      {_min("r", "started_at")}, {_min("r", "known_at")},
      {_max("r", "last_event_at")}, {_max("r", "code_hash")}, {_max("r", "entrypoint")},
      {_max("r", "parent_run_id")},
      {_max("r", "cached_from")}, {_max("r", "has_start")}, {_max("r", "declared_events")},
      r.seqs = COLLECT {{ UNWIND coalesce(r.seqs, []) + row.seqs AS s WITH DISTINCT s ORDER BY s RETURN s }},
      {_newer_keyed}
}}
CALL (r, row, fresh) {{
  UNWIND row.code_hashes AS code_hash
  MATCH (v:JobVersion {{namespace: row.namespace, name: row.job_name, code_hash: code_hash}})
  CALL (r, v, fresh) {{ WITH * WHERE fresh CREATE (r)-[:EXECUTED]->(v) }}
  CALL (r, v, fresh) {{ WITH * WHERE NOT fresh MERGE (r)-[:EXECUTED]->(v) }}
}}
{_edges("READ", "reads")}
{_edges("WROTE", "wrote")}
CALL (row, fresh) {{
  WITH * WHERE fresh
  UNWIND row.metrics AS p
  CREATE (:Metric {{run_id: row.run_id, key: p.key, step: p.step, value: p.value, okey: p.okey}})
}}
CALL (row, fresh) {{
  WITH * WHERE NOT fresh
  UNWIND row.metrics AS p
  MERGE (m:Metric {{run_id: row.run_id, key: p.key, step: p.step}})
  WITH m, p, p.okey > coalesce(m.okey, '') AS wins
  SET m.value = CASE WHEN wins THEN p.value ELSE m.value END,
      m.okey = CASE WHEN wins THEN p.okey ELSE m.okey END
}}
CALL (r, row, fresh) {{
  WITH r, row, fresh WHERE row.params_key IS NOT NULL AND row.params_key = r.params_key
  CALL (row, fresh) {{
    WITH * WHERE NOT fresh
    MATCH (old:RunParam {{run_id: row.run_id}})
    DETACH DELETE old
  }}
  UNWIND row.param_rows AS p
  CREATE (:RunParam {{run_id: row.run_id, key: p.key, num: p.num, str: p.str}})
}}
CALL (r, row, fresh) {{
  WITH r, row, fresh WHERE row.labels_key IS NOT NULL AND row.labels_key = r.labels_key
  CALL (row, fresh) {{ WITH * WHERE NOT fresh MATCH (old:RunLabel {{run_id: row.run_id}}) DETACH DELETE old }}
  CALL (row, fresh) {{ WITH * WHERE NOT fresh MATCH (old:RunLabelLong {{run_id: row.run_id}}) DETACH DELETE old }}
  CALL (row) {{
    UNWIND [l IN row.label_rows WHERE NOT l.long] AS l
    CREATE (:RunLabel {{run_id: row.run_id, key: l.key, value: l.value}})
  }}
  CALL (row) {{
    UNWIND [l IN row.label_rows WHERE l.long] AS l
    CREATE (:RunLabelLong {{run_id: row.run_id, key: l.key, value: l.value}})
  }}
}}
CALL (row, fresh) {{
  WITH * WHERE fresh
  UNWIND row.logs AS c
  CREATE (:LogChunk {{run_id: row.run_id, offset: c.offset, size: c.size, digest: c.digest}})
}}
CALL (row, fresh) {{
  WITH * WHERE NOT fresh
  UNWIND row.logs AS c
  MERGE (l:LogChunk {{run_id: row.run_id, offset: c.offset}})
  WITH l, c, c.digest > coalesce(l.digest, '') AS wins
  SET l.size = CASE WHEN wins THEN c.size ELSE l.size END,
      l.digest = CASE WHEN wins THEN c.digest ELSE l.digest END
}}
WITH row, owner WHERE owner <> row.namespace
RETURN collect({{run_id: row.run_id, owner: owner, namespace: row.namespace}}) AS foreign
"""

# Links between runs: made when both ends exist, from whichever end arrives last.
LINK_RUNS = """
UNWIND $batch.ids AS id
MATCH (r:Run {run_id: id})
CALL (r) {
  MATCH (p:Run {run_id: r.parent_run_id}) MERGE (r)-[:CHILD_OF]->(p)
}
CALL (r) {
  MATCH (c:Run {parent_run_id: r.run_id}) MERGE (c)-[:CHILD_OF]->(r)
}
CALL (r) {
  MATCH (o:Run {run_id: r.reproduces_of}) MERGE (r)-[e:REPRODUCES]->(o) SET e.verdict = r.reproduces_verdict
}
CALL (r) {
  MATCH (c:Run {reproduces_of: r.run_id}) MERGE (c)-[e:REPRODUCES]->(r) SET e.verdict = c.reproduces_verdict
}
CALL (r) {
  MATCH (o:Run {run_id: r.cached_from}) MERGE (r)-[:CACHED_FROM]->(o)
}
CALL (r) {
  MATCH (c:Run {cached_from: r.run_id}) MERGE (c)-[:CACHED_FROM]->(r)
}
"""

# The parts of a batch's statement (`neo4j_store.BATCH`), each over its own list parameter: endpoints
# are merged before the parts that MATCH them.
WRITES: tuple[tuple[str, LiteralString], ...] = (
    ("jobs", MERGE_JOBS),
    ("job_versions", MERGE_JOB_VERSIONS),
    ("dataset_versions", MERGE_DATASET_VERSIONS),
    ("runs", MERGE_RUNS),
)

# -- canonical dump: the SQLite tables, column for column ------------------------------------------

DUMP: dict[str, LiteralString] = {
    "project": "MATCH (n:Project) RETURN n.name AS name",
    "job": "MATCH (n:Job) RETURN n.namespace AS namespace, n.name AS name",
    "job_version": "MATCH (n:JobVersion) RETURN n.namespace AS namespace, n.name AS name, n.code_hash AS code_hash,"
    " n.entrypoint AS entrypoint, n.source_uri AS source_uri, n.git_commit AS git_commit, n.git_dirty AS git_dirty",
    "run": "MATCH (n:Run) RETURN n.run_id AS run_id, n.namespace AS namespace, n.job_name AS job_name,"
    " n.code_hash AS code_hash, n.entrypoint AS entrypoint,"
    " n.state AS state, n.state_key AS state_key, n.started_at AS started_at,"
    " n.last_event_at AS last_event_at, n.ended_at AS ended_at, n.known_at AS known_at,"
    " n.ended_known_at AS ended_known_at, n.has_start AS has_start, n.declared_events AS declared_events,"
    " n.params AS params, n.params_key AS params_key,"
    " n.results AS results, n.results_key AS results_key, n.runtime AS runtime, n.runtime_key AS runtime_key,"
    " n.error AS error, n.error_key AS error_key, n.reproduces AS reproduces, n.reproduces_key AS reproduces_key,"
    " n.parent_run_id AS parent_run_id, n.cached_from AS cached_from, n.traceback AS traceback,"
    " n.labels AS labels, n.labels_key AS labels_key, n.annotations AS annotations",
    "run_seq": "MATCH (n:Run) UNWIND coalesce(n.seqs, []) AS s RETURN n.run_id AS run_id, s AS seq",
    "metric": "MATCH (n:Metric) RETURN n.run_id AS run_id, n.key AS key, n.step AS step, n.value AS value,"
    " n.okey AS okey",
    "log_chunk": "MATCH (n:LogChunk) RETURN n.run_id AS run_id, n.offset AS offset, n.size AS size, n.digest AS digest",
    "dataset": "MATCH (n:Dataset) RETURN n.namespace AS namespace, n.name AS name, n.kind AS kind",
    "dataset_version": "MATCH (n:DatasetVersion) RETURN n.node_id AS node_id, n.namespace AS namespace,"
    " n.name AS name, n.version AS version, n.kind AS kind, n.size AS size, n.uri AS uri, n.format AS format,"
    " n.framework AS framework, n.meta AS meta, n.created_at AS created_at, n.known_at AS known_at",
    "read": "MATCH (r:Run)-[e:READ]->(d:DatasetVersion) RETURN r.run_id AS run_id, d.node_id AS dsv,"
    " e.binding AS binding, e.first_at AS first_at, e.known_at AS known_at",
    "wrote": "MATCH (r:Run)-[e:WROTE]->(d:DatasetVersion) RETURN r.run_id AS run_id, d.node_id AS dsv,"
    " e.binding AS binding, e.first_at AS first_at, e.known_at AS known_at",
}

# -- reads ---------------------------------------------------------------------------------------

RUN_NODE: LiteralString = f"RETURN [{_props('r', RUN_NODE_FIELDS)}] AS n, elementId(r) AS e"
"""A lineage node of the run bound to `r`: `RUN_NODE_FIELDS`, the values `rows.run_node` takes, and its
element id, by which the walk's next statements find it (`_bind`)."""
DATASET_VERSION_NODE: LiteralString = f"RETURN [{_props('d', DATASET_VERSION_NODE_FIELDS)}] AS n, elementId(d) AS e"
"""A lineage node of the dataset version bound to `d`: `DATASET_VERSION_NODE_FIELDS`, and its element id."""

RUN_VIEW: LiteralString = """
RETURN r {.*} AS run,
  COLLECT { MATCH (m:Metric {run_id: r.run_id}) RETURN [m.key, m.step, m.value] } AS metrics
"""

METRIC_HISTORY: LiteralString = """
MATCH (m:Metric {run_id: $run_id}) WHERE $keys IS NULL OR m.key IN $keys
WITH m ORDER BY m.key, m.step
WITH m.key AS key, collect([m.step, m.value]) AS points
RETURN key, points[..$cap] AS points ORDER BY key
"""

LOG_CHUNKS: LiteralString = """
MATCH (l:LogChunk {run_id: $run_id}) RETURN l.offset AS offset, l.size AS size, l.digest AS digest ORDER BY offset
"""

CYPHER_OP: dict[str, LiteralString] = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
"""Operators of a run query: looked up, never taken from the query text."""


def run_ids_where(kind: str, op: str, i: int) -> LiteralString:
    """A subquery collecting, as `c<i>`, the ids of runs whose param `$k<i>` (num or str, by the type
    of `$v<i>`: `kind` is param_num or param_str), label (`kind` label) or latest metric step compares
    `op` with `$v<i>`, found through the (key, value) indexes."""
    o = CYPHER_OP[op]
    n = str(i)
    if kind == "metric":
        match = (
            f"MATCH (m:Metric) WHERE m.key = $k{n} AND m.value {o} $v{n} AND m.value IS :: FLOAT"
            " AND NOT EXISTS { MATCH (x:Metric {run_id: m.run_id, key: m.key}) WHERE x.step > m.step }"
            f" RETURN collect(m.run_id) AS c{n}"
        )
    elif kind == "label":  # the indexed labels, then the few long ones
        where = f"WHERE l.key = $k{n} AND l.value {o} $v{n} RETURN l.run_id AS id"
        match = (
            f"CALL () {{ MATCH (l:RunLabel) {where} UNION MATCH (l:RunLabelLong) {where} }} RETURN collect(id) AS c{n}"
        )
    else:
        col = "num" if kind == "param_num" else "str"
        match = f"MATCH (p:RunParam) WHERE p.key = $k{n} AND p.{col} {o} $v{n} RETURN collect(p.run_id) AS c{n}"
    return "CALL () { " + match + " } "


def written(run: str, *, now: bool = False) -> str:
    """The run bound to `run` COMPLETEd as of $as_of/$known (or now): its outputs are written."""
    if now:
        return f"({run}.state = 'COMPLETE')"
    return f"({run}.state = 'COMPLETE' AND {run}.ended_at <= $as_of AND {run}.ended_known_at <= $known)"


def seen(edge: str, *, now: bool = False) -> str:
    """The edge bound to `edge` was declared, and received, as of $as_of/$known (always, now)."""
    return "true" if now else f"({edge}.first_at <= $as_of AND {edge}.known_at <= $known)"


def resolved(raw: str, edge: str, out: str, *, now: bool = False) -> str:
    """A CALL binding `out` to the version the READ `edge` of `raw` resolves to: `raw` itself, or,
    when `raw` is `@unversioned`, the version whose producer COMPLETEd last at or before the read was
    first declared (as SQLite's `_RESOLVED`). Two branches, so a versioned read (nearly every one)
    never seeks its dataset's versions: in one branch the planner placed that index seek before the
    version test, a quarter of a lineage hop's db hits (docs/BENCHMARKS.md, round 7). The version is
    read once for both branches (round 8)."""
    return f"""WITH *, {raw}.version = '{UNVERSIONED}' AS {raw}_unversioned
CALL ({raw}, {edge}, {raw}_unversioned) {{
  WITH {raw} WHERE NOT {raw}_unversioned
  RETURN {raw} AS {out}
  UNION ALL
  WITH {raw}, {edge} WHERE {raw}_unversioned
  OPTIONAL MATCH (rw:Run)-[rx:WROTE]->(rv:DatasetVersion {{namespace: {raw}.namespace, name: {raw}.name}})
  WHERE rv.version <> '{UNVERSIONED}' AND {written("rw", now=now)}
    AND rw.ended_at <= {edge}.first_at AND {seen("rx", now=now)}
  WITH {raw}, rv, rw ORDER BY rw.ended_at DESC, rv.node_id DESC LIMIT 1
  RETURN coalesce(rv, {raw}) AS {out}
}}"""


EXISTS: LiteralString = f"""(EXISTS {{ MATCH (:Run)-[e:READ]->(d) WHERE {seen("e")} }}
  OR EXISTS {{ MATCH (w:Run)-[x:WROTE]->(d) WHERE {seen("x")} AND ({written("w")} OR $failed) }})"""
"""The dataset version `d` exists as of the query: read, or written (attempted too with $failed)."""

REFS: LiteralString = "RETURN [d.namespace, d.name, d.version, d.kind, e.binding, d.node_id"

# Everything a RunView shows, for the run bound to `r` (its inputs resolved, its outputs marked
# attempted until it COMPLETEs).
RUN_DETAIL: LiteralString = (
    """
OPTIONAL MATCH (v:JobVersion {namespace: r.namespace, name: r.job_name, code_hash: r.code_hash})
WITH r, v
"""
    + RUN_VIEW
    + ", v {.*} AS job_version,"
    + " COLLECT { MATCH (r)-[e:READ]->(d0:DatasetVersion) "
    + resolved("d0", "e", "d", now=True)
    + REFS
    + ", false] } AS inputs,"
    + " COLLECT { MATCH (r)-[e:WROTE]->(d:DatasetVersion) "
    + REFS
    + f", NOT {written('r', now=True)}] }} AS outputs"
)


def _hop_body(frontier: str, edge: str, *, now: bool, fars: bool = False) -> str:
    """One frontier node's neighbours over `edge`, each as [binding, attempted, element id, *its node fields], under
    the rules of SQLite's `_edges`, as `hits`; with `fars`, also the neighbours themselves within the
    fan-out (`$cap - 1`) as `fars`, the frontier of a second hop in the same statement (`PAIR`).
    The cap is fan_out + 1 so overflow shows.
    `now`: the statement of a walk as of now, which reads no edge times and no run end times (every
    stored time sorts before the open bound, and a COMPLETE run has its end times): ~a third fewer db
    hits a hop (docs/BENCHMARKS.md, round 8). The far end of an edge is not tested for its label:
    READ and WROTE only ever join a Run to a DatasetVersion (`_edges`), and the test is a db hit a row."""
    d_fields = _props("d", DATASET_VERSION_NODE_FIELDS)
    r_fields = _props("r", RUN_NODE_FIELDS)
    far = "d" if (frontier == "run") else "r"
    also = f", collect({far})[..$cap - 1] AS fars" if fars else ""
    if edge == "WROTE":
        match = "MATCH (r)-[e:WROTE]->(d)"
        order = "d.node_id, e.binding" if frontier == "run" else "r.run_id, e.binding"
        fields = d_fields if frontier == "run" else r_fields
        return f"""{match} WHERE {seen("e", now=now)} AND ({written("r", now=now)} OR $failed)
  WITH e, r, d ORDER BY {order} LIMIT $cap
  RETURN collect([e.binding, NOT {written("r", now=now)}, elementId({far}), {fields}]) AS hits{also}"""
    if frontier == "run":
        return f"""MATCH (r)-[e:READ]->(d0) WHERE {seen("e", now=now)}
  {resolved("d0", "e", "d", now=now)}
  WITH e, d ORDER BY d.node_id, e.binding LIMIT $cap
  RETURN collect([e.binding, false, elementId(d), {d_fields}]) AS hits{also}"""
    # readers of d, and readers of its dataset that named no version and resolve to d
    return f"""OPTIONAL MATCH (u:DatasetVersion {{namespace: d.namespace, name: d.name, version: '{UNVERSIONED}'}})
  WITH d, CASE WHEN u IS NULL OR u = d THEN [d] ELSE [d, u] END AS sources
  UNWIND sources AS d0
  MATCH (r)-[e:READ]->(d0) WHERE {seen("e", now=now)}
  {resolved("d0", "e", "t", now=now)}
  WITH r, e, t, d WHERE t = d
  WITH r, e ORDER BY r.run_id, e.binding LIMIT $cap
  RETURN collect([e.binding, false, elementId(r), {r_fields}]) AS hits{also}"""


def _edge(frontier: str, upstream: bool) -> str:
    """Upstream: a run's inputs (READ), and the runs that wrote a dataset (WROTE). Downstream: the reverse."""
    return "READ" if (frontier == "run") == upstream else "WROTE"


def _bind(frontier: str) -> str:
    """The frontier's nodes by their element ids, as an earlier statement of the walk's transaction
    returned them (element ids are stable within a transaction): a seek by element id reads the node's
    record, where a seek by key walks the uniqueness index; a walk's least Cypher at 10M nodes spent half
    its server CPU seeking by key (docs/BENCHMARKS.md, round 17)."""
    if frontier == "run":
        return "UNWIND $ids AS id MATCH (r:Run) WHERE elementId(r) = id"
    return "UNWIND $ids AS id MATCH (d:DatasetVersion) WHERE elementId(d) = id"


def _hop(frontier: str, upstream: bool, *, now: bool) -> str:
    """One hop of a lineage walk for the whole frontier of runs or dataset versions (`_hop_body`).
    The hop is one record, `hops`: [[id, hits], ...] in the order the rows came. A record per
    frontier node cost the client a Bolt message each, ~100 µs of the driver's Python apiece: more
    CPU than the rest of the walk (docs/BENCHMARKS.md, round 7)."""
    var = "r" if frontier == "run" else "d"
    return f"""
{_bind(frontier)}
CALL ({var}) {{ {_hop_body(frontier, _edge(frontier, upstream), now=now)} }}
RETURN collect([id, hits]) AS hops"""


def _chain(frontier: str, upstream: bool, *, now: bool, hops: int) -> str:
    """`hops` hops of a walk in one statement: `hops` as `_hop`'s, and `next`, one list per further
    hop, [[key, hits], ...]: the hop from each distinct neighbour the hop before reached within the
    fan-out (`key`: its run_id or node_id). A node's hits depend on the node alone, so the walk takes
    them for the nodes of its next frontiers (the new ones) and asks only for any it lacks: the
    answers are the one-hop statements' (docs/BENCHMARKS.md, round 9). Each further hop expands at
    most `$far_max` nodes, and only while the hits so far are fewer than `$budget`, so the record
    holds less than twice a one-hop statement's bound."""
    var = "r" if frontier == "run" else "d"
    more = hops > 1
    text = f"""
{_bind(frontier)}
CALL ({var}) {{ {_hop_body(frontier, _edge(frontier, upstream), now=now, fars=more)} }}
WITH collect([id, hits]) AS hops{", collect(fars) AS f1, sum(size(hits)) AS n1" if more else ""}"""
    kind = frontier
    for level in range(1, hops):
        kind = "dsv" if kind == "run" else "run"
        fvar, key = ("d", "d.node_id") if kind == "dsv" else ("r", "r.run_id")
        more = level < hops - 1
        sums = ["n1", *(f"s{i}" for i in range(1, level))]
        text += f"""
CALL (f{level}, {", ".join(sums)}) {{
  UNWIND CASE WHEN {" + ".join(sums)} < $budget THEN f{level} ELSE [] END AS fs UNWIND fs AS {fvar}
  WITH DISTINCT {fvar} LIMIT $far_max
  CALL ({fvar}) {{ {_hop_body(kind, _edge(kind, upstream), now=now, fars=more)} }}
  RETURN collect([{key}, hits]) AS l{level}{
            f", collect(fars) AS f{level + 1}, sum(size(hits)) AS s{level}" if more else ""
        }
}}"""
    return text + f"\nRETURN hops, [{', '.join(f'l{i}' for i in range(1, hops))}] AS next"


MAX_CHAIN = 3
"""The most hops a lineage statement answers (`CHAIN`). Three keep most of six's cut in Neo4j's CPU
per walk (69-70 against 52-69 ms at 1.5M, one hop a statement 75-93), and each plan costs a fresh
server 1.3 s against 2.5 s for six: with six, a depth-10 walk's first two plans took more than the
walk's 5 s budget on a loaded machine right after a start, and its answer came back cut by `time`
(docs/BENCHMARKS.md, rounds 9 and 10)."""

_WAYS = [(kind, upstream, now) for kind in ("run", "dsv") for upstream in (True, False) for now in (False, True)]
HOP: dict[tuple[str, bool, bool], LiteralString] = {
    # (frontier kind, upstream?, now?) -> query
    (kind, upstream, now): _hop(kind, upstream, now=now)
    for kind, upstream, now in _WAYS
}
CHAIN: dict[tuple[str, bool, bool, int], LiteralString] = {
    # (frontier kind, upstream?, now?, hops) -> query
    (kind, upstream, now, hops): _chain(kind, upstream, now=now, hops=hops)
    for kind, upstream, now in _WAYS
    for hops in range(2, MAX_CHAIN + 1)
}

START: dict[str, LiteralString] = {
    # a walk's start node(s) by the root's kind, as lineage nodes `n` (a dataset's and a job's: up to $cap)
    "run": "MATCH (r:Run {run_id: $id}) WHERE r.started_at <= $as_of AND r.known_at <= $known " + RUN_NODE,
    "datasetVersion": "MATCH (d:DatasetVersion {node_id: $id}) WHERE d.created_at <= $as_of AND d.known_at <= $known "
    + DATASET_VERSION_NODE,
    "dataset": "MATCH (d:DatasetVersion {namespace: $ns, name: $name}) WHERE "
    + EXISTS
    + " WITH d ORDER BY d.created_at DESC, d.node_id DESC LIMIT $cap "
    + DATASET_VERSION_NODE,
    "job": "MATCH (r:Run {namespace: $ns, job_name: $name}) WHERE r.started_at <= $as_of"
    " AND r.known_at <= $known WITH r ORDER BY r.started_at DESC, r.run_id DESC LIMIT $cap " + RUN_NODE,
}

WRITTEN: LiteralString = written("r")
"""The run bound to `r` COMPLETEd as of $as_of/$known."""
COUNTS: dict[str, LiteralString] = {
    "Run": "MATCH (n:Run) RETURN count(n) AS n",
    "DatasetVersion": "MATCH (n:DatasetVersion) RETURN count(n) AS n",
    "Dataset": "MATCH (n:Dataset) RETURN count(n) AS n",
    "Metric": "MATCH (n:Metric) RETURN count(n) AS n",
    "LogChunk": "MATCH (n:LogChunk) RETURN count(n) AS n",
    "Job": "MATCH (n:Job) RETURN count(n) AS n",
    "JobVersion": "MATCH (n:JobVersion) RETURN count(n) AS n",
    "Project": "MATCH (n:Project) RETURN count(n) AS n",
}

# Bounded transactions, repeated until nothing is left: edges first, so no single delete drags a
# hub's 10^4 edges along (`CALL { } IN TRANSACTIONS` over a million nodes still ran out of memory).
RESET_EDGES = "MATCH ()-[e]->() WITH e LIMIT $batch DELETE e RETURN count(*) AS deleted"
RESET_NODES = "MATCH (n) WITH n LIMIT $batch DELETE n RETURN count(*) AS deleted"
