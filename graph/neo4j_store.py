"""The production lineage store: the graph model in Neo4j, answering the same contract as SQLite.

    (:Project)-[:HAS_JOB]->(:Job)-[:HAS_VERSION]->(:JobVersion)
    (:Run)-[:EXECUTED]->(:JobVersion)       (:Run)-[:CHILD_OF]->(:Run)      (:Run)-[:REPRODUCES]->(:Run)
    (:Dataset)-[:HAS_VERSION]->(:DatasetVersion)
    (:Run)-[:READ {binding}]->(:DatasetVersion)      (:Run)-[:WROTE {binding}]->(:DatasetVersion)
    (:Metric {run_id, key, step})                    one node per logged metric point

Properties carry the same names, values and types as the SQLite columns (ISO strings for times,
JSON text for params/results/runtime, the `*_key` order keys, `git_dirty` as 0/1), so `dump()`
equals `SqliteLineageStore.dump()` for the same events.

Writes: `apply(events)` folds the batch's facts in Python (`rows_for`) with the merge rules of
`projection.py` (greater order key wins, terminal state beats non-terminal, MAX of non-NULL for
descriptive properties, MIN for first-seen times, unions for edges and metrics) into one row per
node, then runs five parameterised `UNWIND $rows ... MERGE` statements in one transaction (batches
of more than `MAX_ROWS_PER_TX` runs are split, see `apply_prepared`). The same rules run again in
Cypher against what is stored, so batches commute: any order, any duplication, same graph. Every
label, relationship type and property name is fixed in this file; values are parameters.

Reads: lineage is a bounded breadth-first walk driven from Python, one query per hop for the whole
frontier, with the per-node fan-out cut inside the query (ORDER BY ... LIMIT cap+1 per node).

Neo4j driver errors stop here: they leave as `ProjectionError`, or `Neo4jUnavailable` when retrying
the same call may succeed (server down, leader switch, deadlock).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, LiteralString, ParamSpec, TypeVar

import neo4j
from neo4j.exceptions import DriverError, Neo4jError
from pydantic import BaseModel, ConfigDict

from provgraph.events.admission import owner_conflict
from provgraph.events.errors import ConfigError, Inadmissible, ProjectionError, StoreUnavailable
from provgraph.events.facets.values import decode_float, encode_float
from provgraph.events.model import RunEvent
from provgraph.graph.contract import LineageBounds, RunFilter, search_needle
from provgraph.graph.ids import NodeId
from provgraph.graph.liveness import Liveness, runs_in_state
from provgraph.graph.projection import RunFacts, admit, dataset_node_id, facts, run_row
from provgraph.graph.rows import (
    dataset_version_node,
    dataset_version_view,
    job_version_view,
    loads_json,
    run_node,
    run_view,
)
from provgraph.graph.views import (
    DatasetRef,
    DatasetVersionView,
    DatasetView,
    Direction,
    JobView,
    LineageEdge,
    LineageGraph,
    LineageNode,
    RunView,
)
from provgraph.graph.walk import Hop, bounded_walk

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")
Row = dict[str, Any]


class Neo4jUnavailable(StoreUnavailable):
    """Neo4j could not be reached, or asked for a retry; the same call may succeed later."""


class Neo4jConfig(BaseModel):
    """Where the graph lives. `password=None` connects without authentication."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    user: str = "neo4j"
    password: str | None = None
    database: str | None = None
    """None: the server's default database."""
    connection_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Neo4jConfig:
        if not settings.neo4j_uri:
            raise ConfigError("the Neo4j store needs a server: set PROVGRAPH_NEO4J_URI (e.g. bolt://127.0.0.1:7687)")
        return cls(
            uri=settings.neo4j_uri,
            user=settings.neo4j_user,
            password=settings.neo4j_password,
            database=settings.neo4j_database,
        )


MAX_ROWS_PER_TX = 5000
"""Runs (or dataset versions) per transaction; ~13 KB of server transaction memory each, so the
default `dbms.memory.transaction.total.max` of 256 MiB is never reached. A projector batch of
5,000 events holds at most 5,000 runs, so it is always one transaction."""

RESET_BATCH = 20_000
"""Edges, then nodes, deleted per transaction by `reset`."""

# -- schema -----------------------------------------------------------------------------------------

_SCHEMA: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT project_name IF NOT EXISTS FOR (n:Project) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT job_key IF NOT EXISTS FOR (n:Job) REQUIRE (n.namespace, n.name) IS UNIQUE",
    "CREATE CONSTRAINT job_version_key IF NOT EXISTS FOR (n:JobVersion)"
    " REQUIRE (n.namespace, n.name, n.code_hash) IS UNIQUE",
    "CREATE CONSTRAINT run_id IF NOT EXISTS FOR (n:Run) REQUIRE n.run_id IS UNIQUE",
    "CREATE CONSTRAINT metric_key IF NOT EXISTS FOR (n:Metric) REQUIRE (n.run_id, n.key, n.step) IS UNIQUE",
    "CREATE CONSTRAINT dataset_key IF NOT EXISTS FOR (n:Dataset) REQUIRE (n.namespace, n.name) IS UNIQUE",
    "CREATE CONSTRAINT dataset_version_id IF NOT EXISTS FOR (n:DatasetVersion) REQUIRE n.node_id IS UNIQUE",
    # runs of a job, newest first; runs() pages by start time; child/reproduction links in both directions
    "CREATE INDEX run_job IF NOT EXISTS FOR (n:Run) ON (n.namespace, n.job_name)",
    "CREATE INDEX run_started IF NOT EXISTS FOR (n:Run) ON (n.started_at)",
    "CREATE INDEX run_parent IF NOT EXISTS FOR (n:Run) ON (n.parent_run_id)",
    "CREATE INDEX run_reproduces IF NOT EXISTS FOR (n:Run) ON (n.reproduces_of)",
    "CREATE INDEX metric_run IF NOT EXISTS FOR (n:Metric) ON (n.run_id)",
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


