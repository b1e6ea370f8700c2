"""The embedded lineage store: the graph model in SQLite, answering the same contract as Neo4j.

Tables mirror the graph model (project, job, job_version, run, dataset, dataset_version) with
the READ and WROTE edges as tables keyed by the run's and the dataset version's integer key (`id`,
local to this file: the text ids stay the graph's; `dump` gives the edges by them). Every write
is an idempotent upsert; see `projection.py` for why the result does not depend on event order.
Lineage walks are breadth-first, one parametrised query per hop for the whole frontier.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from provgraph.events.admission import owner_ids
from provgraph.events.errors import ProjectionError
from provgraph.events.facets.values import decode_float, encode_float
from provgraph.events.states import UNVERSIONED, RunState
from provgraph.graph import sqlite_db, sqlite_facets
from provgraph.graph.columns import ColumnKey, Neighbour, column_root, column_walk
from provgraph.graph.completeness import ONE_EVENT_JOBS, TERMINAL, CompletenessRules
from provgraph.graph.contract import DEFAULT_DEPTH, NOW, AsOf, Condition, LineageBounds, RunFilter, search_needle
from provgraph.graph.ids import NodeId, dataset_node_id, job_node_id, run_node_id, split_runs
from provgraph.graph.liveness import Liveness, runs_in_state
from provgraph.graph.projection import CARRIED_RUN_PROPS, RunFacts, admit, facts, fold_run, run_row
from provgraph.graph.rows import (
    DATASET_VERSION_NODE_FIELDS,
    RUN_NODE_FIELDS,
    dataset_version_view,
    edge_kind,
    existing,
    job_version_view,
    metric_series,
    run_view,
)
from provgraph.graph.views import (
    Completeness,
    DatasetRef,
    DatasetVersionView,
    DatasetView,
    Direction,
    JobVersionView,
    JobView,
    LineageGraph,
    LogChunkView,
    MetricSeries,
    RunView,
)
from provgraph.graph.walk import Cuts, Edge, Hop, NodeRow, bounded_walk

if TYPE_CHECKING:
    from provgraph.events.model import RunEvent
    from provgraph.graph.facets import ColumnLineageGraph, Facets

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS project (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS job (namespace TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS job_version (
    namespace TEXT NOT NULL, name TEXT NOT NULL, code_hash TEXT NOT NULL,
    entrypoint TEXT, source_uri TEXT, git_commit TEXT, git_dirty INTEGER,
    PRIMARY KEY (namespace, name, code_hash));
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL, job_name TEXT NOT NULL, code_hash TEXT, entrypoint TEXT,
    state TEXT NOT NULL, state_key TEXT NOT NULL, started_at TEXT NOT NULL, last_event_at TEXT, ended_at TEXT,
    known_at TEXT NOT NULL, ended_known_at TEXT, has_start INTEGER NOT NULL, declared_events INTEGER,
    params TEXT, params_key TEXT, results TEXT, results_key TEXT, runtime TEXT, runtime_key TEXT,
    error TEXT, error_key TEXT, reproduces TEXT, reproduces_key TEXT, parent_run_id TEXT, cached_from TEXT,
    traceback TEXT, labels TEXT, labels_key TEXT, annotations TEXT);
CREATE INDEX IF NOT EXISTS run_job ON run(namespace, job_name, started_at);
CREATE INDEX IF NOT EXISTS run_started ON run(started_at, run_id);
CREATE INDEX IF NOT EXISTS run_job_started ON run(job_name, started_at, run_id);
CREATE INDEX IF NOT EXISTS run_project_started ON run(namespace, started_at, run_id);
CREATE INDEX IF NOT EXISTS run_project_state ON run(namespace, state, started_at, run_id);
CREATE TABLE IF NOT EXISTS run_seq (run_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS metric (
    run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL, okey TEXT NOT NULL,
    PRIMARY KEY (run_id, key, step));
CREATE INDEX IF NOT EXISTS metric_key_value ON metric(key, value);
CREATE TABLE IF NOT EXISTS run_param (
    run_id TEXT NOT NULL, key TEXT NOT NULL, num REAL, str TEXT, PRIMARY KEY (run_id, key));
CREATE INDEX IF NOT EXISTS run_param_num ON run_param(key, num);
CREATE INDEX IF NOT EXISTS run_param_str ON run_param(key, str);
CREATE TABLE IF NOT EXISTS run_label (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE INDEX IF NOT EXISTS run_label_value ON run_label(key, value);
CREATE TABLE IF NOT EXISTS log_chunk (
    run_id TEXT NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (run_id, offset));
CREATE TABLE IF NOT EXISTS dataset (
    namespace TEXT NOT NULL, name TEXT NOT NULL, kind TEXT, PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS dataset_version (
    id INTEGER PRIMARY KEY, node_id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    kind TEXT, size INTEGER, uri TEXT, format TEXT, framework TEXT, meta TEXT, created_at TEXT NOT NULL,
    known_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS dsv_dataset ON dataset_version(namespace, name, created_at);
CREATE TABLE IF NOT EXISTS read (
    run_ref INTEGER NOT NULL, dsv_ref INTEGER NOT NULL, binding TEXT NOT NULL, first_at TEXT NOT NULL,
    known_at TEXT NOT NULL, unversioned INTEGER NOT NULL, PRIMARY KEY (run_ref, dsv_ref, binding)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS read_dsv ON read(dsv_ref);
CREATE TABLE IF NOT EXISTS wrote (
    run_ref INTEGER NOT NULL, dsv_ref INTEGER NOT NULL, binding TEXT NOT NULL, first_at TEXT NOT NULL,
    known_at TEXT NOT NULL, PRIMARY KEY (run_ref, dsv_ref, binding)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS wrote_dsv ON wrote(dsv_ref);
CREATE TABLE IF NOT EXISTS dead_letter (
    log_offset INTEGER PRIMARY KEY, stage TEXT NOT NULL, error TEXT NOT NULL, original BLOB NOT NULL,
    failed_at TEXT NOT NULL);
"""

