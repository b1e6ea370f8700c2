"""Real third-party OpenLineage producers through `POST /api/v1/lineage`, on both stores.

The events are recorded by the integrations themselves (tests/producers/record.py), each run twice:
`dbt-ol build` of a dbt-duckdb project and `airflow dags test` of a DAG whose file I/O Airflow's
OpenLineage provider reports. They are posted in emit order, the first invocation of each producer
before the second, to a real API: embedded (the SQLite log and graph) and Neo4j (each accepted event
applied to Neo4j with its ingestion time, as the projector does). The answers are what a careful
engineer reads from the same events: producers, a version per write, failed runs and what they only
attempted, column lineage, and the world as of the first invocation.

dbt (tests/producers/dbt_project): raw_customers, raw_orders (tables the run starts from) ->
stg_customers, stg_orders -> customer_totals; broken_totals fails (declares an output it never
writes); a data test on customer_totals fails.
Airflow (tests/producers/airflow_project): orders.csv -> clean -> clean_orders.csv -> totals ->
customer_totals.csv -> report, which writes report.txt and then fails.

Every answer is read through GraphQL, as a client would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.model import RunEvent
from provgraph.events.settings import Settings
from provgraph.events.transport.base import Transport
from provgraph.graph.contract import DEFAULT_DEPTH
from provgraph.graph.factory import StoreHandle, open_store
from provgraph.graph.projection import minted_version
from tests.helpers import graphql_data
from tests.producers.record import Events, airflow_runs, airflow_workdir, dbt_runs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a cold recording takes minutes on a busy machine

DUCKDB = "duckdb://shop.duckdb"
MODEL_JOB = "shop.main.shop.{}.build.run"
TEST_JOB = "shop.main.shop.{}.build.test"
DAG = "shop_daily"


def table(name: str) -> str:
    return f"shop.main.{name}"


def data_file(name: str) -> str:
    return str(airflow_workdir() / "data" / name)


class GraphTransport(Transport):
    """What the projector does with an accepted event, without Kafka in between: apply it to the
    store, with the time it arrived as its ingestion time."""

    kind = "graph"

    def __init__(self, handle: StoreHandle) -> None:
        self.handle = handle

    def emit(self, event: RunEvent) -> None:
        self.handle.store.apply([event], known_at=[datetime.now(UTC)])


def event_times(events: Events) -> list[datetime]:
    return [datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00")) for e in events]


@dataclass
class Ingested:
    url: str
    token: str
    dbt: list[Events]
    airflow: list[Events]
    known_between: datetime
    """Ingestion time after every first invocation was posted and before any second one."""

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql_data(self.url, self.token, query, **variables)

    def run_id(self, producer: str, run: int, job: str) -> str:
        """The run id of `job` in invocation `run` (0 or 1) of `producer`, from the recorded events."""
        events = self.dbt if producer == "dbt" else self.airflow
        ids = {e["run"]["runId"] for e in events[run] if e["job"]["name"] == job}
        assert len(ids) == 1, (job, ids)
        return str(ids.pop())

    def as_of_first(self, producer: str) -> datetime:
        """An event time after the producer's first invocation and before its second."""
        events = self.dbt if producer == "dbt" else self.airflow
        first, second = max(event_times(events[0])), min(event_times(events[1]))
        assert first < second
        return first


@pytest.fixture(scope="session")
def dbt() -> list[Events]:
    runs = dbt_runs()
    assert [len(r) for r in runs] == [14, 14], "7 runs of 2 events per dbt invocation"
    return runs


@pytest.fixture(scope="session")
def airflow() -> list[Events]:
    runs = airflow_runs()
    assert [len(r) for r in runs] == [7, 7], "3 tasks of 2 events and the DAG run's FAIL, per DAG run"
    return runs


def post_all(url: str, token: str, events: Events) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for event in events:
            response = client.post("/api/v1/lineage", content=json.dumps(event).encode())
            assert response.status_code == 201, response.text


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)], ids=["sqlite", "neo4j"]
)
def ingested(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dbt: list[Events], airflow: list[Events]
) -> Iterator[Ingested]:
    home: Path = tmp_path_factory.mktemp(f"producers-{request.param}")
    transport: Transport | None = None
    handle: StoreHandle | None = None
    if request.param == "neo4j":
        settings = Settings(home=home, store="neo4j", neo4j_uri=request.getfixturevalue("neo4j"))
        handle = open_store(settings)
        handle.store.reset()
        transport = GraphTransport(handle)
    else:
        settings = Settings(home=home)
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["shop", "shop-airflow"], name="producers")[1]
    tokens.close()
    try:
        with ServerThread(create_app(settings, transport=transport)) as url:
            post_all(url, token, dbt[0] + airflow[0])
            time.sleep(0.01)
            known_between = datetime.now(UTC)
            time.sleep(0.01)
            post_all(url, token, dbt[1] + airflow[1])
            yield Ingested(url, token, dbt, airflow, known_between)
    finally:
        if handle is not None:
            handle.close()