# Every statement below is built once, from constants; user data only ever travels in $rows.
_MERGE_JOBS = """
UNWIND $rows AS row
MERGE (p:Project {name: row.namespace})
MERGE (j:Job {namespace: row.namespace, name: row.name})
MERGE (p)-[:HAS_JOB]->(j)
"""

_MERGE_JOB_VERSIONS = f"""
UNWIND $rows AS row
MATCH (j:Job {{namespace: row.namespace, name: row.name}})
MERGE (v:JobVersion {{namespace: row.namespace, name: row.name, code_hash: row.code_hash}})
SET {_max("v", "entrypoint")}, {_max("v", "source_uri")}, {_max("v", "git_commit")}, {_max("v", "git_dirty")}
MERGE (j)-[:HAS_VERSION]->(v)
"""

# A dataset's kind is the MAX over its versions' kinds, so one row per version also folds the dataset.
_MERGE_DATASET_VERSIONS = f"""
UNWIND $rows AS row
MERGE (d:Dataset {{namespace: row.namespace, name: row.name}})
SET {_max("d", "kind")}
MERGE (v:DatasetVersion {{node_id: row.node_id}})
ON CREATE SET v.namespace = row.namespace, v.name = row.name, v.version = row.version
SET {_max("v", "kind")}, {_max("v", "size")}, {_max("v", "uri")}, {_max("v", "format")}, {_max("v", "framework")},
    v.created_at = CASE WHEN v.created_at IS NULL OR row.created_at < v.created_at
                        THEN row.created_at ELSE v.created_at END
MERGE (d)-[:HAS_VERSION]->(v)
"""

# One row per run, carrying its metrics and edges. The run's state, ended_at and state_key move
# together, decided once in WITH (before any SET). Dataset versions and job versions exist already.
_MERGE_RUNS = f"""
UNWIND $rows AS row
MERGE (r:Run {{run_id: row.run_id}})
ON CREATE SET r.namespace = row.namespace, r.job_name = row.job_name
WITH r, row, row.state_key > coalesce(r.state_key, '') AS state_wins
SET r.state = CASE WHEN state_wins THEN row.state ELSE r.state END,
    r.ended_at = CASE WHEN state_wins THEN row.ended_at ELSE r.ended_at END,
    r.state_key = CASE WHEN state_wins THEN row.state_key ELSE r.state_key END,
    r.started_at = CASE WHEN r.started_at IS NULL OR row.started_at < r.started_at
                        THEN row.started_at ELSE r.started_at END,
    {_max("r", "last_event_at")}, {_max("r", "code_hash")}, {_max("r", "parent_run_id")},
    {_newer("params")}, {_newer("results")}, {_newer("runtime")}, {_newer("error")},
    {_newer("reproduces", "reproduces_of", "reproduces_verdict")}
WITH r, row
CALL (r, row) {{
  UNWIND row.code_hashes AS code_hash
  MATCH (v:JobVersion {{namespace: row.namespace, name: row.job_name, code_hash: code_hash}})
  MERGE (r)-[:EXECUTED]->(v)
}}
CALL (r, row) {{
  UNWIND row.reads AS e
  MATCH (v:DatasetVersion {{node_id: e.dsv}})
  MERGE (r)-[:READ {{binding: e.binding}}]->(v)
}}
CALL (r, row) {{
  UNWIND row.wrote AS e
  MATCH (v:DatasetVersion {{node_id: e.dsv}})
  MERGE (r)-[:WROTE {{binding: e.binding}}]->(v)
}}
CALL (r, row) {{
  UNWIND row.metrics AS p
  MERGE (m:Metric {{run_id: row.run_id, key: p.key, step: p.step}})
  WITH m, p, p.okey > coalesce(m.okey, '') AS wins
  SET m.value = CASE WHEN wins THEN p.value ELSE m.value END,
      m.okey = CASE WHEN wins THEN p.okey ELSE m.okey END
}}
"""

# Runs of the rows stored under another namespace. Run in the transaction that merged them: the
# MERGE waited for a concurrent creator to commit, so this sees the run's one and only namespace.
_FOREIGN_RUNS = """
UNWIND $rows AS row
MATCH (r:Run {run_id: row.run_id}) WHERE r.namespace <> row.namespace
RETURN r.run_id AS run_id, r.namespace AS owner, row.namespace AS namespace LIMIT 1
"""