_TABLES = (
    "project",
    "job",
    "job_version",
    "run",
    "run_seq",
    "metric",
    "log_chunk",
    "dataset",
    "dataset_version",
    "read",
    "wrote",
    *sqlite_facets.TABLES,
)
_DERIVED = ("run_param", "run_label")
"""Tables derived from `run` for queries (`--where`): emptied with it, left out of `dump`."""
_LATEST_RUN_COLUMNS = {"known_at", "cached_from", "traceback", "labels", "id", "entrypoint"}
"""Run columns added last: a graph without one of them is made again and projected again (`id`: the
integer keys of the edge tables, schema of round 8)."""
_KEYED = ("run", "dataset_version")
"""Tables with an integer `id`, which is this file's own and left out of `dump`."""
_TEXT_EDGES = (
    "SELECT r.run_id AS run_id, v.node_id AS dsv, e.binding AS binding, e.first_at AS first_at,"
    " e.known_at AS known_at FROM {} e JOIN run r ON r.id = e.run_ref JOIN dataset_version v ON v.id = e.dsv_ref"
)
"""A READ or WROTE table (`.format(table)`) as the graph's text ids: what `dump` gives (and tests compare)."""


def _newer(col: str) -> str:
    """SET clause: take the incoming value, and the columns carried with it, when its order key is
    greater (NULL keys never win)."""
    win = f"excluded.{col}_key > COALESCE(run.{col}_key, '')"
    return ", ".join(
        f"{p} = CASE WHEN {win} THEN excluded.{p} ELSE run.{p} END"
        for p in (col, *CARRIED_RUN_PROPS.get(col, ()), f"{col}_key")
    )


def _max(table: str, col: str) -> str:
    """SET clause: the greatest non-NULL value, whichever side it came from (commutative)."""
    return f"{col} = MAX(COALESCE({table}.{col}, excluded.{col}), COALESCE(excluded.{col}, {table}.{col}))"


_UPSERT_RUN = f"""
INSERT INTO run (run_id, namespace, job_name, code_hash, entrypoint, state, state_key, started_at, last_event_at,
                 ended_at, known_at, ended_known_at, has_start, declared_events,
                 params, params_key, results, results_key, runtime, runtime_key, error, error_key,
                 reproduces, reproduces_key, parent_run_id, cached_from, traceback, labels, labels_key, annotations)
VALUES (:run_id, :namespace, :job_name, :code_hash, :entrypoint, :state, :state_key, :started_at, :last_event_at,
        :ended_at, :known_at, :ended_known_at, :has_start, :declared_events,
        :params, :params_key, :results, :results_key, :runtime, :runtime_key, :error, :error_key,
        :reproduces, :reproduces_key, :parent_run_id, :cached_from, :traceback, :labels, :labels_key, :annotations)
ON CONFLICT (run_id) DO UPDATE SET
    {_max("run", "code_hash")}, {_max("run", "entrypoint")}, {_max("run", "parent_run_id")},
    {_max("run", "declared_events")},
    {_max("run", "cached_from")},
    state = CASE WHEN excluded.state_key > run.state_key THEN excluded.state ELSE run.state END,
    ended_at = CASE WHEN excluded.state_key > run.state_key THEN excluded.ended_at ELSE run.ended_at END,
    ended_known_at = CASE WHEN excluded.state_key > run.state_key THEN excluded.ended_known_at
                          WHEN excluded.state_key = run.state_key THEN MIN(run.ended_known_at, excluded.ended_known_at)
                          ELSE run.ended_known_at END,
    state_key = MAX(run.state_key, excluded.state_key),
    known_at = MIN(run.known_at, excluded.known_at),
    has_start = MAX(run.has_start, excluded.has_start),
    job_name = CASE WHEN excluded.started_at < run.started_at
                      OR (excluded.started_at = run.started_at AND excluded.job_name < run.job_name)
                    THEN excluded.job_name ELSE run.job_name END,
    started_at = MIN(run.started_at, excluded.started_at),
    last_event_at = MAX(run.last_event_at, excluded.last_event_at),
    {_newer("params")}, {_newer("results")}, {_newer("runtime")}, {_newer("error")}, {_newer("reproduces")},
    {_newer("labels")}
"""  # noqa: S608 (fixed SQL built from constants)

_UPSERT_JOB_VERSION = f"""
INSERT INTO job_version (namespace, name, code_hash, entrypoint, source_uri, git_commit, git_dirty)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET {_max("job_version", "entrypoint")}, {_max("job_version", "source_uri")},
    {_max("job_version", "git_commit")}, {_max("job_version", "git_dirty")}
"""  # noqa: S608 (fixed SQL built from constants)

_UPSERT_DATASET = f"""
INSERT INTO dataset (namespace, name, kind) VALUES (?, ?, ?)
ON CONFLICT DO UPDATE SET {_max("dataset", "kind")}
"""  # noqa: S608 (fixed SQL built from constants)

_UPSERT_DSV = f"""
INSERT INTO dataset_version (node_id, namespace, name, version, kind, size, uri, format, framework, meta,
                             created_at, known_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (node_id) DO UPDATE SET {_max("dataset_version", "kind")}, {_max("dataset_version", "size")},
    {_max("dataset_version", "uri")}, {_max("dataset_version", "format")},
    {_max("dataset_version", "framework")}, {_max("dataset_version", "meta")},
    created_at = MIN(dataset_version.created_at, excluded.created_at),
    known_at = MIN(dataset_version.known_at, excluded.known_at)
"""  # noqa: S608 (fixed SQL built from constants)

_UPSERT_METRIC = """
INSERT INTO metric (run_id, key, step, value, okey) VALUES (?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET value = CASE WHEN excluded.okey > metric.okey THEN excluded.value ELSE metric.value END,
    okey = MAX(metric.okey, excluded.okey)
"""


# One chunk per offset; were two producers ever to disagree, the greater digest wins everywhere.
_UPSERT_LOG_CHUNK = """
INSERT INTO log_chunk (run_id, offset, size, digest) VALUES (?, ?, ?, ?)
ON CONFLICT DO UPDATE SET
    size = CASE WHEN excluded.digest > log_chunk.digest THEN excluded.size ELSE log_chunk.size END,
    digest = MAX(log_chunk.digest, excluded.digest)
"""

