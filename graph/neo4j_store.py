"""The production lineage store: the graph model in Neo4j (see `neo4j_cypher`), answering the same
contract as SQLite.

Properties carry the same names, values and types as the SQLite columns (ISO strings for times,
JSON text for params/results/runtime, the `*_key` order keys, `git_dirty` as 0/1), so `dump()`
equals `SqliteLineageStore.dump()` for the same events.

Writes: `apply(events)` folds the batch in Python (`neo4j_rows.rows_for`) into one row per node,
then runs the parameterised `UNWIND $<list> ... MERGE` parts of `neo4j_cypher` as one statement
(`BATCH`) in one transaction (batches of more than `MAX_ROWS_PER_TX` runs are split, see `apply_prepared`). The
same rules run again in Cypher against what is stored, so batches commute: any order, any
duplication, same graph.

Reads: lineage is a bounded breadth-first walk driven from Python over the hops of the whole
frontier, with the per-node fan-out cut inside the query (ORDER BY ... LIMIT cap+1 per node); one
statement answers the walk's hops ahead (`_Hops`), the walk keeps the new nodes of each.

Driver errors leave as provgraph errors (`neo4j_config.translated`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString

import neo4j
from neo4j.exceptions import DriverError, Neo4jError

from provgraph.events.admission import owner_conflict
from provgraph.events.errors import Inadmissible
from provgraph.events.facets.values import decode_float
from provgraph.events.model import RunEvent, RunState
from provgraph.graph import neo4j_cypher as q
from provgraph.graph import neo4j_facets, progress
from provgraph.graph.columns import ColumnKey, Neighbour, column_root, column_walk
from provgraph.graph.completeness import ONE_EVENT_JOBS, TERMINAL, CompletenessRules
from provgraph.graph.contract import DEFAULT_DEPTH, NOW, AsOf, LineageBounds, RunFilter, search_needle
from provgraph.graph.facets import ColumnLineageGraph, Facets, facet_views
from provgraph.graph.ids import NodeId, dataset_node_id, job_node_id, run_node_id, split_runs
from provgraph.graph.liveness import Liveness, runs_in_state
from provgraph.graph.neo4j_config import TOO_LARGE, Neo4jConfig, TooLarge, guarded, translated
from provgraph.graph.neo4j_rows import Row, rows_for
from provgraph.graph.rows import (
    dataset_version_view,
    edge_kind,
    existing,
    job_version_view,
    metric_series,
    run_view,
)
from provgraph.graph.views import (
    DatasetRef,
    DatasetVersionView,
    DatasetView,
    Direction,
    JobView,
    LineageGraph,
    LogChunkView,
    MetricSeries,
    RunView,
)
from provgraph.graph.walk import Cuts, Edge, Hop, NodeRow, bounded_walk, edge_hops

if TYPE_CHECKING:
    from provgraph.events.settings import Settings

log = logging.getLogger(__name__)

MAX_ROWS_PER_TX = 5000
"""Runs (or dataset versions) per transaction; ~13 KB of server transaction memory each, so the
default `dbms.memory.transaction.total.max` of 256 MiB is never reached. A projector batch of
5,000 events holds at most 5,000 runs, so it is always one transaction."""

HOP_HITS = 50_000
"""Neighbours (frontier nodes x (fan_out + 1)) one lineage hop statement answers at most: its answer
is one record (`neo4j_cypher.HOP`), held whole in the server's transaction memory, so a wider
frontier is asked in slices (in order: the same rows in the same order). A statement that looks
ahead (`neo4j_cypher.CHAIN`) expands at most as many nodes per further hop, and no further hop once
its hits reach this: its record holds less than twice a hop's."""

LOOKAHEAD = q.MAX_CHAIN
"""Hops a lineage statement answers (at most `neo4j_cypher.MAX_CHAIN`): see `_Hops`."""

RESET_BATCH = 20_000
"""Edges, then nodes, deleted per transaction by `reset`."""

WARM_NOTHING = ""
"""The id every warming statement asks for: no node has it, so the statement plans and runs on nothing."""