# Links between runs: made when both ends exist, from whichever end arrives last.
_LINK_RUNS = """
UNWIND $ids AS id
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
"""

# -- canonical dump: the SQLite tables, column for column ------------------------------------------

_DUMP: dict[str, LiteralString] = {
    "project": "MATCH (n:Project) RETURN n.name AS name",
    "job": "MATCH (n:Job) RETURN n.namespace AS namespace, n.name AS name",
    "job_version": "MATCH (n:JobVersion) RETURN n.namespace AS namespace, n.name AS name, n.code_hash AS code_hash,"
    " n.entrypoint AS entrypoint, n.source_uri AS source_uri, n.git_commit AS git_commit, n.git_dirty AS git_dirty",
    "run": "MATCH (n:Run) RETURN n.run_id AS run_id, n.namespace AS namespace, n.job_name AS job_name,"
    " n.code_hash AS code_hash, n.state AS state, n.state_key AS state_key, n.started_at AS started_at,"
    " n.last_event_at AS last_event_at, n.ended_at AS ended_at, n.params AS params, n.params_key AS params_key,"
    " n.results AS results, n.results_key AS results_key, n.runtime AS runtime, n.runtime_key AS runtime_key,"
    " n.error AS error, n.error_key AS error_key, n.reproduces AS reproduces, n.reproduces_key AS reproduces_key,"
    " n.parent_run_id AS parent_run_id",
    "metric": "MATCH (n:Metric) RETURN n.run_id AS run_id, n.key AS key, n.step AS step, n.value AS value,"
    " n.okey AS okey",
    "dataset": "MATCH (n:Dataset) RETURN n.namespace AS namespace, n.name AS name, n.kind AS kind",
    "dataset_version": "MATCH (n:DatasetVersion) RETURN n.node_id AS node_id, n.namespace AS namespace,"
    " n.name AS name, n.version AS version, n.kind AS kind, n.size AS size, n.uri AS uri, n.format AS format,"
    " n.framework AS framework, n.created_at AS created_at",
    "read": "MATCH (r:Run)-[e:READ]->(d:DatasetVersion) RETURN r.run_id AS run_id, d.node_id AS dsv,"
    " e.binding AS binding",
    "wrote": "MATCH (r:Run)-[e:WROTE]->(d:DatasetVersion) RETURN r.run_id AS run_id, d.node_id AS dsv,"
    " e.binding AS binding",
}

# -- reads ---------------------------------------------------------------------------------------

_RUN_PROPS = "run_id, namespace, job_name, state, code_hash, params, started_at"
_DSV_PROPS = "node_id, namespace, name, version, kind, size"

_RUN_VIEW: LiteralString = """
RETURN r {.*} AS run,
  COLLECT { MATCH (m:Metric {run_id: r.run_id}) RETURN [m.key, m.step, m.value] } AS metrics
"""

_REFS: LiteralString = "RETURN [d.namespace, d.name, d.version, d.kind, e.binding, d.node_id]"

# Everything a RunView shows, for the run bound to `r`.
_RUN_DETAIL: LiteralString = (
    """
OPTIONAL MATCH (v:JobVersion {namespace: r.namespace, name: r.job_name, code_hash: r.code_hash})
WITH r, v
"""
    + _RUN_VIEW
    + ", v {.*} AS job_version,"
    + " COLLECT { MATCH (r)-[e:READ]->(d:DatasetVersion) "
    + _REFS
    + " } AS inputs,"
    + " COLLECT { MATCH (r)-[e:WROTE]->(d:DatasetVersion) "
    + _REFS
    + " } AS outputs"
)

# One hop of a lineage walk for the whole frontier. The cap is fan_out + 1 so overflow shows.
_HOP: dict[tuple[str, bool], LiteralString] = {
    # (frontier kind, upstream?) -> query
    ("run", True): """
UNWIND $ids AS id MATCH (r:Run {run_id: id})
CALL (r) { MATCH (r)-[e:READ]->(d:DatasetVersion) WITH e, d ORDER BY d.node_id, e.binding LIMIT $cap
  RETURN collect([e.binding, d.node_id, d.namespace, d.name, d.version, d.kind, d.size]) AS hits }
RETURN id, hits""",
    ("run", False): """
UNWIND $ids AS id MATCH (r:Run {run_id: id})
CALL (r) { MATCH (r)-[e:WROTE]->(d:DatasetVersion) WITH e, d ORDER BY d.node_id, e.binding LIMIT $cap
  RETURN collect([e.binding, d.node_id, d.namespace, d.name, d.version, d.kind, d.size]) AS hits }
RETURN id, hits""",
    ("dsv", True): """
UNWIND $ids AS id MATCH (d:DatasetVersion {node_id: id})
CALL (d) { MATCH (r:Run)-[e:WROTE]->(d) WITH e, r ORDER BY r.run_id, e.binding LIMIT $cap
  RETURN collect([e.binding, r.run_id, r.namespace, r.job_name, r.state, r.code_hash, r.params, r.started_at])
    AS hits }
RETURN id, hits""",
    ("dsv", False): """
UNWIND $ids AS id MATCH (d:DatasetVersion {node_id: id})
CALL (d) { MATCH (r:Run)-[e:READ]->(d) WITH e, r ORDER BY r.run_id, e.binding LIMIT $cap
  RETURN collect([e.binding, r.run_id, r.namespace, r.job_name, r.state, r.code_hash, r.params, r.started_at])
    AS hits }
RETURN id, hits""",
}