# A run's scalar params, one row each, from its stored (winning) params: numbers in `num`, strings
# and booleans ("true"/"false") in `str`, so a comparison never mixes the two.
_DELETE_PARAMS = "DELETE FROM run_param WHERE run_id IN (SELECT value FROM json_each(?))"
_PARAM_ROWS = """
INSERT INTO run_param (run_id, key, num, str)
SELECT r.run_id, p.key, CASE WHEN p.type IN ('integer', 'real') THEN p.value END,
       CASE WHEN p.type = 'text' THEN p.value WHEN p.type IN ('true', 'false') THEN p.type END
FROM run r, json_each(r.params) p
WHERE p.type IN ('integer', 'real', 'text', 'true', 'false')
"""
_INSERT_PARAMS = _PARAM_ROWS + " AND r.run_id IN (SELECT value FROM json_each(?))"  # noqa: S608 (constants)
# A run's labels, one row each, from its stored (winning) labels (always text).
_DELETE_LABELS = "DELETE FROM run_label WHERE run_id IN (SELECT value FROM json_each(?))"
_LABEL_ROWS = """
INSERT INTO run_label (run_id, key, value)
SELECT r.run_id, l.key, l.value FROM run r, json_each(r.labels) l WHERE l.type = 'text'
"""
_INSERT_LABELS = _LABEL_ROWS + " AND r.run_id IN (SELECT value FROM json_each(?))"  # noqa: S608 (constants)
_SQL_OP = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
"""Operators of a run query as SQL: looked up, never taken from the query text."""
_SQL_TIME = {"started": "started_at", "ended": "ended_at"}


def _condition_sql(cond: Condition) -> tuple[str, list[Any]]:
    """One condition as a WHERE clause over `run`, answered from an index (see `run_query`)."""
    op = _SQL_OP[cond.op]
    if cond.kind in _SQL_TIME:
        return f"{_SQL_TIME[cond.kind]} {op} ?", [cond.value]
    if cond.kind == "param":
        col = "num" if isinstance(cond.value, float) else "str"
        sql = f"run_id IN (SELECT run_id FROM run_param WHERE key = ? AND {col} {op} ?)"  # noqa: S608 (fixed)
        return sql, [cond.key, cond.value]
    if cond.kind == "label":
        sql = f"run_id IN (SELECT run_id FROM run_label WHERE key = ? AND value {op} ?)"  # noqa: S608 (fixed)
        return sql, [cond.key, cond.value]
    # a metric's latest step; values are REAL, or text for NaN/±Infinity, which compare with nothing
    return (
        f"run_id IN (SELECT m.run_id FROM metric m WHERE m.key = ? AND m.value {op} ?"  # noqa: S608 (fixed op)
        " AND typeof(m.value) = 'real'"
        " AND m.step = (SELECT MAX(step) FROM metric WHERE run_id = m.run_id AND key = m.key))",
        [cond.key, cond.value],
    )


_RUN_NODES = (
    f"SELECT id, {', '.join(RUN_NODE_FIELDS)} FROM run"  # noqa: S608 (fixed column names)
    " WHERE run_id IN (SELECT value FROM json_each(?))"
)
_DSV_NODES = (
    f"SELECT id, {', '.join(DATASET_VERSION_NODE_FIELDS)} FROM dataset_version"  # noqa: S608 (fixed column names)
    " WHERE node_id IN (SELECT value FROM json_each(?))"
)


_WRITTEN = "(r.state = 'COMPLETE' AND r.ended_at <= :as_of AND r.ended_known_at <= :known)"
"""The run `r` COMPLETEd as of the query's times: its declared outputs are written (else attempted)."""
_SEEN_W = "(w.first_at <= :as_of AND w.known_at <= :known)"
"""The WROTE edge `w` was declared, and received, as of the query's times."""

# An input without a version resolves to the version whose producer COMPLETEd last at or before the
# read was first declared (else it stays `@unversioned`); `u` is the read's `@unversioned` version.
_LATEST_WRITTEN = f"""SELECT v.id
  FROM dataset_version v JOIN wrote w ON w.dsv_ref = v.id JOIN run r ON r.id = w.run_ref
  WHERE v.namespace = u.namespace AND v.name = u.name AND v.version <> '{UNVERSIONED}'
    AND {_WRITTEN} AND r.ended_at <= e.first_at AND {_SEEN_W}
  ORDER BY r.ended_at DESC, v.node_id DESC LIMIT 1"""  # noqa: S608 (fixed SQL)
_RESOLVED = f"""CASE WHEN e.unversioned THEN COALESCE(
  (SELECT ({_LATEST_WRITTEN}) FROM dataset_version u WHERE u.id = e.dsv_ref AND u.version = '{UNVERSIONED}'),
  e.dsv_ref) ELSE e.dsv_ref END"""  # noqa: S608 (fixed SQL)
"""The key of the version the READ edge `e` reaches. An input without a version is marked on its edge
(`unversioned`), so a versioned read's own row is not read twice, once to learn it needs no resolving
and once as the node."""

_EXISTS = f"""(EXISTS (SELECT 1 FROM read e WHERE e.dsv_ref = v.id AND e.first_at <= :as_of AND e.known_at <= :known)
  OR EXISTS (SELECT 1 FROM wrote w JOIN run r ON r.id = w.run_ref
             WHERE w.dsv_ref = v.id AND {_SEEN_W} AND ({_WRITTEN} OR :failed)))"""  # noqa: S608 (fixed SQL)
"""The dataset version `v` exists as of the query: read, or written (attempted too with :failed)."""


def _far(alias: str, fields: Sequence[str]) -> str:
    return ", ".join(f"{alias}.{c} AS f{i}" for i, c in enumerate(fields))


_FAR_RUN, _FAR_DSV = _far("r", RUN_NODE_FIELDS), _far("t", DATASET_VERSION_NODE_FIELDS)


_RUN_PREFIX = run_node_id("")
_WROTE_KIND = f"CASE WHEN {_WRITTEN} THEN '{edge_kind('wrote', False)}' ELSE '{edge_kind('wrote', True)}' END AS kind"