BATCH_PARTS: tuple[tuple[str, LiteralString], ...] = (
    *q.WRITES,
    *neo4j_facets.WRITES,
    ("ids", q.LINK_RUNS),
    ("progress", progress.ADVANCE_PART),
)
"""`BATCH`'s parts in order, each named by its list in the `$batch` map."""
BATCH: LiteralString = q.PLAN_ONCE + "".join(f"CALL () {{{part}}}\n" for _, part in BATCH_PARTS) + "RETURN foreign"
"""A batch's whole write as one statement: each part a subquery over its own list of `$batch`
(`jobs`, ..., `runs`, `facets`, `column_lineage`, `ids` of the runs to link, `progress` last), in that
order. One statement instead of one per part: Neo4j's cost per statement (~4 ms of CPU at 25 records,
round 12) was most of a small batch's. The lists travel inside one map because Neo4j caches a plan per
size class (0, 1, up to 10, 100, ...) of each list parameter, and a map has none: one plan per server,
not one per combination of 8 lists' sizes (planning this statement costs seconds). `foreign`: the runs
stored under another namespace (`MERGE_RUNS`)."""


def _no_lists() -> dict[str, list[Any]]:
    return {name: [] for name, _ in BATCH_PARTS}


def _refs(items: list[list[Any]]) -> list[DatasetRef]:
    items = sorted(items, key=lambda i: (i[4], i[5]))  # binding, node id: as SQLite
    return [DatasetRef(namespace=i[0], name=i[1], version=i[2], kind=i[3], binding=i[4], attempted=i[6]) for i in items]


def _at(at: AsOf, *, include_failed: bool = False) -> dict[str, Any]:
    as_of, known = at.texts()
    return {"as_of": as_of, "known": known, "failed": include_failed}