_COUNTS: dict[str, LiteralString] = {
    "Run": "MATCH (n:Run) RETURN count(n) AS n",
    "DatasetVersion": "MATCH (n:DatasetVersion) RETURN count(n) AS n",
    "Dataset": "MATCH (n:Dataset) RETURN count(n) AS n",
    "Metric": "MATCH (n:Metric) RETURN count(n) AS n",
    "Job": "MATCH (n:Job) RETURN count(n) AS n",
    "JobVersion": "MATCH (n:JobVersion) RETURN count(n) AS n",
    "Project": "MATCH (n:Project) RETURN count(n) AS n",
}

# Bounded transactions, repeated until nothing is left: edges first, so no single delete drags a
# hub's 10^4 edges along (`CALL { } IN TRANSACTIONS` over a million nodes still ran out of memory).
_RESET_EDGES = "MATCH ()-[e]->() WITH e LIMIT $batch DELETE e RETURN count(*) AS deleted"
_RESET_NODES = "MATCH (n) WITH n LIMIT $batch DELETE n RETURN count(*) AS deleted"


# -- helpers ---------------------------------------------------------------------------------------


class _TooLarge(Exception):
    """A transaction hit the server's memory limit: retrying it unchanged cannot succeed, so it is
    raised past the driver's retry loop (which retries every `TransientError`) as this."""

    def __init__(self, cause: Neo4jError) -> None:
        super().__init__(cause.message or str(cause))
        self.cause = cause


