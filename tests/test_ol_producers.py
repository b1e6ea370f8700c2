"""Real third-party OpenLineage producers through `POST /api/v1/lineage`, on both stores.

The events are recorded by the integrations themselves (tests/producers/record.py: `dbt-ol build`
of a small dbt project on duckdb, run twice), then posted in emit order to a real API: embedded
(the SQLite log and graph) and Neo4j (each accepted event applied to Neo4j, as the projector does).
The answers are what a careful engineer reads from the same events.

The dbt project (tests/producers/dbt_project): raw_customers, raw_orders (tables the run starts
from) -> stg_customers, stg_orders -> customer_totals; broken_totals (a model that fails, so it
declares an output it never writes); a failing test on customer_totals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
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
from provgraph.graph.factory import StoreHandle, open_store
from tests.helpers import graphql_data
from tests.producers.record import Events, dbt_runs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a cold recording takes minutes on a busy machine

DUCKDB = "duckdb://shop.duckdb"
MODEL_JOB = "shop.main.shop.{}.build.run"
TEST_JOB = "shop.main.shop.{}.build.test"


class GraphTransport(Transport):
    """What the projector does with an accepted event, without Kafka in between: apply it to the store."""

    kind = "graph"

    def __init__(self, handle: StoreHandle) -> None:
        self.handle = handle

    def emit(self, event: RunEvent) -> None:
        self.handle.store.apply([event])


@dataclass
class Ingested:
    url: str
    token: str
    store: str
    dbt: list[Events]

    def query(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql_data(self.url, self.token, query, **variables)

    def run_id(self, run: int, job: str) -> str:
        """The run id of `job` in dbt invocation `run` (0 or 1), from the recorded events."""
        ids = {e["run"]["runId"] for e in self.dbt[run] if e["job"]["name"] == job}
        assert len(ids) == 1, (job, ids)
        return str(ids.pop())


@pytest.fixture(scope="session")
def dbt() -> list[Events]:
    runs = dbt_runs()
    assert [len(r) for r in runs] == [14, 14], "7 runs of 2 events per dbt invocation"
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
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dbt: list[Events]
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
    token = tokens.create(["shop"], name="producers")[1]
    tokens.close()
    try:
        with ServerThread(create_app(settings, transport=transport)) as url:
            for run in dbt:
                post_all(url, token, run)
            yield Ingested(url, token, request.param, dbt)
    finally:
        if handle is not None:
            handle.close()


RUN = "query($id: ID!) { run(id: $id) { runId state jobName parentRunId outputs { namespace name } } }"


def test_every_run_of_both_invocations_is_in_the_graph(ingested: Ingested) -> None:
    for i in (0, 1):
        parent = ingested.run_id(i, "dbt-run-shop")
        for job, state in (
            (MODEL_JOB.format("stg_customers"), "COMPLETE"),
            (MODEL_JOB.format("stg_orders"), "COMPLETE"),
            (MODEL_JOB.format("customer_totals"), "COMPLETE"),
            (MODEL_JOB.format("broken_totals"), "FAIL"),
            (TEST_JOB.format("stg_customers"), "COMPLETE"),
            (TEST_JOB.format("customer_totals"), "FAIL"),
        ):
            run = ingested.query(RUN, id=ingested.run_id(i, job))["run"]
            assert (run["jobName"], run["state"], run["parentRunId"]) == (job, state, parent)
        assert ingested.query(RUN, id=parent)["run"]["state"] == "FAIL"


def test_failed_runs(ingested: Ingested) -> None:
    data = ingested.query(
        'query { runs(project: "shop", state: FAIL, first: 100) { edges { node { runId jobName } } } }'
    )["runs"]
    failed = sorted((e["node"]["jobName"], e["node"]["runId"]) for e in data["edges"])
    expected = sorted(
        (job, ingested.run_id(i, job))
        for i in (0, 1)
        for job in ("dbt-run-shop", MODEL_JOB.format("broken_totals"), TEST_JOB.format("customer_totals"))
    )
    assert failed == expected
