"""Issue 11's lineage semantics through GraphQL, on both stores: attempted outputs, latest
producers, depth and partial reasons, asOf/knownAt, completeness and `incompleteRuns`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.model import EventType, RunEvent
from provgraph.events.settings import Settings
from provgraph.events.synthetic import run_events
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.projection import minted_version
from tests.contract.test_truth_contract import WH, _t, ol_run
from tests.test_api import Api, make_tokens


def seed() -> list[RunEvent]:
    dropped = run_events("gappy", namespace="dbt")
    return [
        *ol_run("day-1", "orders", inputs=["raw"], outputs=["orders"], start=0, end=10),
        *ol_run("day-2", "orders", inputs=["raw"], outputs=["orders"], start=30, end=40),
        *ol_run("bad-3", "orders", inputs=["raw"], outputs=["orders"], start=50, end=51, final=EventType.FAIL),
        dropped[1],  # its START never arrived
    ]


def _settings(store: str, home: Path, request: pytest.FixtureRequest) -> Settings:
    if store == "neo4j":
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        settings = Settings(home=home, store="neo4j", neo4j_uri=request.getfixturevalue("neo4j"))
        graph = Neo4jLineageStore.from_settings(settings)
        try:
            graph.reset()
            graph.apply(seed())
        finally:
            graph.close()
        return settings
    settings = Settings(home=home)
    log = SqliteEventLog(settings.events_db)
    log.append(seed())
    log.close()
    return settings


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)], ids=["sqlite", "neo4j"]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = _settings(request.param, tmp_path_factory.mktemp(f"truth-{request.param}"), request)
    tokens = make_tokens(settings)
    store = TokenStore(settings.tokens_db)
    try:
        tokens["dbt"] = store.create(["dbt"], name="dbt")[1]
    finally:
        store.close()
    with ServerThread(create_app(settings)) as url:
        yield Api(url, request.param, tokens)


def test_failed_outputs_are_attempted_and_never_the_producer(api: Api) -> None:
    run = api.data('{ run(id: "bad-3") { state outputs { version attempted } } }', token="dbt")["run"]
    assert run == {"state": "FAIL", "outputs": [{"version": minted_version("bad-3"), "attempted": True}]}
    latest = api.data(
        'query($ns: String!) { producedBy(namespace: $ns, name: "orders") { runId } }', ns=WH, token="dbt"
    )
    assert latest == {"producedBy": {"runId": "day-2"}}


def test_lineage_with_include_failed_shows_attempted_edges(api: Api) -> None:
    query = (
        'query($f: Boolean!) { lineage(node: "run:bad-3", direction: DOWNSTREAM, depth: 1, includeFailed: $f)'
        " { edges { kind target } partial partialReasons } }"
    )
    assert api.data(query, f=False, token="dbt")["lineage"] == {"edges": [], "partial": False, "partialReasons": []}
    seen = api.data(query, f=True, token="dbt")["lineage"]
    assert seen["edges"] == [{"kind": "ATTEMPTED", "target": f"dataset:{WH}:orders@{minted_version('bad-3')}"}]


def test_as_of_and_known_at_arguments(api: Api) -> None:
    query = (
        'query($ns: String!, $at: DateTime) { producedBy(namespace: $ns, name: "orders", asOf: $at) { runId }'
        ' dataset(namespace: $ns, name: "orders", asOf: $at) { versions { version } } }'
    )
    then = api.data(query, ns=WH, at=_t(35).isoformat(), token="dbt")
    assert then == {"producedBy": {"runId": "day-1"}, "dataset": {"versions": [{"version": minted_version("day-1")}]}}
    before = api.data(
        'query($ns: String!, $k: DateTime) { producedBy(namespace: $ns, name: "orders", knownAt: $k) { runId } }',
        ns=WH,
        k="2000-01-01T00:00:00Z",
        token="dbt",
    )
    assert before == {"producedBy": None}
    g = api.data(
        'query($at: DateTime) { lineage(node: "run:day-2", direction: DOWNSTREAM, depth: 1, asOf: $at)'
        " { edges { kind } } }",
        at=_t(35).isoformat(),
        token="dbt",
    )
    assert g == {"lineage": {"edges": []}}


def test_depth_partial_reasons(api: Api) -> None:
    query = (
        'query($d: Int!) { lineage(node: "run:day-2", direction: UPSTREAM, depth: $d)'
        " { depth partial partialReasons } }"
    )
    whole = {"depth": 1, "partial": False, "partialReasons": []}
    assert api.data(query, d=1, token="dbt")["lineage"] == whole
    cut = {"depth": 0, "partial": True, "partialReasons": ["depth"]}
    assert api.data(query, d=0, token="dbt")["lineage"] == cut


def test_completeness_and_incomplete_runs(api: Api) -> None:
    run = api.data('{ run(id: "gappy") { completeness { complete missing reasons } } }', token="dbt")["run"]
    assert run["completeness"] == {"complete": False, "missing": [1], "reasons": ["sequenceGap", "noStart"]}
    found = api.data('{ incompleteRuns(project: "dbt") { runId } }', token="dbt")["incompleteRuns"]
    assert found == [{"runId": "gappy"}]
    assert api.data('{ incompleteRuns(project: "dbt") { runId } }', token="other")["incompleteRuns"] == []