_TOO_LARGE = "Neo.TransientError.General.MemoryPoolOutOfMemoryError"
# Not the data's fault: wait and retry rather than dead-letter (wrong credentials, missing database).
_NOT_THE_DATA = ("Neo.ClientError.Security.", "Neo.ClientError.Database.DatabaseNotFound")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Driver errors leave this module as provgraph errors, naming what was being done.

    `Neo4jUnavailable`: retrying later may succeed (server down, transient, auth or database
    misconfigured). `ProjectionError`: this request cannot succeed (a refused value, too large).
    """
    try:
        yield
    except _TooLarge as exc:
        raise ProjectionError(
            f"Neo4j {what} failed: the transaction is too large for the server's memory limit ({exc});"
            " write fewer events at once"
        ) from exc.cause
    except (Neo4jError, DriverError) as exc:
        code = getattr(exc, "code", None) or ""
        retryable = exc.is_retryable() or code.startswith(_NOT_THE_DATA)
        kind = Neo4jUnavailable if retryable else ProjectionError
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise kind(f"Neo4j {what} failed ({type(exc).__name__}): {detail}") from exc


def _guarded(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    def wrap(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> T:
            with _translated(what):
                return fn(*args, **kwargs)

        return inner

    return wrap


def _max_nn(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def _run_row(f: RunFacts) -> Row:
    row: Row = run_row(f)
    repro = loads_json(f.reproduces)
    row["reproduces_of"] = repro.get("run_id") if repro else None
    row["reproduces_verdict"] = repro.get("verdict") if repro else None
    return row


_KEYED = {
    "params": (),
    "results": (),
    "runtime": (),
    "error": (),
    "reproduces": ("reproduces_of", "reproduces_verdict"),
}


def _fold_run(old: Row, new: Row) -> None:
    """`old` absorbs `new` with the rules `_MERGE_RUNS` applies against the stored node."""
    if new["state_key"] > old["state_key"]:
        old["state"], old["ended_at"], old["state_key"] = new["state"], new["ended_at"], new["state_key"]
    old["started_at"] = min(old["started_at"], new["started_at"])
    old["last_event_at"] = max(old["last_event_at"], new["last_event_at"])
    old["code_hash"] = _max_nn(old["code_hash"], new["code_hash"])
    old["parent_run_id"] = _max_nn(old["parent_run_id"], new["parent_run_id"])
    for col, carried in _KEYED.items():
        if new[f"{col}_key"] is not None and new[f"{col}_key"] > (old[f"{col}_key"] or ""):
            for p in (col, *carried, f"{col}_key"):
                old[p] = new[p]


def _fold_max(rows: dict[Any, Row], key: Any, row: Row, props: Iterable[str], mins: Iterable[str] = ()) -> None:
    old = rows.get(key)
    if old is None:
        rows[key] = row
        return
    for p in props:
        old[p] = _max_nn(old[p], row[p])
    for p in mins:
        old[p] = min(old[p], row[p])


def rows_for(events: Sequence[RunEvent]) -> dict[str, list[Row]]:
    """The batch folded into one row per node: what `apply` sends, statement by statement.

    `Inadmissible` when the batch breaks a write rule by itself; the runs' stored namespaces are
    checked by `apply_rows`, in the write transaction.
    """
    admit(events, {})
    runs: dict[str, Row] = {}
    jobs: dict[tuple[str, str], Row] = {}
    job_versions: dict[tuple[str, str, str], Row] = {}
    dsvs: dict[str, Row] = {}
    # per run: code hashes, (key, step) -> metric, and (dsv, binding) edges
    code_hashes: dict[str, set[str]] = {}
    metrics: dict[str, dict[tuple[str, int], Row]] = {}
    reads: dict[str, dict[tuple[str, str], Row]] = {}
    wrote: dict[str, dict[tuple[str, str], Row]] = {}
    for event in events:
        f = facts(event)
        row = _run_row(f)
        if f.run_id in runs:
            _fold_run(runs[f.run_id], row)
        else:
            runs[f.run_id] = row
        jobs.setdefault((f.namespace, f.job_name), {"namespace": f.namespace, "name": f.job_name})
        if f.code is not None:
            c = f.code
            _fold_max(
                job_versions,
                (f.namespace, f.job_name, c.code_hash),
                {
                    "namespace": f.namespace,
                    "name": f.job_name,
                    "code_hash": c.code_hash,
                    "entrypoint": c.entrypoint,
                    "source_uri": c.source_uri,
                    "git_commit": c.git_commit,
                    "git_dirty": None if c.git_dirty is None else int(c.git_dirty),
                },
                ("entrypoint", "source_uri", "git_commit", "git_dirty"),
            )
            code_hashes.setdefault(f.run_id, set()).add(c.code_hash)
        run_metrics = metrics.setdefault(f.run_id, {})
        for key, step, value in f.metrics:
            m = run_metrics.get((key, step))
            if m is None or f.order_key > m["okey"]:
                run_metrics[(key, step)] = {"key": key, "step": step, "value": encode_float(value), "okey": f.order_key}
        for edges, found in ((reads, f.reads), (wrote, f.writes)):
            run_edges = edges.setdefault(f.run_id, {})
            for d in found:
                node_id = d.node_id
                _fold_max(
                    dsvs,
                    node_id,
                    {
                        "node_id": node_id,
                        "namespace": d.namespace,
                        "name": d.name,
                        "version": d.version,
                        "kind": d.kind,
                        "size": d.size,
                        "uri": d.uri,
                        "format": d.format,
                        "framework": d.framework,
                        "created_at": f.event_time,
                    },
                    ("kind", "size", "uri", "format", "framework"),
                    ("created_at",),
                )
                run_edges.setdefault((node_id, d.binding), {"dsv": node_id, "binding": d.binding})
    for run_id, row in runs.items():
        row["code_hashes"] = sorted(code_hashes.get(run_id, ()))
        row["metrics"] = list(metrics[run_id].values())
        row["reads"] = list(reads[run_id].values())
        row["wrote"] = list(wrote[run_id].values())
    return {
        "jobs": list(jobs.values()),
        "job_versions": list(job_versions.values()),
        "dataset_versions": list(dsvs.values()),
        "runs": list(runs.values()),
    }


# Endpoints are merged before the statements that MATCH them.
_WRITES: tuple[tuple[str, LiteralString], ...] = (
    ("jobs", _MERGE_JOBS),
    ("job_versions", _MERGE_JOB_VERSIONS),
    ("dataset_versions", _MERGE_DATASET_VERSIONS),
    ("runs", _MERGE_RUNS),
)


def _refs(items: list[list[Any]]) -> list[DatasetRef]:
    items = sorted(items, key=lambda i: (i[4], i[5]))  # binding, node id: as SQLite
    return [DatasetRef(namespace=i[0], name=i[1], version=i[2], kind=i[3], binding=i[4]) for i in items]


class Neo4jLineageStore:
    """`LineageStore` on a Neo4j database; thread-safe (one driver, a session per call)."""

    def __init__(
        self, config: Neo4jConfig, bounds: LineageBounds | None = None, liveness: Liveness | None = None
    ) -> None:
        self.config = config
        self.bounds = bounds or LineageBounds()
        self.liveness = liveness or Liveness()
        auth = None if config.password is None else neo4j.basic_auth(config.user, config.password)
        with _translated(f"connect to {config.uri}"):
            self._driver = neo4j.GraphDatabase.driver(
                config.uri,
                auth=auth,
                connection_timeout=config.connection_timeout_s,
                # Warnings such as "property key does not exist" (for props no event has set yet) are noise.
                notifications_min_severity="OFF",
            )
            try:
                self._driver.verify_connectivity()
                self._ensure_schema()
            except BaseException:
                self._driver.close()
                raise

    @classmethod
    def from_settings(cls, settings: Settings, bounds: LineageBounds | None = None) -> Neo4jLineageStore:
        return cls(Neo4jConfig.from_settings(settings), bounds, Liveness(settings.heartbeat_timeout_s))

    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self.config.database)

    def _ensure_schema(self) -> None:
        with self._session() as s:
            for stmt in _SCHEMA:
                s.run(stmt).consume()
            s.run("CALL db.awaitIndexes(300)").consume()

    def _query(self, cypher: LiteralString, **params: Any) -> list[Row]:
        records, _, _ = self._driver.execute_query(
            cypher, params, database_=self.config.database, routing_=neo4j.RoutingControl.READ
        )
        return [r.data() for r in records]

    # -- writes ---------------------------------------------------------------------------------

    def apply(self, events: Sequence[RunEvent]) -> None:
        """Project the events in one transaction (retried by the driver on transient errors)."""
        self.apply_prepared(self.prepare(events))

    def prepare(self, events: Sequence[RunEvent]) -> dict[str, list[Row]]:
        return rows_for(events)

    @_guarded("write")
    def apply_prepared(self, batch: dict[str, list[Row]]) -> None:
        """`apply` for rows already folded by `prepare` (so a caller can fold the next batch meanwhile).

        One transaction, unless the batch holds more than `MAX_ROWS_PER_TX` runs or dataset
        versions: then the statements run in order in chunks of that size, one transaction each.
        A failure part-way leaves some chunks applied; applying the batch again completes it (writes
        are idempotent), which is what every caller does after an error.
        """
        if not batch["runs"]:
            return
        big = max(len(batch["runs"]), len(batch["dataset_versions"])) > MAX_ROWS_PER_TX
        steps: list[tuple[LiteralString, dict[str, Any]]] = []
        for name, stmt in _WRITES:
            rows = batch[name]
            for i in range(0, len(rows), MAX_ROWS_PER_TX if big else max(len(rows), 1)):
                steps.append((stmt, {"rows": rows[i : i + MAX_ROWS_PER_TX] if big else rows}))
                if stmt is _MERGE_RUNS:
                    steps.append((_FOREIGN_RUNS, steps[-1][1]))
        run_ids = [r["run_id"] for r in batch["runs"]]
        for i in range(0, len(run_ids), MAX_ROWS_PER_TX):
            steps.append((_LINK_RUNS, {"ids": run_ids[i : i + MAX_ROWS_PER_TX]}))

        def work(tx: neo4j.ManagedTransaction, todo: list[tuple[LiteralString, dict[str, Any]]]) -> None:
            try:
                for stmt, params in todo:
                    if not next(iter(params.values())):
                        continue
                    result = tx.run(stmt, params)
                    foreign = result.single() if stmt is _FOREIGN_RUNS else None
                    result.consume()
                    if foreign is not None:  # raised inside: the transaction rolls back, not retried
                        raise Inadmissible(
                            "event refused by the graph: "
                            + owner_conflict(foreign["run_id"], foreign["owner"], foreign["namespace"])
                        )
            except Neo4jError as exc:
                if exc.code == _TOO_LARGE:
                    raise _TooLarge(exc) from exc
                raise

        with self._session() as s:
            if not big:
                s.execute_write(work, steps)
            else:  # each runs chunk with its owner check, which must share its transaction
                for i, step in enumerate(steps):
                    if step[0] is not _FOREIGN_RUNS:
                        s.execute_write(work, steps[i : i + 2] if step[0] is _MERGE_RUNS else [step])

    @_guarded("read")
    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        rows = self._query(
            "UNWIND $ids AS id MATCH (r:Run {run_id: id}) RETURN r.run_id AS run_id, r.namespace AS namespace",
            ids=sorted(set(run_ids)),
        )
        return {r["run_id"]: r["namespace"] for r in rows}

    @_guarded("reset")
    def reset(self) -> None:
        """Delete every node and edge (in batches); constraints and indexes stay."""
        with self._session() as s:
            for stmt in (_RESET_EDGES, _RESET_NODES):
                while s.run(stmt, batch=RESET_BATCH).single(strict=True)["deleted"]:
                    pass

    def close(self) -> None:
        self._driver.close()

    # -- reads ----------------------------------------------------------------------------------

    def _run_view(self, rec: Row, *, detail: bool) -> RunView:
        r = rec["run"]
        metrics = {m[0]: decode_float(m[2]) for m in sorted(rec["metrics"], key=lambda m: (m[0], m[1]))}
        if not detail:
            return run_view(r, metrics=metrics, liveness=self.liveness)
        jv = rec.get("job_version") if r.get("code_hash") is not None else None
        return run_view(
            r,
            metrics=metrics,
            inputs=_refs(rec["inputs"]),
            outputs=_refs(rec["outputs"]),
            job_version=job_version_view(jv) if jv else None,
            liveness=self.liveness,
        )

    @_guarded("read")
    def run(self, run_id: str) -> RunView | None:
        rows = self._query("MATCH (r:Run {run_id: $run_id})" + _RUN_DETAIL, run_id=run_id)
        return self._run_view(rows[0], detail=True) if rows else None

    @_guarded("read")
    def runs(self, where: RunFilter | None = None, *, first: int = 50, after: str | None = None) -> list[RunView]:
        return runs_in_state(self._runs, where or RunFilter(), first, after)

    def _runs(self, where: RunFilter, states: tuple[str, ...] | None, first: int, after: str | None) -> list[RunView]:
        # Always true (started_at is set on every run), but it lets the planner read runs in
        # started_at order from the range index instead of sorting them all.
        clauses: list[LiteralString] = ["r.started_at IS NOT NULL"]
        params: dict[str, Any] = {"first": max(0, first)}
        for clause, name, value in (
            ("r.namespace = $project", "project", where.project),
            ("r.job_name = $job", "job", where.job),
            ("r.state IN $states", "states", list(states) if states else None),
            ("r.started_at >= $since", "since", where.since.isoformat() if where.since else None),
            ("r.started_at < $until", "until", where.until.isoformat() if where.until else None),
        ):
            if value is not None:
                clauses.append(clause)
                params[name] = value
        cypher: LiteralString = "MATCH (r:Run)"
        if after is not None:
            anchor = self._query("MATCH (a:Run {run_id: $after}) RETURN a.started_at AS started_at", after=after)
            if not anchor:
                return []  # as in SQLite: an unknown `after` run yields an empty page
            # The first conjunct is a range the started_at index answers; the second breaks ties.
            clauses.append("r.started_at <= $after_started")
            clauses.append("(r.started_at < $after_started OR r.run_id < $after)")
            params["after"], params["after_started"] = after, anchor[0]["started_at"]
        if clauses:
            cypher += " WHERE " + " AND ".join(clauses)
        cypher += " WITH r ORDER BY r.started_at DESC, r.run_id DESC LIMIT $first" + _RUN_VIEW
        return [self._run_view(rec, detail=False) for rec in self._query(cypher, **params)]

    @_guarded("read")
    def job(self, namespace: str, name: str) -> JobView | None:
        rows = self._query(
            "MATCH (j:Job {namespace: $ns, name: $name})"
            " RETURN COLLECT { MATCH (v:JobVersion {namespace: $ns, name: $name}) RETURN v {.*} } AS versions,"
            " COUNT { MATCH (r:Run {namespace: $ns, job_name: $name}) } AS runs",
            ns=namespace,
            name=name,
        )
        if not rows:
            return None
        versions = sorted(rows[0]["versions"], key=lambda v: v["code_hash"])
        return JobView(
            namespace=namespace,
            name=name,
            versions=[job_version_view(v) for v in versions],
            run_count=int(rows[0]["runs"]),
        )

    @_guarded("read")
    def dataset(self, namespace: str, name: str) -> DatasetView | None:
        rows = self._query(
            "MATCH (d:Dataset {namespace: $ns, name: $name})"
            " RETURN d.kind AS kind,"
            " COLLECT { MATCH (d)-[:HAS_VERSION]->(v:DatasetVersion) RETURN v {.*} } AS versions",
            ns=namespace,
            name=name,
        )
        if not rows:
            return None
        versions = sorted(rows[0]["versions"], key=lambda v: (v["created_at"], v["version"]))
        return DatasetView(
            namespace=namespace, name=name, kind=rows[0]["kind"], versions=[dataset_version_view(v) for v in versions]
        )

    @_guarded("read")
    def dataset_version(self, namespace: str, name: str, version: str) -> DatasetVersionView | None:
        rows = self._query(
            "MATCH (v:DatasetVersion {node_id: $id}) RETURN v {.*} AS v",
            id=dataset_node_id(namespace, name, version),
        )
        return dataset_version_view(rows[0]["v"]) if rows else None

    @_guarded("read")
    def latest_version(self, namespace: str, name: str) -> DatasetVersionView | None:
        rows = self._query(
            "MATCH (v:DatasetVersion {namespace: $ns, name: $name})"
            " RETURN v {.*} AS v ORDER BY v.created_at DESC, v.version DESC LIMIT 1",
            ns=namespace,
            name=name,
        )
        return dataset_version_view(rows[0]["v"]) if rows else None

    @_guarded("read")
    def produced_by(self, namespace: str, name: str, version: str) -> RunView | None:
        rows = self._query(
            "MATCH (r:Run)-[:WROTE]->(:DatasetVersion {node_id: $id})"
            " WITH DISTINCT r ORDER BY r.started_at, r.run_id LIMIT 1" + _RUN_DETAIL,
            id=dataset_node_id(namespace, name, version),
        )
        return self._run_view(rows[0], detail=True) if rows else None

    @_guarded("read")
    def search(self, text: str, kinds: Sequence[str] = ("job", "run", "dataset"), limit: int = 20) -> list[str]:
        needle = search_needle(text)  # CONTAINS has no wildcards: nothing to escape
        found: list[str] = []
        if "job" in kinds:
            found += [
                f"job:{r['ns']}:{r['name']}"
                for r in self._query(
                    "MATCH (j:Job) WHERE toLower(j.name) CONTAINS $t"
                    " RETURN j.namespace AS ns, j.name AS name ORDER BY ns, name LIMIT $limit",
                    t=needle,
                    limit=limit,
                )
            ]
        if "run" in kinds:
            found += [
                f"run:{r['id']}"
                for r in self._query(
                    "MATCH (r:Run) WHERE toLower(r.job_name) CONTAINS $t OR toLower(r.run_id) CONTAINS $t"
                    " RETURN r.run_id AS id ORDER BY r.started_at DESC, r.run_id DESC LIMIT $limit",
                    t=needle,
                    limit=limit,
                )
            ]
        if "dataset" in kinds:
            found += [
                f"dataset:{r['ns']}:{r['name']}"
                for r in self._query(
                    "MATCH (d:Dataset) WHERE toLower(d.name) CONTAINS $t"
                    " RETURN d.namespace AS ns, d.name AS name ORDER BY ns, name LIMIT $limit",
                    t=needle,
                    limit=limit,
                )
            ]
        return found[:limit]

    # -- lineage --------------------------------------------------------------------------------

    @_guarded("lineage query")
    def lineage(self, node: NodeId, direction: Direction, depth: int = 3, fan_out: int = 100) -> LineageGraph:
        depth, fan_out = self.bounds.clamp(depth, fan_out)
        upstream = direction == Direction.UPSTREAM
        reasons: list[str] = []
        with self._session() as s:
            tx = s.begin_transaction()
            try:
                start = self._start(tx, node, fan_out, reasons)

                def expand(frontier: list[str], hop: int, known: Collection[str]) -> Hop:
                    return self._expand(tx, frontier, upstream, fan_out, hop, reasons)

                return bounded_walk(node, direction, depth, self.bounds, start, expand, reasons)
            finally:
                tx.close()

    @staticmethod
    def _start(tx: neo4j.Transaction, node: NodeId, fan_out: int, reasons: list[str]) -> list[LineageNode]:
        run_ret: LiteralString = f"RETURN [{', '.join('r.' + p for p in _RUN_PROPS.split(', '))}] AS n"
        dsv_ret: LiteralString = f"RETURN [{', '.join('d.' + p for p in _DSV_PROPS.split(', '))}] AS n"
        if node.kind == "run":
            rows = list(tx.run("MATCH (r:Run {run_id: $id}) " + run_ret, id=node.key[0]))
            return [run_node(0, r["n"]) for r in rows]
        if node.kind == "datasetVersion":
            rows = list(tx.run("MATCH (d:DatasetVersion {node_id: $id}) " + dsv_ret, id=dataset_node_id(*node.key)))
            return [dataset_version_node(0, r["n"]) for r in rows]
        ns, name = node.key
        if node.kind == "dataset":
            rows = list(
                tx.run(
                    "MATCH (d:DatasetVersion {namespace: $ns, name: $name}) WITH d ORDER BY d.created_at DESC"
                    " LIMIT $cap " + dsv_ret,
                    ns=ns,
                    name=name,
                    cap=fan_out + 1,
                )
            )
            make = dataset_version_node
        else:
            rows = list(
                tx.run(
                    "MATCH (r:Run {namespace: $ns, job_name: $name}) WITH r ORDER BY r.started_at DESC"
                    " LIMIT $cap " + run_ret,
                    ns=ns,
                    name=name,
                    cap=fan_out + 1,
                )
            )
            make = run_node
        if len(rows) > fan_out:
            reasons.append(f"fan-out limit of {fan_out} cut the start node {node}")
            rows = rows[:fan_out]
        return [make(0, r["n"]) for r in rows]

    @staticmethod
    def _expand(
        tx: neo4j.Transaction, frontier: list[str], upstream: bool, fan_out: int, hop: int, reasons: list[str]
    ) -> tuple[list[LineageEdge], dict[str, LineageNode]]:
        """One hop from every frontier node: runs step to dataset versions, dataset versions to runs."""
        runs = [f[4:] for f in frontier if f.startswith("run:")]
        dsvs = [f for f in frontier if not f.startswith("run:")]
        edges: list[LineageEdge] = []
        found: dict[str, LineageNode] = {}
        # Upstream: a run's inputs (READ), and the runs that wrote a dataset (WROTE). Downstream: the reverse.
        for kind, ids in (("run", runs), ("dsv", dsvs)):
            if not ids:
                continue
            edge_kind = "READ" if (kind == "run") == upstream else "WROTE"
            cut: list[str] = []
            for rec in tx.run(_HOP[(kind, upstream)], ids=ids, cap=fan_out + 1):
                hits = rec["hits"]
                if len(hits) > fan_out:
                    cut.append(rec["id"])
                    hits = hits[:fan_out]
                for h in hits:
                    if kind == "run":
                        n = dataset_version_node(hop, h[1:])
                        edges.append(LineageEdge(source=f"run:{rec['id']}", target=n.id, kind=edge_kind, binding=h[0]))
                    else:
                        n = run_node(hop, h[1:])
                        edges.append(LineageEdge(source=n.id, target=rec["id"], kind=edge_kind, binding=h[0]))
                    found.setdefault(n.id, n)
            reasons += [f"fan-out limit of {fan_out} cut the neighbours of {source}" for source in sorted(cut)]
        return edges, found

    # -- canonical dump -------------------------------------------------------------------------

    @_guarded("dump")
    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table, cypher in _DUMP.items():
            rows = self._query(cypher)
            out[table] = sorted(rows, key=lambda d: json.dumps(d, sort_keys=True, default=str))
        return out

    # -- operations -------------------------------------------------------------------------------

    @_guarded("count")
    def count(self) -> dict[str, int]:
        """Nodes per label, from Neo4j's count store (constant time; for progress and benchmarks)."""
        return {label: int(self._query(cypher)[0]["n"]) for label, cypher in _COUNTS.items()}