def _edges(table: str, key: str) -> str:
    """The READ (resolved) or WROTE edges as (near, kind, binding, far_key, f0, f1, ...), whose near end's
    integer key (run or dataset version, by `key`) is in the JSON list :cand and that the query's times
    can see: `near` is that key and `far_key` the other end's. f0... are the far end's node fields
    (`RUN_NODE_FIELDS` or `DATASET_VERSION_NODE_FIELDS`), read in the same join, so a walk reads each row
    it reaches once; its node id is f0 (a dataset version's) or made from it (a run's). `kind` is NULL for
    a READ; WROTE edges of runs not COMPLETE are ATTEMPTED, left out unless :failed. No column repeats
    another and no text is constant: each costs ~0.4 us a row to hand to Python (docs/BENCHMARKS.md, round
    9). A READ reached by its dataset version is near the version it resolves to (the caller keeps those
    of its frontier)."""
    seen_e = "e.first_at <= :as_of AND e.known_at <= :known"
    if table == "read" and key == "run_id":
        return (
            f"SELECT e.run_ref AS near, NULL AS kind, e.binding AS binding, t.id AS far_key,"  # noqa: S608
            f" {_FAR_DSV} FROM read e JOIN dataset_version t ON t.id = {_RESOLVED}"
            f" WHERE {seen_e} AND e.run_ref IN (SELECT value FROM json_each(:cand))"
        )
    if table == "read":
        return (
            f"SELECT {_RESOLVED} AS near, NULL AS kind, e.binding AS binding, r.id AS far_key,"  # noqa: S608
            f" {_FAR_RUN} FROM read e JOIN run r ON r.id = e.run_ref"
            f" WHERE {seen_e} AND e.dsv_ref IN (SELECT value FROM json_each(:cand))"
        )
    if key == "dsv":
        near, join, fields = "w.dsv_ref", "", f"r.id AS far_key, {_FAR_RUN}"
    else:
        near, join = "w.run_ref", " JOIN dataset_version t ON t.id = w.dsv_ref"
        fields = f"t.id AS far_key, {_FAR_DSV}"
    return (
        f"SELECT {near} AS near, {_WROTE_KIND}, w.binding AS binding, {fields}"  # noqa: S608
        f" FROM wrote w JOIN run r ON r.id = w.run_ref{join}"
        f" WHERE {_SEEN_W} AND ({_WRITTEN} OR :failed) AND {near} IN (SELECT value FROM json_each(:cand))"
    )


_READ_PRAGMAS = ("PRAGMA mmap_size=2147418112", "PRAGMA cache_size=-65536")
"""A lineage walk reads a few random pages of every edge and node table per node it reaches, all
over the file. Memory-mapped reads (up to 2 GiB, SQLite's build limit) take them from the OS page
cache without a system call and a copy each, and a 64 MiB page cache (filled only as pages are read)
keeps more of a 10M-node graph's index interior pages than the default 2 MiB (docs/BENCHMARKS.md)."""

_EDGES = {(table, key): _edges(table, key) for table in ("read", "wrote") for key in ("run_id", "dsv")}
"""`_edges` of each table by each key, made once (a run's own edges: by run_id, :cand = [its run id])."""


def _at(at: AsOf, *, include_failed: bool = False) -> dict[str, Any]:
    as_of, known = at.texts()
    return {"as_of": as_of, "known": known, "failed": int(include_failed)}


class DeadLetter(NamedTuple):
    """An event of the embedded log the projection refused: the graph goes on without it."""

    log_offset: int
    stage: str
    """`validate` (not a valid RunEvent any more) or `project` (the store refused it)."""
    error: str
    original: bytes
    failed_at: str