class _Hops:
    """The hops of one walk, asked `LOOKAHEAD` at a time: a hop's statement (`neo4j_cypher.CHAIN`)
    also answers the next hops from the nodes it reaches, kept in `ahead` by node; the walk's next
    calls take from it the nodes of their frontier (the new ones) and ask only for those it lacks.
    No statement looks beyond the walk's `limit`-th hop; the depth probe's calls after it ask one hop.
    A statement finds its frontier by element id (`neo4j_cypher._bind`), kept in `element_ids` by
    node for every node the walk's statements returned (all in the walk's one transaction)."""

    def __init__(
        self, tx: neo4j.Transaction, way: tuple[bool, bool], fan_out: int, params: dict[str, Any], limit: int
    ) -> None:
        self.tx, self.way, self.fan_out, self.params, self.limit = tx, way, fan_out, params, limit
        self.calls = 0
        self.ahead: dict[tuple[str, str], list[Any]] = {}
        self.element_ids: dict[tuple[str, str], str] = {}

    def _hits(self, kind: str, ids: list[str], hops: int) -> dict[str, Any]:
        """Each frontier node's neighbour rows (up to fan_out + 1) by id, from `ahead` or asked now."""
        upstream, now = self.way
        cap = self.fan_out + 1
        step = max(1, HOP_HITS // cap)
        by_id = {i: self.ahead[kind, i] for i in ids if (kind, i) in self.ahead}
        missing = [i for i in ids if i not in by_id]
        for i in range(0, len(missing), step):
            part = {self.element_ids[kind, near]: near for near in missing[i : i + step]}
            if hops > 1:
                cypher = q.CHAIN[(kind, upstream, now, hops)]
                row = self.tx.run(cypher, ids=list(part), cap=cap, far_max=step, budget=HOP_HITS, **self.params).single(
                    True
                )
                further = kind
                for level in row["next"]:
                    further = "dsv" if further == "run" else "run"
                    self.ahead.update(((further, near), hits) for near, hits in level)
            else:
                row = self.tx.run(q.HOP[(kind, upstream, now)], ids=list(part), cap=cap, **self.params).single(True)
            by_id.update((part[element_id], hits) for element_id, hits in row["hops"])
        return by_id

    def expand(self, frontier: list[str], cuts: Cuts) -> Hop:
        """One hop from every frontier node: runs step to dataset versions, dataset versions to runs."""
        self.calls += 1
        upstream, _ = self.way
        hops = max(1, min(LOOKAHEAD, self.limit - self.calls + 1))
        runs, dsvs = split_runs(frontier)
        edges: list[Edge] = []
        found: dict[str, NodeRow] = {}
        fan_out = self.fan_out
        element_ids = self.element_ids
        # Upstream: a run's inputs (READ), and the runs that wrote a dataset (WROTE). Downstream: the reverse.
        for kind, ids in (("run", runs), ("dsv", dsvs)):
            if not ids:
                continue
            table = "read" if (kind == "run") == upstream else "wrote"
            by_id = self._hits(kind, ids, hops)
            cut: list[str] = []
            for near in ids:
                hits = by_id.get(near)
                if not hits:
                    continue
                if len(hits) > fan_out:
                    cut.append(near)
                    hits = hits[:fan_out]
                far_kind = "dsv" if kind == "run" else "run"
                for h in hits:
                    edge = edge_kind(table, h[1])
                    if kind == "run":
                        far = h[3]
                        edges.append((run_node_id(near), far, edge, h[0]))
                    else:
                        far = run_node_id(h[3])
                        edges.append((far, near, edge, h[0]))
                    element_ids[far_kind, h[3]] = h[2]
                    found.setdefault(far, (kind != "run", h[3:]))
            for source in sorted(cut):
                cuts.add("fanOut", f"fan-out limit of {fan_out} cut the neighbours of {source}")
        return edges, found


class Neo4jLineageStore:
    """`LineageStore` on a Neo4j database; thread-safe (one driver, a session per call)."""

    def __init__(
        self,
        config: Neo4jConfig,
        bounds: LineageBounds | None = None,
        liveness: Liveness | None = None,
        completeness: CompletenessRules | None = None,
        *,
        warm: bool = False,
    ) -> None:
        """`warm`: plan the lineage walk's statements in a background thread once open (`warm_walks`),
        for the API's store (it serves the walks): a CLI's store does not pay for it."""
        self.config = config
        self.bounds = bounds or LineageBounds()
        self.liveness = liveness or Liveness()
        self.completeness = completeness or CompletenessRules()
        auth = None if config.password is None else neo4j.basic_auth(config.user, config.password)
        with translated(f"connect to {config.uri}"):
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
        self._stop_warming = threading.Event()
        self.warming: threading.Thread | None = None
        """The thread of `warm_walks` while it runs (`warm`); joined by tests and `close`."""
        if warm:
            self.warming = threading.Thread(target=self._warm_quietly, name="neo4j-walk-warm-up", daemon=True)
            self.warming.start()

    @classmethod
    def from_settings(
        cls, settings: Settings, bounds: LineageBounds | None = None, *, warm: bool = False
    ) -> Neo4jLineageStore:
        return cls(
            Neo4jConfig.from_settings(settings),
            bounds,
            Liveness(settings.heartbeat_timeout_s),
            CompletenessRules(settings.completeness_timeout_s),
            warm=warm,
        )

    def _session(self) -> neo4j.Session:
        return self._driver.session(database=self.config.database)

    def _ensure_schema(self) -> None:
        with self._session() as s:
            for stmt in (*q.SCHEMA, *neo4j_facets.SCHEMA, *progress.SCHEMA):
                s.run(stmt).consume()
            s.run("CALL db.awaitIndexes(300)").consume()

    def _query(self, cypher: LiteralString, **params: Any) -> list[Row]:
        """A read in one auto-commit transaction: RUN and PULL in one round trip, where the driver's
        managed transaction (`execute_query`) adds BEGIN and COMMIT messages and the commit's own
        round trip. The driver's query bookmarks are kept, so reads still see writes made through
        `execute_query` (e.g. `advance_progress`) on a cluster; a retryable failure is tried once more."""
        try:
            return self._read(cypher, params)
        except (Neo4jError, DriverError) as exc:
            if not exc.is_retryable():
                raise
        return self._read(cypher, params)

    def _read(self, cypher: LiteralString, params: dict[str, Any]) -> list[Row]:
        with self._driver.session(
            database=self.config.database,
            default_access_mode=neo4j.READ_ACCESS,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
        ) as s:
            return [r.data() for r in s.run(cypher, params)]

    # -- writes ---------------------------------------------------------------------------------

    def apply(self, events: Sequence[RunEvent], *, known_at: Sequence[datetime] | None = None) -> None:
        """Project the events in one transaction (retried by the driver on transient errors)."""
        self.apply_prepared(self.prepare(events, known_at=known_at))

    def prepare(
        self, events: Sequence[RunEvent], *, known_at: Sequence[datetime] | None = None
    ) -> dict[str, list[Row]]:
        return {**rows_for(events, known_at), **neo4j_facets.rows_for(events)}

    @guarded("write")
    def apply_prepared(self, batch: dict[str, list[Row]], *, offsets: progress.Offsets | None = None) -> None:
        """`apply` for rows already folded by `prepare` (so a caller can fold the next batch meanwhile).

        One statement (`BATCH`) in one transaction, unless the batch holds more than `MAX_ROWS_PER_TX`
        runs, dataset versions or facets: then `BATCH` runs once per chunk of that size of each of its
        lists, in its order, one transaction each.
        A failure part-way leaves some chunks applied; applying the batch again completes it (writes
        are idempotent), which is what every caller does after an error. `offsets` (the Kafka
        projector's, past the batch) advance its progress last, in the batch's (last) transaction: it
        is never ahead of the data, and costs no commit of its own.
        """
        if not batch["runs"]:
            if offsets:
                self.advance_progress(offsets)
            return
        lists: dict[str, list[Any]] = {
            **{name: batch[name] for name, _ in (*q.WRITES, *neo4j_facets.WRITES)},
            "ids": [r["run_id"] for r in batch["runs"]],
            "progress": progress.rows(offsets) if offsets else [],
        }
        if max(len(batch["runs"]), len(batch["dataset_versions"]), len(batch["facets"])) <= MAX_ROWS_PER_TX:
            transactions = [lists]
        else:  # each list in chunks, in BATCH's order, one transaction each
            nothing = _no_lists()
            transactions = [
                {**nothing, name: rows[i : i + MAX_ROWS_PER_TX]}
                for name, rows in lists.items()
                for i in range(0, len(rows), MAX_ROWS_PER_TX)
            ]

        def work(tx: neo4j.ManagedTransaction, params: dict[str, list[Any]]) -> None:
            try:
                foreign = tx.run(BATCH, batch=params).single(strict=True)["foreign"]
            except Neo4jError as exc:
                if exc.code == TOO_LARGE:
                    raise TooLarge(exc) from exc
                raise
            if foreign:  # raised inside: the transaction rolls back, not retried
                first = foreign[0]
                raise Inadmissible(
                    "event refused by the graph: " + owner_conflict(first["run_id"], first["owner"], first["namespace"])
                )

        with self._session() as s:
            for params in transactions:
                s.execute_write(work, params)

    @guarded("read")
    def run_owners(self, run_ids: Sequence[str]) -> dict[str, str]:
        rows = self._query(
            "UNWIND $ids AS id MATCH (r:Run {run_id: id}) RETURN r.run_id AS run_id, r.namespace AS namespace",
            ids=sorted(set(run_ids)),
        )
        return {r["run_id"]: r["namespace"] for r in rows}

    @guarded("write progress")
    def advance_progress(self, offsets: progress.Offsets) -> None:
        """The Kafka projector's position per partition, once a batch is in (see graph/progress.py)."""
        self._driver.execute_query(
            progress.ADVANCE,
            {"batch": {"progress": progress.rows(offsets)}},
            database_=self.config.database,
            routing_=neo4j.RoutingControl.WRITE,
        )

    @guarded("read progress")
    def kafka_progress(self) -> dict[tuple[str, int], int]:
        """Each partition's next offset to project (absent: nothing projected yet)."""
        return {(r["topic"], int(r["partition"])): int(r["next"]) for r in self._query(progress.READ)}

    @guarded("reset")
    def reset(self) -> None:
        """Delete every node and edge (in batches); constraints and indexes stay."""
        with self._session() as s:
            for stmt in (q.RESET_EDGES, q.RESET_NODES):
                while s.run(stmt, batch=RESET_BATCH).single(strict=True)["deleted"]:
                    pass

    def close(self) -> None:
        self._stop_warming.set()
        if self.warming is not None:
            self.warming.join(timeout=1.0)  # a statement still planning fails with the driver's close
        self._driver.close()

    def warm_writes(self) -> None:
        """Plan `BATCH` before the first batch, by running it on empty lists (it writes nothing).

        Planning it costs a fresh server seconds of CPU (docs/BENCHMARKS.md, round 13), which the
        first batch, and every read waiting for it, would otherwise pay; the plan is the server's,
        shared by every replica and kept whatever the lists' sizes (one map parameter)."""
        nothing = _no_lists()
        with self._session() as s:
            s.execute_write(lambda tx: tx.run(BATCH, batch=nothing).consume())

    # -- warming the walk's plans -----------------------------------------------------------------

    @staticmethod
    def _walk_statements() -> Iterator[tuple[LiteralString, dict[str, Any]]]:
        """Every statement a lineage walk may run, with parameters of the types the walk passes (Neo4j
        caches a plan per text and parameter types) that match no node: the start statements, then
        the hops as of now (the API's default), then the as-of ones; a statement's longest chain first."""
        at = _at(NOW)
        for kind, cypher in q.START.items():
            keys = {"id": WARM_NOTHING} if kind in ("run", "datasetVersion") else {"ns": "", "name": "", "cap": 2}
            yield cypher, {**keys, **at}
        ask = {"ids": [WARM_NOTHING], "cap": 2, **at}
        for now in (True, False):
            for kind in ("dsv", "run"):
                for upstream in (True, False):
                    for hops in range(LOOKAHEAD, 1, -1):
                        yield q.CHAIN[(kind, upstream, now, hops)], {**ask, "far_max": 1, "budget": HOP_HITS}
                    yield q.HOP[(kind, upstream, now)], ask

    def warm_walks(self, stop: threading.Event | None = None) -> int:
        """Plan every statement of a lineage walk by running it once on nothing; how many ran.

        A fresh Neo4j plans a walk's statements inside its first walk, and so inside the walk's time
        budget: on this machine ~0.5-4 s each (the first a server plans ~10 s), so the first
        depth-10 walk after a start came back cut by `time` after a hop (docs/BENCHMARKS.md, rounds 10
        and 11). Plans live in the server's cache, for every client. Run, not `EXPLAIN`ed: an
        `EXPLAIN` caches the plan but the first run still paid ~0.5 s a statement to build it."""
        done = 0
        with self._session() as s:
            for cypher, params in self._walk_statements():
                if stop is not None and stop.is_set():
                    break
                s.run(cypher, params).consume()
                done += 1
        return done

    def _warm_quietly(self) -> None:
        """`warm_walks` in the background: a failure leaves the plans to the walks, as without it."""
        try:
            t0 = time.perf_counter()
            done = self.warm_walks(self._stop_warming)
            log.info("planned %d lineage walk statements in %.1f s", done, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - best effort: the walks plan what is left themselves
            log.info("warming the lineage walk's statements stopped: %s", exc)

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
            completeness=self.completeness.judge(
                state=r["state"],
                has_start=bool(r.get("has_start")),
                seqs=r.get("seqs") or [],
                declared=r.get("declared_events"),
                last_event_at=r.get("last_event_at"),
                job=r["job_name"],
            ),
        )

    @guarded("read")
    def run(self, run_id: str) -> RunView | None:
        rows = self._query(q.PLAN_ONCE + "MATCH (r:Run {run_id: $run_id})" + q.RUN_DETAIL, run_id=run_id)
        return self._run_view(rows[0], detail=True) if rows else None

    @guarded("read")
    def runs(self, where: RunFilter | None = None, *, first: int = 50, after: str | None = None) -> list[RunView]:
        return runs_in_state(self._runs, where or RunFilter(), first, after)

    def _runs(
        self, where: RunFilter, states: tuple[RunState, ...] | None, first: int, after: str | None
    ) -> list[RunView]:
        anchor = None
        if after is not None:
            found = self._query("MATCH (a:Run {run_id: $after}) RETURN a.started_at AS started_at", after=after)
            if not found:
                return []  # as in SQLite: an unknown `after` run yields an empty page
            anchor = (after, found[0]["started_at"])
        cypher, params = self.runs_query(where, states, first, anchor)
        return [self._run_view(rec, detail=False) for rec in self._query(cypher, **params)]

    @staticmethod
    def runs_query(
        where: RunFilter, states: tuple[RunState, ...] | None, first: int, anchor: tuple[str, str] | None
    ) -> tuple[LiteralString, dict[str, Any]]:
        """The Cypher of a page of runs after `anchor` (run id, started_at) and its parameters (tests
        read its plan). Param and metric conditions collect run ids from their (key, value) index first."""
        # Always true (started_at is set on every run), but it lets the planner read runs in
        # started_at order from the range index instead of sorting them all.
        clauses: list[LiteralString] = ["r.started_at IS NOT NULL"]
        params: dict[str, Any] = {"first": max(0, first)}
        for clause, name, value in (
            ("r.namespace = $project", "project", where.project),
            ("r.job_name = $job", "job", where.job),
            ("r.state IN $states", "states", [s.value for s in states] if states else None),
            ("r.started_at >= $since", "since", where.since.isoformat() if where.since else None),
            ("r.started_at < $until", "until", where.until.isoformat() if where.until else None),
        ):
            if value is not None:
                clauses.append(clause)
                params[name] = value
        cypher: LiteralString = ""
        for i, cond in enumerate(where.conditions):
            if cond.kind in ("started", "ended"):
                clauses.append(f"r.{cond.kind}_at {q.CYPHER_OP[cond.op]} $v{i}")
            else:
                kind = (
                    cond.kind
                    if cond.kind in ("metric", "label")
                    else "param_num"
                    if isinstance(cond.value, float)
                    else "param_str"
                )
                cypher += q.run_ids_where(kind, cond.op, i)
                clauses.append(f"r.run_id IN c{i}")
                params[f"k{i}"] = cond.key
            params[f"v{i}"] = cond.value
        cypher += "MATCH (r:Run)"
        if anchor is not None:
            # The first conjunct is a range the started_at index answers; the second breaks ties.
            clauses.append("r.started_at <= $after_started")
            clauses.append("(r.started_at < $after_started OR r.run_id < $after)")
            params["after"], params["after_started"] = anchor
        cypher += " WHERE " + " AND ".join(clauses)
        cypher += " WITH r ORDER BY r.started_at DESC, r.run_id DESC LIMIT $first" + q.RUN_VIEW
        return cypher, params

    @guarded("read")
    def metric_history(self, run_id: str, keys: Sequence[str] | None = None, limit: int = 10_000) -> list[MetricSeries]:
        limit = max(0, limit)
        rows = self._query(q.METRIC_HISTORY, run_id=run_id, keys=None if keys is None else list(keys), cap=limit + 1)
        return metric_series(((r["key"], *p) for r in rows for p in r["points"]), limit)

    @guarded("read")
    def log_chunks(self, run_id: str) -> list[LogChunkView]:
        return [LogChunkView(**r) for r in self._query(q.LOG_CHUNKS, run_id=run_id)]

    @guarded("read")
    def children(self, run_id: str, first: int = 1000) -> list[RunView]:
        cypher: LiteralString = (
            "MATCH (p:Run {run_id: $run_id}) MATCH (r:Run {parent_run_id: $run_id}) WHERE r.namespace = p.namespace"
            " WITH r ORDER BY r.started_at, r.run_id LIMIT $first" + q.RUN_VIEW
        )
        return [self._run_view(rec, detail=False) for rec in self._query(cypher, run_id=run_id, first=max(0, first))]

    @guarded("read")
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

    @guarded("read")
    def dataset(self, namespace: str, name: str, at: AsOf = NOW) -> DatasetView | None:
        rows = self._query(
            "MATCH (s:Dataset {namespace: $ns, name: $name})"
            " RETURN s.kind AS kind,"
            " COLLECT { MATCH (s)-[:HAS_VERSION]->(d:DatasetVersion) WHERE "
            + q.EXISTS
            + " RETURN d {.*} } AS versions",
            ns=namespace,
            name=name,
            **_at(at),
        )
        if not rows:
            return None
        versions = sorted(rows[0]["versions"], key=lambda v: (v["created_at"], v["version"]))
        return DatasetView(
            namespace=namespace,
            name=name,
            kind=rows[0]["kind"],
            versions=existing([dataset_version_view(v) for v in versions]),
        )

    @guarded("read")
    def dataset_names(self, namespace: str, kind: str | None = None, first: int = 100) -> list[str]:
        rows = self._query(
            "MATCH (s:Dataset) WHERE s.namespace = $ns AND s.name IS NOT NULL AND ($kind IS NULL OR s.kind = $kind)"
            " RETURN s.name AS name ORDER BY name LIMIT $first",
            ns=namespace,
            kind=kind,
            first=max(0, first),
        )
        return [r["name"] for r in rows]

    @guarded("read")
    def dataset_version(self, namespace: str, name: str, version: str) -> DatasetVersionView | None:
        rows = self._query(
            "MATCH (v:DatasetVersion {node_id: $id}) RETURN v {.*} AS v",
            id=dataset_node_id(namespace, name, version),
        )
        return dataset_version_view(rows[0]["v"]) if rows else None

    def latest_version(self, namespace: str, name: str) -> DatasetVersionView | None:
        found = self.dataset(namespace, name)
        return found.versions[-1] if found and found.versions else None

    @guarded("read")
    def produced_by(self, namespace: str, name: str, version: str | None = None, at: AsOf = NOW) -> RunView | None:
        if version is not None:
            rows = self._query(
                "MATCH (r:Run)-[w:WROTE]->(:DatasetVersion {node_id: $id}) WHERE "
                + q.seen("w")
                + " AND "
                + q.WRITTEN
                + " WITH DISTINCT r ORDER BY r.started_at, r.run_id LIMIT 1"
                + q.RUN_DETAIL,
                id=dataset_node_id(namespace, name, version),
                **_at(at),
            )
        else:
            rows = self._query(
                "MATCH (r:Run)-[w:WROTE]->(:DatasetVersion {namespace: $ns, name: $name}) WHERE "
                + q.seen("w")
                + " AND "
                + q.WRITTEN
                + " WITH DISTINCT r ORDER BY r.ended_at DESC, r.run_id DESC LIMIT 1"
                + q.RUN_DETAIL,
                ns=namespace,
                name=name,
                **_at(at),
            )
        return self._run_view(rows[0], detail=True) if rows else None

    @guarded("read")
    def incomplete_runs(self, project: str | None = None, first: int = 50) -> list[RunView]:
        rows = self._query(
            "MATCH (r:Run) WHERE ($project IS NULL OR r.namespace = $project)"
            " AND ((coalesce(r.has_start, 0) = 0 AND NOT r.job_name IN $one_event)"
            " OR size(coalesce(r.seqs, [])) < coalesce(last(r.seqs), 0)"
            " OR size(coalesce(r.seqs, [])) < coalesce(r.declared_events, 0)"
            " OR (NOT r.state IN $terminal AND r.last_event_at < $cutoff))"
            " WITH r ORDER BY r.started_at DESC, r.run_id DESC LIMIT $first" + q.RUN_DETAIL,
            project=project,
            terminal=list(TERMINAL),
            one_event=list(ONE_EVENT_JOBS),
            cutoff=self.completeness.cutoff(),
            first=max(0, first),
        )
        return [self._run_view(rec, detail=True) for rec in rows]

    @guarded("read")
    def search(self, text: str, kinds: Sequence[str] = ("job", "run", "dataset"), limit: int = 20) -> list[str]:
        needle = search_needle(text)  # CONTAINS has no wildcards: nothing to escape
        found: list[str] = []
        if "job" in kinds:
            found += [
                job_node_id(r["ns"], r["name"])
                for r in self._query(
                    "MATCH (j:Job) WHERE toLower(j.name) CONTAINS $t"
                    " RETURN j.namespace AS ns, j.name AS name ORDER BY ns, name LIMIT $limit",
                    t=needle,
                    limit=limit,
                )
            ]
        if "run" in kinds:
            found += [
                run_node_id(r["id"])
                for r in self._query(
                    "MATCH (r:Run) WHERE toLower(r.job_name) CONTAINS $t OR toLower(r.run_id) CONTAINS $t"
                    " RETURN r.run_id AS id ORDER BY r.started_at DESC, r.run_id DESC LIMIT $limit",
                    t=needle,
                    limit=limit,
                )
            ]
        if "dataset" in kinds:
            found += [
                dataset_node_id(r["ns"], r["name"])
                for r in self._query(
                    "MATCH (d:Dataset) WHERE toLower(d.name) CONTAINS $t"
                    " RETURN d.namespace AS ns, d.name AS name ORDER BY ns, name LIMIT $limit",
                    t=needle,
                    limit=limit,
                )
            ]
        return found[:limit]

    @guarded("read")
    def run_ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        return [r["id"] for r in self._query(neo4j_facets.RUN_PREFIX, prefix=prefix, limit=limit)]

    @guarded("read")
    def facets(self, owners: Sequence[str]) -> dict[str, Facets]:
        rows = self._query(neo4j_facets.FACETS, owners=sorted(set(owners)))
        return facet_views((r["owner"], r["name"], r["part"], r["value"]) for r in rows)

    @guarded("lineage query")
    def column_lineage(
        self, dataset: NodeId, field: str, direction: Direction, depth: int = 5, fan_out: int = 100
    ) -> ColumnLineageGraph:
        root = column_root(dataset, field)
        ns, name = dataset.key[:2]
        known = self._query(neo4j_facets.COLUMN_KNOWN, ns=ns, name=name, dataset=root[0], field=root[1])

        def hop(frontier: list[ColumnKey], upstream: bool, cap: int) -> dict[ColumnKey, list[Neighbour]]:
            rows = self._query(neo4j_facets.COLUMN_HOP[upstream], keys=[list(k) for k in frontier], cap=cap)
            return {(r["dataset"], r["field"]): [tuple(h) for h in r["hits"]] for r in rows if r["hits"]}

        return column_walk(root, bool(known[0]["known"]), direction, depth, fan_out, self.bounds, hop)

    # -- lineage --------------------------------------------------------------------------------

    @guarded("lineage query")
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
        upstream = direction == Direction.UPSTREAM
        cuts = Cuts()
        params = _at(at, include_failed=include_failed)
        now = at.now
        with self._session() as s:
            tx = s.begin_transaction()
            try:
                hops = _Hops(tx, (upstream, now), fan_out, params, edge_hops(node, depth))
                start = self._start(tx, node, fan_out, cuts, params, hops.element_ids)
                return bounded_walk(node, direction, depth, self.bounds, start, hops.expand, cuts)
            finally:
                tx.close()

    @staticmethod
    def _start(
        tx: neo4j.Transaction,
        node: NodeId,
        fan_out: int,
        cuts: Cuts,
        params: dict[str, Any],
        element_ids: dict[tuple[str, str], str],
    ) -> dict[str, NodeRow]:
        """The walk's start nodes by id; their element ids into `element_ids` (`_Hops`)."""
        cypher = q.START[node.kind]
        if node.kind == "run":
            rows = list(tx.run(cypher, id=node.key[0], **params))
        elif node.kind == "datasetVersion":
            rows = list(tx.run(cypher, id=dataset_node_id(*node.key), **params))
        else:
            ns, name = node.key
            rows = list(tx.run(cypher, ns=ns, name=name, cap=fan_out + 1, **params))
            if len(rows) > fan_out:
                cuts.add("fanOut", f"fan-out limit of {fan_out} cut the start node {node}")
                rows = rows[:fan_out]
        runs = node.kind in ("run", "job")
        kind = "run" if runs else "dsv"
        element_ids.update(((kind, r["n"][0]), r["e"]) for r in rows)
        return {(run_node_id(r["n"][0]) if runs else r["n"][0]): (runs, r["n"]) for r in rows}

    # -- canonical dump -------------------------------------------------------------------------

    @guarded("dump")
    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table, cypher in {**q.DUMP, **neo4j_facets.DUMP}.items():
            rows = self._query(cypher)
            out[table] = sorted(rows, key=lambda d: json.dumps(d, sort_keys=True, default=str))
        return out

    # -- operations -------------------------------------------------------------------------------

    @guarded("count")
    def count(self) -> dict[str, int]:
        """Nodes per label, from Neo4j's count store (constant time; for progress and benchmarks)."""
        return {label: int(self._query(cypher)[0]["n"]) for label, cypher in q.COUNTS.items()}