RUN = "query($id: ID!) { run(id: $id) { runId state jobName parentRunId } }"


def test_every_run_of_both_invocations_is_in_the_graph(ingested: Ingested) -> None:
    for i in (0, 1):
        dbt_parent = ingested.run_id("dbt", i, "dbt-run-shop")
        dag_run = ingested.run_id("airflow", i, DAG)
        for producer, job, state, parent in (
            ("dbt", MODEL_JOB.format("stg_customers"), "COMPLETE", dbt_parent),
            ("dbt", MODEL_JOB.format("stg_orders"), "COMPLETE", dbt_parent),
            ("dbt", MODEL_JOB.format("customer_totals"), "COMPLETE", dbt_parent),
            ("dbt", MODEL_JOB.format("broken_totals"), "FAIL", dbt_parent),
            ("dbt", TEST_JOB.format("stg_customers"), "COMPLETE", dbt_parent),
            ("dbt", TEST_JOB.format("customer_totals"), "FAIL", dbt_parent),
            ("dbt", "dbt-run-shop", "FAIL", None),
            ("airflow", f"{DAG}.clean", "COMPLETE", dag_run),
            ("airflow", f"{DAG}.totals", "COMPLETE", dag_run),
            ("airflow", f"{DAG}.report", "FAIL", dag_run),
            ("airflow", DAG, "FAIL", None),
        ):
            run = ingested.query(RUN, id=ingested.run_id(producer, i, job))["run"]
            assert (run["jobName"], run["state"], run["parentRunId"]) == (job, state, parent)


# -- producers and a version per write ----------------------------------------------------------


PRODUCERS = """query($ns: String!, $n: String!, $v: String, $asOf: DateTime, $knownAt: DateTime) {
  producedBy(namespace: $ns, name: $n, version: $v, asOf: $asOf, knownAt: $knownAt) { runId }
  dataset(namespace: $ns, name: $n, asOf: $asOf, knownAt: $knownAt) { versions { version } } }"""


def producers(ingested: Ingested, namespace: str, name: str, **variables: Any) -> tuple[str | None, list[str]]:
    """(the producer's run id, the dataset's versions) as `producedBy` and `dataset` answer them."""
    data = ingested.query(PRODUCERS, ns=namespace, n=name, **variables)
    run, dataset = data["producedBy"], data["dataset"]
    return (run and run["runId"]), [v["version"] for v in dataset["versions"]] if dataset else []


WRITTEN = (
    ("dbt", DUCKDB, table("customer_totals"), MODEL_JOB.format("customer_totals")),
    ("dbt", DUCKDB, table("stg_orders"), MODEL_JOB.format("stg_orders")),
    ("airflow", "file", data_file("customer_totals.csv"), f"{DAG}.totals"),
    ("airflow", "file", data_file("clean_orders.csv"), f"{DAG}.clean"),
)


def test_the_producer_of_a_table_is_its_latest_successful_writer(ingested: Ingested) -> None:
    """No version facet from these producers: each COMPLETE write is a version of its own."""
    for producer, namespace, name, job in WRITTEN:
        first, second = (ingested.run_id(producer, i, job) for i in (0, 1))
        assert producers(ingested, namespace, name) == (second, [minted_version(first), minted_version(second)])
        assert producers(ingested, namespace, name, v=minted_version(first))[0] == first
    assert producers(ingested, DUCKDB, table("raw_orders")) == (None, ["unversioned"]), "read, never written"


# -- failed runs ---------------------------------------------------------------------------------


def test_failed_runs(ingested: Ingested) -> None:
    data = ingested.query(
        "query($p: String!) { runs(project: $p, state: FAIL, first: 100) { edges { node { runId jobName } } } }",
        p="shop",
    )["runs"]
    failed = sorted((e["node"]["jobName"], e["node"]["runId"]) for e in data["edges"])
    expected = sorted(
        (job, ingested.run_id("dbt", i, job))
        for i in (0, 1)
        for job in ("dbt-run-shop", MODEL_JOB.format("broken_totals"), TEST_JOB.format("customer_totals"))
    )
    assert failed == expected