class SqliteLineageStore:
    """`LineageStore` on one SQLite file (or `:memory:`)."""

    def __init__(
        self,
        path: Path | str,
        bounds: LineageBounds | None = None,
        liveness: Liveness | None = None,
        completeness: CompletenessRules | None = None,
    ) -> None:
        self.path = path
        self.bounds = bounds or LineageBounds()
        self.liveness = liveness or Liveness()
        self.completeness = completeness or CompletenessRules()
        self._lock = threading.RLock()
        """Held around every use of the connection, which has no mutex of its own (`sqlite_db.connect`)."""
        try:
            self._conn = sqlite_db.connect(path)
            for pragma in _READ_PRAGMAS:
                self._conn.execute(pragma)
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self._conn.execute(_SCHEMA + sqlite_facets.SCHEMA)
        except sqlite_db.DAMAGED as exc:  # not a lock, I/O error or full disk: those are raised as they are
            raise ProjectionError(
                f"the lineage graph {path} is damaged ({exc}); rebuild it from the event log with `provgraph replay`"
            ) from exc
        with self._tx() as c:
            self._migrate(c, older="run" in tables and "facet" not in tables)
            if "run" in tables and "run_param" not in tables:  # a graph projected before `run_param` existed
                c.execute(_PARAM_ROWS)

    def _migrate(self, c: sqlite_db.Connection, *, older: bool) -> None:
        """A graph projected before the facet tables, the latest run columns (as-of reads, completeness,
        caching, tracebacks), artifact metadata or the integer node keys existed is dropped and made again,
        empty, so the next `sync()` projects the log again from the start and fills them (the graph is only
        a projection)."""
        columns = {row[1] for row in c.execute("PRAGMA table_info(run)")}
        dsv_columns = {row[1] for row in c.execute("PRAGMA table_info(dataset_version)")}
        if older or not columns >= _LATEST_RUN_COLUMNS or "meta" not in dsv_columns:
            for table in (*_TABLES, *_DERIVED, "meta"):
                c.execute(f"DROP TABLE IF EXISTS {table}")
            for stmt in (_SCHEMA + sqlite_facets.SCHEMA).split(";"):
                if stmt.strip():
                    c.execute(stmt)
        # Here, not in _SCHEMA: a graph from before `parent_run_id` has no such column until just above.
        c.execute("CREATE INDEX IF NOT EXISTS run_parent ON run(parent_run_id, started_at)")

    # -- writes ---------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite_db.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def prepare(
        self, events: Sequence[RunEvent], *, known_at: Sequence[datetime] | None = None
    ) -> tuple[Sequence[RunEvent], Sequence[datetime] | None]:
        """Nothing to fold ahead: SQLite writes within one process, checking owners in the write."""
        return events, known_at

    def apply_prepared(self, batch: tuple[Sequence[RunEvent], Sequence[datetime] | None]) -> None:
        self.apply(batch[0], known_at=batch[1])

    def apply(
        self,
        events: Sequence[RunEvent],
        *,
        known_at: Sequence[datetime] | None = None,
        offset: int | None = None,
        dead: Sequence[DeadLetter] = (),
    ) -> None:
        """Project events in one transaction; `offset` (embedded log position) and the batch's dead
        letters are saved with them. The offset only moves forward (a slower concurrent sync of
        events already in the graph cannot move it back)."""
        all_facts = [facts(e, known_at[i] if known_at else None) for i, e in enumerate(events)]
        with self._tx() as c:
            admit(events, self._run_owners(c, owner_ids(events)))
            self._write(c, all_facts)
            sqlite_facets.write(c, events)
            c.executemany("INSERT OR IGNORE INTO dead_letter VALUES (?, ?, ?, ?, ?)", dead)
            if offset is not None:
                c.execute(
                    "INSERT INTO meta(key, value) VALUES ('projected_offset', ?) ON CONFLICT DO UPDATE"
                    " SET value = MAX(CAST(meta.value AS INTEGER), CAST(excluded.value AS INTEGER))",
                    (str(offset),),
                )

    def _write(self, c: sqlite_db.Connection, all_facts: list[RunFacts]) -> None:
        c.executemany("INSERT OR IGNORE INTO project(name) VALUES (?)", {(f.namespace,) for f in all_facts})
        c.executemany(
            "INSERT OR IGNORE INTO job(namespace, name) VALUES (?, ?)",
            {(f.namespace, f.job_name) for f in all_facts},
        )
        c.executemany(
            _UPSERT_JOB_VERSION,
            {  # a set: a run's events repeat their job version
                (
                    f.namespace,
                    f.job_name,
                    f.code.code_hash,
                    f.code.entrypoint,
                    f.code.source_uri,
                    f.code.git_commit,
                    None if f.code.git_dirty is None else int(f.code.git_dirty),
                )
                for f in all_facts
                if f.code is not None
            },
        )
        runs: dict[str, dict[str, Any]] = {}  # one row per run: its events folded as the upsert would
        for f in all_facts:
            if (row := runs.get(f.run_id)) is None:
                runs[f.run_id] = run_row(f)
            else:
                fold_run(row, f)
        c.executemany(_UPSERT_RUN, runs.values())
        with_params = json.dumps(sorted({f.run_id for f in all_facts if f.params is not None}))
        c.execute(_DELETE_PARAMS, (with_params,))
        c.execute(_INSERT_PARAMS, (with_params,))
        with_labels = json.dumps(sorted({f.run_id for f in all_facts if f.labels is not None}))
        c.execute(_DELETE_LABELS, (with_labels,))
        c.execute(_INSERT_LABELS, (with_labels,))
        c.executemany(
            _UPSERT_METRIC,
            # encoded: SQLite stores NaN as NULL, so non-finite values are kept as "NaN"/"Infinity" text
            [(f.run_id, k, step, encode_float(v), f.order_key) for f in all_facts for (k, step, v) in f.metrics],
        )
        c.executemany(_UPSERT_LOG_CHUNK, [(f.run_id, *chunk) for f in all_facts for chunk in f.logs])
        datasets = [(f, d) for f in all_facts for d in (*f.reads, *f.writes)]
        c.executemany(_UPSERT_DATASET, {(d.namespace, d.name, d.kind) for _, d in datasets})
        c.executemany(
            _UPSERT_DSV,
            [
                (
                    d.node_id,
                    d.namespace,
                    d.name,
                    d.version,
                    d.kind,
                    d.size,
                    d.uri,
                    d.format,
                    d.framework,
                    d.meta,
                    f.event_time,
                    f.known_at,
                )
                for f, d in datasets
            ],
        )
        c.executemany(
            "INSERT OR IGNORE INTO run_seq(run_id, seq) VALUES (?, ?)",
            [(f.run_id, f.seq) for f in all_facts if f.seq > 0],
        )
        # The run's and the version's rows were written above, so every edge finds both keys (checked:
        # an edge whose `SELECT` found no row would be left out silently).
        for table, attr in (("read", "reads"), ("wrote", "writes")):
            flag = (", unversioned", ", ?") if table == "read" else ("", "")
            before = c.total_changes()
            edges = [
                (
                    d.binding,
                    f.event_time,
                    f.known_at,
                    *((int(d.version == UNVERSIONED),) if flag[0] else ()),
                    f.run_id,
                    d.node_id,
                )
                for f in all_facts
                for d in getattr(f, attr)
            ]
            c.executemany(
                f"INSERT INTO {table}(run_ref, dsv_ref, binding, first_at, known_at{flag[0]})"  # noqa: S608
                f" SELECT r.id, v.id, ?, ?, ?{flag[1]} FROM run r, dataset_version v"
                " WHERE r.run_id = ? AND v.node_id = ?"
                f" ON CONFLICT DO UPDATE SET first_at = MIN({table}.first_at, excluded.first_at),"
                f" known_at = MIN({table}.known_at, excluded.known_at)",
                edges,
            )
            if c.total_changes() - before != len(edges):  # each row inserts or updates exactly one edge
                raise RuntimeError(f"{table} edges without their run or dataset version row")

    @staticmethod
    def _run_owners(c: sqlite_db.Connection, run_ids: Sequence[str]) -> dict[str, str]:
        rows = c.execute(
            "SELECT run_id, namespace FROM run WHERE run_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(run_ids))),),
        ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return self._run_owners(self._conn, run_ids)

    def projected_offset(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'projected_offset'").fetchone()
        return int(row[0]) if row else 0

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """The events the projection refused, oldest first (the newest `limit` when given)."""
        rows = self._all(
            "SELECT * FROM (SELECT * FROM dead_letter ORDER BY log_offset DESC LIMIT ?) ORDER BY log_offset",
            (-1 if limit is None else max(0, limit),),
        )
        return [DeadLetter(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def reset(self) -> None:
        with self._tx() as c:
            for table in (*_TABLES, *_DERIVED, "meta", "dead_letter"):
                c.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- reads ----------------------------------------------------------------------------------

    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _dicts(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows by column name (runs, versions, the dump); the walk's rows stay tuples."""
        with self._lock:
            cursor = self._conn.execute(sql, params)
            try:
                names = [d[0] for d in cursor.get_description()]
                return [dict(zip(names, r, strict=True)) for r in cursor]
            except sqlite_db.NoRows:
                return []
            finally:
                cursor.close()  # here, under the lock: the connection has no mutex of its own

    def _refs(self, table: str, key: int) -> list[DatasetRef]:
        """The run's (by its integer key) inputs (unversioned ones resolved) or outputs (marked when only
        attempted)."""
        rows = self._all(
            f"SELECT e.f1, e.f2, e.f3, e.f4, e.binding, e.kind = '{edge_kind('wrote', True)}'"  # noqa: S608 (fixed)
            f" FROM ({_EDGES[table, 'run_id']}) e WHERE e.f0 IS NOT NULL ORDER BY e.binding, e.f0",
            {**_at(NOW, include_failed=True), "cand": json.dumps([key])},
        )
        return [
            DatasetRef(namespace=r[0], name=r[1], version=r[2], kind=r[3], binding=r[4], attempted=bool(r[5]))
            for r in rows
        ]

    def _completeness(self, row: dict[str, Any]) -> Completeness:
        seqs = [r[0] for r in self._all("SELECT seq FROM run_seq WHERE run_id = ? ORDER BY seq", (row["run_id"],))]
        return self.completeness.judge(
            state=row["state"],
            has_start=bool(row["has_start"]),
            seqs=seqs,
            declared=row["declared_events"],
            last_event_at=row["last_event_at"],
            job=row["job_name"],
        )

    def _run_view(self, row: dict[str, Any], *, detail: bool = True) -> RunView:
        run_id = row["run_id"]
        metrics = {
            m[0]: decode_float(m[1])
            for m in self._all("SELECT key, value FROM metric WHERE run_id = ? ORDER BY key, step", (run_id,))
        }
        if not detail:
            return run_view(row, metrics=metrics, liveness=self.liveness)
        job_version = None
        if row["code_hash"] is not None:
            job_version = self._job_version(row["namespace"], row["job_name"], row["code_hash"])
        return run_view(
            row,
            metrics=metrics,
            inputs=self._refs("read", row["id"]),
            outputs=self._refs("wrote", row["id"]),
            job_version=job_version,
            liveness=self.liveness,
            completeness=self._completeness(row),
        )

    def _job_version(self, namespace: str, name: str, code_hash: str) -> JobVersionView | None:
        rows = self._dicts(
            "SELECT * FROM job_version WHERE namespace = ? AND name = ? AND code_hash = ?",
            (namespace, name, code_hash),
        )
        return job_version_view(rows[0]) if rows else None

    def run(self, run_id: str) -> RunView | None:
        rows = self._dicts("SELECT * FROM run WHERE run_id = ?", (run_id,))
        return self._run_view(rows[0]) if rows else None

    def runs(self, where: RunFilter | None = None, *, first: int = 50, after: str | None = None) -> list[RunView]:
        return runs_in_state(self._runs, where or RunFilter(), first, after)

    def metric_history(self, run_id: str, keys: Sequence[str] | None = None, limit: int = 10_000) -> list[MetricSeries]:
        rows = self._all(
            "SELECT key, step, value FROM (SELECT key, step, value,"
            " ROW_NUMBER() OVER (PARTITION BY key ORDER BY step) AS n FROM metric WHERE run_id = ?"
            " AND (? IS NULL OR key IN (SELECT value FROM json_each(?)))) WHERE n <= ? ORDER BY key, step",
            (run_id, None if keys is None else 1, json.dumps(list(keys or [])), max(0, limit) + 1),
        )
        return metric_series(rows, max(0, limit))

    def log_chunks(self, run_id: str) -> list[LogChunkView]:
        rows = self._all("SELECT offset, size, digest FROM log_chunk WHERE run_id = ? ORDER BY offset", (run_id,))
        return [LogChunkView(offset=r[0], size=r[1], digest=r[2]) for r in rows]

    def _runs(
        self, where: RunFilter, states: tuple[RunState, ...] | None, first: int, after: str | None
    ) -> list[RunView]:
        sql, params = self.runs_query(where, states, first, after)
        return [self._run_view(r, detail=False) for r in self._dicts(sql, params)]

    @staticmethod
    def runs_query(
        where: RunFilter, states: tuple[RunState, ...] | None, first: int, after: str | None
    ) -> tuple[str, list[Any]]:
        """The SQL of a page of runs and its parameters (tests read its query plan)."""
        clauses: list[str] = []
        params: list[Any] = []
        for sql, value in (
            ("namespace = ?", where.project),
            ("job_name = ?", where.job),
            ("started_at >= ?", where.since.isoformat() if where.since else None),
            ("started_at < ?", where.until.isoformat() if where.until else None),
        ):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        if states:  # placeholders, not json_each: the planner then reads a rare state (FAIL) from its index
            clauses.append(f"state IN ({', '.join('?' * len(states))})")
            params += [s.value for s in states]
        for cond in where.conditions:
            sql, values = _condition_sql(cond)
            clauses.append(sql)
            params += values
        if after is not None:
            clauses.append("(started_at, run_id) < (SELECT started_at, run_id FROM run WHERE run_id = ?)")
            params.append(after)
        sql = "SELECT * FROM run"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY started_at DESC, run_id DESC LIMIT ?"
        return sql, [*params, max(0, first)]

    def incomplete_runs(self, project: str | None = None, first: int = 50) -> list[RunView]:
        rows = self._dicts(
            "SELECT r.* FROM run r LEFT JOIN (SELECT run_id, COUNT(*) AS n, MAX(seq) AS m FROM run_seq"
            " GROUP BY run_id) s ON s.run_id = r.run_id"
            " WHERE (:project IS NULL OR r.namespace = :project)"
            " AND ((r.has_start = 0 AND r.job_name NOT IN (SELECT value FROM json_each(:one_event)))"
            " OR COALESCE(s.n, 0) < COALESCE(s.m, 0) OR COALESCE(s.n, 0) < COALESCE(r.declared_events, 0)"
            " OR (r.state NOT IN (SELECT value FROM json_each(:terminal)) AND r.last_event_at < :cutoff))"
            " ORDER BY r.started_at DESC, r.run_id DESC LIMIT :first",
            {
                "project": project,
                "terminal": json.dumps(TERMINAL),
                "one_event": json.dumps(ONE_EVENT_JOBS),
                "cutoff": self.completeness.cutoff(),
                "first": max(0, first),
            },
        )
        return [self._run_view(r) for r in rows]

    def children(self, run_id: str, first: int = 1000) -> list[RunView]:
        rows = self._dicts(
            "SELECT c.* FROM run AS p JOIN run AS c ON c.parent_run_id = p.run_id AND c.namespace = p.namespace"
            " WHERE p.run_id = ? ORDER BY c.started_at, c.run_id LIMIT ?",
            (run_id, max(0, first)),
        )
        return [self._run_view(r, detail=False) for r in rows]

    def job(self, namespace: str, name: str) -> JobView | None:
        if not self._all("SELECT 1 FROM job WHERE namespace = ? AND name = ?", (namespace, name)):
            return None
        versions = self._dicts(
            "SELECT * FROM job_version WHERE namespace = ? AND name = ? ORDER BY code_hash", (namespace, name)
        )
        count = self._all("SELECT COUNT(*) FROM run WHERE namespace = ? AND job_name = ?", (namespace, name))
        return JobView(
            namespace=namespace,
            name=name,
            versions=[job_version_view(v) for v in versions],
            run_count=int(count[0][0]),
        )

    def dataset(self, namespace: str, name: str, at: AsOf = NOW) -> DatasetView | None:
        rows = self._all("SELECT kind FROM dataset WHERE namespace = ? AND name = ?", (namespace, name))
        if not rows:
            return None
        versions = self._dicts(
            f"SELECT * FROM dataset_version v WHERE namespace = :ns AND name = :name AND {_EXISTS}"  # noqa: S608
            " ORDER BY created_at, version",
            {"ns": namespace, "name": name, **_at(at)},
        )
        return DatasetView(
            namespace=namespace,
            name=name,
            kind=rows[0][0],
            versions=existing([dataset_version_view(v) for v in versions]),
        )

    def dataset_version(self, namespace: str, name: str, version: str) -> DatasetVersionView | None:
        rows = self._dicts(
            "SELECT * FROM dataset_version WHERE node_id = ?", (dataset_node_id(namespace, name, version),)
        )
        return dataset_version_view(rows[0]) if rows else None

    def dataset_names(self, namespace: str, kind: str | None = None, first: int = 100) -> list[str]:
        rows = self._all(
            "SELECT name FROM dataset WHERE namespace = :ns AND (:kind IS NULL OR kind = :kind) ORDER BY name LIMIT :n",
            {"ns": namespace, "kind": kind, "n": max(0, first)},
        )
        return [r[0] for r in rows]

    def latest_version(self, namespace: str, name: str) -> DatasetVersionView | None:
        found = self.dataset(namespace, name)
        return found.versions[-1] if found and found.versions else None

    def produced_by(self, namespace: str, name: str, version: str | None = None, at: AsOf = NOW) -> RunView | None:
        if version is not None:
            sql = (
                "SELECT r.* FROM dataset_version v JOIN wrote w ON w.dsv_ref = v.id JOIN run r ON r.id = w.run_ref"  # noqa: S608
                f" WHERE v.node_id = :dsv AND {_SEEN_W}"
                f" AND {_WRITTEN} ORDER BY r.started_at, r.run_id LIMIT 1"
            )
        else:
            sql = (
                "SELECT r.* FROM dataset_version v JOIN wrote w ON w.dsv_ref = v.id JOIN run r ON r.id = w.run_ref"  # noqa: S608
                f" WHERE v.namespace = :ns AND v.name = :name AND {_SEEN_W} AND {_WRITTEN}"
                " ORDER BY r.ended_at DESC, r.run_id DESC LIMIT 1"
            )
        rows = self._dicts(
            sql,
            {"dsv": dataset_node_id(namespace, name, version), "ns": namespace, "name": name, **_at(at)},
        )
        return self._run_view(rows[0]) if rows else None

    def search(self, text: str, kinds: Sequence[str] = ("job", "run", "dataset"), limit: int = 20) -> list[str]:
        # LIKE's wildcards are escaped: `%` and `_` in the text match only themselves
        needle = search_needle(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{needle}%"
        found: list[str] = []
        if "job" in kinds:
            found += [
                job_node_id(r[0], r[1])
                for r in self._all(
                    "SELECT namespace, name FROM job WHERE lower(name) LIKE ? ESCAPE '\\'"
                    " ORDER BY namespace, name LIMIT ?",
                    (pattern, limit),
                )
            ]
        if "run" in kinds:
            found += [
                run_node_id(r[0])
                for r in self._all(
                    "SELECT run_id FROM run WHERE lower(job_name) LIKE ? ESCAPE '\\' OR run_id LIKE ? ESCAPE '\\'"
                    " ORDER BY started_at DESC LIMIT ?",
                    (pattern, pattern, limit),
                )
            ]
        if "dataset" in kinds:
            found += [
                dataset_node_id(r[0], r[1])
                for r in self._all(
                    "SELECT namespace, name FROM dataset WHERE lower(name) LIKE ? ESCAPE '\\'"
                    " ORDER BY namespace, name LIMIT ?",
                    (pattern, limit),
                )
            ]
        return found[:limit]

    def run_ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        with self._lock:
            return sqlite_facets.run_ids_with_prefix(self._conn, prefix, limit)

    def facets(self, owners: Sequence[str]) -> dict[str, Facets]:
        with self._lock:
            return sqlite_facets.facets(self._conn, owners)

    def column_lineage(
        self, dataset: NodeId, field: str, direction: Direction, depth: int = 5, fan_out: int = 100
    ) -> ColumnLineageGraph:
        root = column_root(dataset, field)
        with self._lock:
            known = sqlite_facets.column_known(self._conn, root, *dataset.key[:2])

        def hop(frontier: list[ColumnKey], upstream: bool, cap: int) -> dict[ColumnKey, list[Neighbour]]:
            with self._lock:
                return sqlite_facets.column_hop(self._conn, frontier, upstream, cap)

        return column_walk(root, known, direction, depth, fan_out, self.bounds, hop)

    # -- lineage --------------------------------------------------------------------------------

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
        depth, fan_out = self.bounds.clamp(depth, fan_out)
        cuts = Cuts()
        params = _at(at, include_failed=include_failed)
        keys: dict[str, int] = {}  # node id -> integer key, of every node the walk reached
        start = self._nodes(self._start(node, fan_out, cuts, params), keys)

        def expand(frontier: list[str], cuts: Cuts) -> Hop:
            return self._expand(frontier, direction, fan_out, cuts, params, keys)

        return bounded_walk(node, direction, depth, self.bounds, start, expand, cuts)

    def _start(self, node: NodeId, fan_out: int, cuts: Cuts, params: dict[str, Any]) -> list[str]:
        if node.kind == "run":
            rows = self._all(
                "SELECT run_id FROM run WHERE run_id = :id AND started_at <= :as_of AND known_at <= :known",
                {"id": node.key[0], **params},
            )
            return [run_node_id(r[0]) for r in rows]
        if node.kind == "datasetVersion":
            rows = self._all(
                "SELECT node_id FROM dataset_version WHERE node_id = :id AND created_at <= :as_of"
                " AND known_at <= :known",
                {"id": dataset_node_id(*node.key), **params},
            )
            return [r[0] for r in rows]
        if node.kind == "dataset":
            sql = (
                f"SELECT node_id FROM dataset_version v WHERE namespace = :ns AND name = :name AND {_EXISTS}"  # noqa: S608
                " ORDER BY created_at DESC, node_id DESC LIMIT :cap"
            )
        else:
            sql = (
                "SELECT run_id FROM run WHERE namespace = :ns AND job_name = :name AND started_at <= :as_of"
                " AND known_at <= :known ORDER BY started_at DESC, run_id DESC LIMIT :cap"
            )
        rows = self._all(sql, {"ns": node.key[0], "name": node.key[1], "cap": fan_out + 1, **params})
        if len(rows) > fan_out:
            cuts.add("fanOut", f"fan-out limit of {fan_out} cut the start node {node}")
            rows = rows[:fan_out]
        found = [r[0] for r in rows]
        return found if node.kind == "dataset" else [run_node_id(i) for i in found]

    def _expand(
        self,
        frontier: list[str],
        direction: Direction,
        fan_out: int,
        cuts: Cuts,
        params: dict[str, Any],
        keys: dict[str, int],
    ) -> Hop:
        """One hop from every frontier node: runs step to datasets, datasets step to runs; the nodes
        reached come with the edges (no second read of their rows), and their keys go into `keys`."""
        # by node id (`keys`): a walk's frontier is mostly all runs or all dataset versions
        runs = [i for i in frontier if i.startswith(_RUN_PREFIX)]
        dsvs = [i for i in frontier if not i.startswith(_RUN_PREFIX)] if len(runs) < len(frontier) else []
        upstream = direction == Direction.UPSTREAM
        # Upstream: a run's inputs, and the runs that wrote a dataset. Downstream: the reverse.
        run_table, dsv_table = ("read", "wrote") if upstream else ("wrote", "read")
        edges: list[Edge] = []
        reached: dict[str, NodeRow] = {}
        for table, key, values in ((run_table, "run_id", runs), (dsv_table, "dsv", dsvs)):
            if not values:
                continue
            names = {keys[i]: i for i in values}  # integer key -> node id
            sql, frontier_json = _EDGES[table, key], json.dumps(list(names))
            args = {"cand": frontier_json, **params}
            if table == "read" and key == "dsv":  # readers of the dataset that named no version may resolve here
                args["cand"] = json.dumps([*names, *self._unversioned(list(names))])
                # ... or elsewhere: keep the edges that resolve to this frontier. Only here: the filter costs
                # as much again as the edges themselves.
                sql = f"SELECT * FROM ({sql}) WHERE near IN (SELECT value FROM json_each(:ids))"  # noqa: S608
                args["ids"] = frontier_json
            raw = self._all(sql, args)
            # raw: (near key, kind, binding, far key, far fields...), as `_edges`
            counts = Counter(map(itemgetter(0), raw))
            over = sorted(names[k] for k, n in counts.items() if n > fan_out)
            for source in over:
                name = source.removeprefix(_RUN_PREFIX) if key == "run_id" else source
                cuts.add("fanOut", f"fan-out limit of {fan_out} cut the neighbours of {name}")
            run = key == "dsv"  # the far end is a run, the edge's source (a `walk.Edge` is run -> version)
            fars = [run_node_id(r[4]) for r in raw] if run else [r[4] for r in raw]
            if over or len(keys) + len(raw) > self.bounds.max_nodes:
                # Which edges the fan-out cap keeps, or which nodes the node cap keeps, depend on the order:
                # each frontier node's first `fan_out` edges by (run, dataset version, binding), all in that
                # order (sorted here, not by a window function in SQL, which sorted the wide rows at several
                # times the cost). Otherwise the order changes nothing (the walk sorts its answer), and is
                # not made: every node reached here fits under the node cap (`keys` holds every node reached).
                fars, raw = self._capped(fars, raw, run, names, fan_out if over else None)
            kind = edge_kind("read", False) if table == "read" else None  # WROTE/ATTEMPTED: each row's own
            if run:
                edges += [(far, names[r[0]], kind or r[1], r[2]) for far, r in zip(fars, raw, strict=True)]
            else:
                edges += [(names[r[0]], far, kind or r[1], r[2]) for far, r in zip(fars, raw, strict=True)]
            for far, r in zip(fars, raw, strict=True):
                if far not in reached:
                    reached[far] = (run, r[4:])
                    keys[far] = r[3]
        return edges, reached

    @staticmethod
    def _capped(
        fars: list[str], raw: list[Any], run: bool, names: dict[int, str], fan_out: int | None
    ) -> tuple[list[str], list[Any]]:
        """`_expand`'s far ids and rows by (near node, run, dataset version, binding), and at most
        `fan_out` of each near node's (None: no near node has more)."""

        def order(i: int) -> tuple[str, str, str, str]:
            near = names[raw[i][0]]
            return (near, fars[i], near, raw[i][2]) if run else (near, near, fars[i], raw[i][2])

        kept = sorted(range(len(raw)), key=order)
        if fan_out is not None:
            taken = Counter[int]()
            capped = []
            for i in kept:
                taken[raw[i][0]] += 1
                if taken[raw[i][0]] <= fan_out:
                    capped.append(i)
            kept = capped
        return [fars[i] for i in kept], [raw[i] for i in kept]

    def _unversioned(self, dsvs: list[int]) -> list[int]:
        """The keys of the `@unversioned` versions of these versions' datasets."""
        rows = self._all(
            "SELECT DISTINCT namespace, name FROM dataset_version WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(dsvs),),
        )
        ids = [dataset_node_id(r[0], r[1], UNVERSIONED) for r in rows]
        if not ids:
            return []
        found = self._all(
            "SELECT id FROM dataset_version WHERE node_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
        )
        return [r[0] for r in found]

    def _nodes(self, ids: list[str], keys: dict[str, int]) -> dict[str, NodeRow]:
        """The stored node fields of these ids, in their order (unknown ids are left out); their integer
        keys go into `keys`."""
        runs, dsvs = split_runs(ids)
        out: dict[str, NodeRow] = {}
        if runs:
            for r in self._all(_RUN_NODES, (json.dumps(runs),)):
                out[run_node_id(r[1])] = (True, tuple(r)[1:])
                keys[run_node_id(r[1])] = r[0]
        if dsvs:
            for r in self._all(_DSV_NODES, (json.dumps(dsvs),)):
                out[r[1]] = (False, tuple(r)[1:])
                keys[r[1]] = r[0]
        return {i: out[i] for i in ids if i in out}

    # -- canonical dump -------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table in _TABLES:
            sql = _TEXT_EDGES.format(table) if table in ("read", "wrote") else f"SELECT * FROM {table}"  # noqa: S608
            rows = self._dicts(sql)
            if table in _KEYED:
                for row in rows:
                    del row["id"]
            out[table] = sorted(rows, key=lambda d: json.dumps(d, sort_keys=True, default=str))
        return out