def test_what_a_failed_run_only_attempted_has_no_producer(ingested: Ingested) -> None:
    for producer, namespace, name, job in (
        ("dbt", DUCKDB, table("broken_totals"), MODEL_JOB.format("broken_totals")),  # declared at START only
        ("airflow", "file", data_file("report.txt"), f"{DAG}.report"),  # in the FAIL event itself
    ):
        for i in (0, 1):
            run_id = ingested.run_id(producer, i, job)
            run = ingested.query(
                "query($id: ID!) { run(id: $id) { state outputs { namespace name version attempted } } }", id=run_id
            )["run"]
            assert run == {
                "state": "FAIL",
                "outputs": [
                    {"namespace": namespace, "name": name, "version": minted_version(run_id), "attempted": True}
                ],
            }
        assert producers(ingested, namespace, name) == (None, []), "only attempted: no producer, no version"


LINEAGE = """query($n: ID!, $dir: Direction!, $failed: Boolean! = false, $asOf: DateTime, $knownAt: DateTime) {
  lineage(node: $n, direction: $dir, includeFailed: $failed, asOf: $asOf, knownAt: $knownAt)
  { depth nodes { id } edges { source target kind } partial partialReasons } }"""


def walk(ingested: Ingested, node: str, direction: str, **variables: Any) -> tuple[set[str], list[dict[str, str]]]:
    """(node ids, edges) of a walk at the API's default depth, which must not have been cut."""
    data = ingested.query(LINEAGE, n=node, dir=direction, **variables)["lineage"]
    assert (data["depth"], data["partial"], data["partialReasons"]) == (DEFAULT_DEPTH, False, [])
    return {n["id"] for n in data["nodes"]}, data["edges"]


def test_walks_leave_attempted_outputs_out_unless_asked(ingested: Ingested) -> None:
    stg_run = ingested.run_id("dbt", 1, MODEL_JOB.format("stg_orders"))
    stg_orders = f"dataset:{DUCKDB}:{table('stg_orders')}@{minted_version(stg_run)}"
    broken_run = ingested.run_id("dbt", 1, MODEL_JOB.format("broken_totals"))
    broken = f"dataset:{DUCKDB}:{table('broken_totals')}@{minted_version(broken_run)}"
    nodes, edges = walk(ingested, stg_orders, "DOWNSTREAM")
    assert f"run:{broken_run}" in nodes, "the failed run did read stg_orders"
    assert broken not in nodes and "ATTEMPTED" not in {e["kind"] for e in edges}
    with_failed, failed_edges = walk(ingested, stg_orders, "DOWNSTREAM", failed=True)
    assert with_failed == nodes | {broken}
    assert [e for e in failed_edges if e["kind"] == "ATTEMPTED"] == [
        {"source": f"run:{broken_run}", "target": broken, "kind": "ATTEMPTED"}
    ]


def test_run_errors_and_data_quality_through_graphql(ingested: Ingested) -> None:
    report = ingested.query(
        "query($id: ID!) { run(id: $id) { error { message programmingLanguage stackTrace } } }",
        id=ingested.run_id("airflow", 1, f"{DAG}.report"),
    )["run"]["error"]
    assert (report["message"], report["programmingLanguage"]) == ("report template missing", "python")
    assert report["stackTrace"].rstrip().endswith("ValueError: report template missing")
    quality = "query($id: ID!) { run(id: $id) { dataQuality { dataset assertion column success } } }"
    totals = f"dataset:{DUCKDB}:{table('customer_totals')}"
    assert ingested.query(quality, id=ingested.run_id("dbt", 1, TEST_JOB.format("customer_totals")))["run"] == {
        "dataQuality": [{"dataset": totals, "assertion": "accepted_values", "column": "name", "success": False}]
    }
    customers = f"dataset:{DUCKDB}:{table('stg_customers')}"
    checks = ingested.query(quality, id=ingested.run_id("dbt", 0, TEST_JOB.format("stg_customers")))["run"]
    assert sorted(checks["dataQuality"], key=lambda a: a["assertion"]) == [
        {"dataset": customers, "assertion": "not_null", "column": "customer_id", "success": True},
        {"dataset": customers, "assertion": "unique", "column": "customer_id", "success": True},
    ]


def test_job_facets_through_graphql(ingested: Ingested) -> None:
    job = MODEL_JOB.format("customer_totals")
    sql = next(e for e in ingested.dbt[1] if e["job"]["name"] == job)["job"]["facets"]["sql"]["query"]
    data = ingested.query(
        'query($name: String!) { job(namespace: "shop", name: $name) {'
        " sql sqlDialect jobType { integration jobType processingType } } }",
        name=job,
    )["job"]
    assert data == {
        "sql": sql,
        "sqlDialect": "duckdb",
        "jobType": {"integration": "DBT", "jobType": "MODEL", "processingType": "BATCH"},
    }
    assert "sum(o.amount) as total_amount" in sql


# -- column lineage ------------------------------------------------------------------------------


def column(name: str, field: str) -> str:
    return f"column:{DUCKDB}:{table(name)}#{field}"


COLUMNS = """query($d: ID!, $f: String!, $dir: Direction!) { columnLineage(dataset: $d, field: $f, direction: $dir)
  { root nodes { id hop } edges { from to } partial partialReasons } }"""


def test_column_lineage_through_graphql(ingested: Ingested) -> None:
    up = ingested.query(COLUMNS, d=f"dataset:{DUCKDB}:{table('customer_totals')}", f="total_amount", dir="UPSTREAM")
    assert up["columnLineage"] == {
        "root": column("customer_totals", "total_amount"),
        "nodes": [
            {"id": column("customer_totals", "total_amount"), "hop": 0},
            {"id": column("stg_orders", "amount"), "hop": 1},
            {"id": column("raw_orders", "amount"), "hop": 2},
        ],
        "edges": [
            {"from": column("raw_orders", "amount"), "to": column("stg_orders", "amount")},
            {"from": column("stg_orders", "amount"), "to": column("customer_totals", "total_amount")},
        ],
        "partial": False,
        "partialReasons": [],
    }
    down = ingested.query(COLUMNS, d=f"dataset:{DUCKDB}:{table('raw_customers')}", f="id", dir="DOWNSTREAM")
    assert [n["id"] for n in down["columnLineage"]["nodes"]] == [
        column("raw_customers", "id"),
        column("stg_customers", "customer_id"),
        column("customer_totals", "customer_id"),
    ]


# -- as of ---------------------------------------------------------------------------------------


def test_as_of_the_first_invocation(ingested: Ingested) -> None:
    """By event time (asOf) and by ingestion time (knownAt), the second invocation had not happened."""
    for producer, namespace, name, job in WRITTEN:
        first = ingested.run_id(producer, 0, job)
        for at in (
            {"asOf": ingested.as_of_first(producer).isoformat()},
            {"knownAt": ingested.known_between.isoformat()},
        ):
            assert producers(ingested, namespace, name, **at) == (first, [minted_version(first)]), at


MODELS = ("customer_totals", "stg_customers", "stg_orders")
FROM_ORDERS = ("stg_orders", "customer_totals")


def test_upstream_of_a_two_level_model_reaches_the_raw_tables(ingested: Ingested) -> None:
    """At the API's default depth, not partial, and each version's lineage is its own invocation's."""
    for i in (0, 1):
        runs = {name: ingested.run_id("dbt", i, MODEL_JOB.format(name)) for name in MODELS}
        version = {name: f"dataset:{DUCKDB}:{table(name)}@{minted_version(runs[name])}" for name in MODELS}
        assert walk(ingested, version["customer_totals"], "UPSTREAM")[0] == {
            *version.values(),
            *(f"run:{run}" for run in runs.values()),
            f"dataset:{DUCKDB}:{table('raw_customers')}@unversioned",
            f"dataset:{DUCKDB}:{table('raw_orders')}@unversioned",
        }


def test_downstream_of_a_raw_table_as_of_the_first_invocation(ingested: Ingested) -> None:
    """Now: what both invocations made from raw_orders; as of the first (event or ingestion time): its part only."""
    raw = f"dataset:{DUCKDB}:{table('raw_orders')}@unversioned"

    def made(i: int) -> set[str]:
        writers = {m: ingested.run_id("dbt", i, MODEL_JOB.format(m)) for m in FROM_ORDERS}
        readers = [
            ingested.run_id("dbt", i, j)
            for j in (MODEL_JOB.format("broken_totals"), TEST_JOB.format("customer_totals"))
        ]
        return {
            *(f"run:{r}" for r in (*writers.values(), *readers)),
            *(f"dataset:{DUCKDB}:{table(m)}@{minted_version(r)}" for m, r in writers.items()),
        }

    assert walk(ingested, raw, "DOWNSTREAM")[0] == {raw} | made(0) | made(1)
    for at in ({"asOf": ingested.as_of_first("dbt").isoformat()}, {"knownAt": ingested.known_between.isoformat()}):
        assert walk(ingested, raw, "DOWNSTREAM", **at)[0] == {raw} | made(0), at
