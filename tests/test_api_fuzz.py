"""Fuzzing the live server: schemathesis generates GraphQL operations from the introspected schema
(valid ones, and invalid ones in negative mode) for every root field; no answer may be a 5xx, an
unexpected ("internal") error, a schema violation or slow. Then a property test throws random
lineage walks at the scope rules: no token ever sees another project's run.

At least 1,000 generated operations are sent in total (counted, asserted). The schema has no
Mutation root yet (see api/mutations.py); once `reproduce` lands, schemathesis generates
mutations too, with no change here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog
from tests.test_api import seed_events

POSITIVE_PER_OPERATION = 100
NEGATIVE_PER_OPERATION = 30
MIN_OPERATIONS = 1_000
REQUEST_TIMEOUT_S = 15.0  # a hang fails the request, and so the test
MODES = ((GenerationMode.POSITIVE, POSITIVE_PER_OPERATION), (GenerationMode.NEGATIVE, NEGATIVE_PER_OPERATION))


class Live:
    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url, self.tokens = url, tokens
        self.sent: Counter[str] = Counter()
        self.slowest = 0.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = Settings(home=tmp_path_factory.mktemp("fuzz"))
    log = SqliteEventLog(settings.events_db)
    log.append([*seed_events(), *workload(300, namespace="demo"), *workload(100, namespace="other")])
    log.close()
    store = TokenStore(settings.tokens_db)
    tokens = {"demo": store.create(["demo"])[1], "other": store.create(["other"])[1]}
    store.close()
    with ServerThread(create_app(settings)) as url:
        yield Live(url, tokens)


def unexpected(body: Any) -> list[Any]:
    errors = body.get("errors") or [] if isinstance(body, dict) else []
    return [e for e in errors if (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_in_1000_operations(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.tokens['demo']}"}
    schema = schemathesis.graphql.from_url(live.url + "/graphql", headers=headers, timeout=REQUEST_TIMEOUT_S)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert {op.label for op in operations} >= {
        "Query.run",
        "Query.runs",
        "Query.job",
        "Query.dataset",
        "Query.datasetVersion",
        "Query.producedBy",
        "Query.lineage",
        "Query.search",
    }
    for operation in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_PER_OPERATION),
            (GenerationMode.NEGATIVE, NEGATIVE_PER_OPERATION),
        ):

            @given(case=operation.as_strategy(mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                started = time.monotonic()
                response = case.call(headers=headers, timeout=REQUEST_TIMEOUT_S)
                live.slowest = max(live.slowest, time.monotonic() - started)
                live.sent[case.operation.label] += 1
                assert response.status_code < 500, response.text
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
                assert not unexpected(response.json()), response.text

            check()
    total = sum(live.sent.values())
    assert total >= MIN_OPERATIONS, live.sent
    assert live.slowest < REQUEST_TIMEOUT_S


LINEAGE = """query($n: ID!, $d: Direction!, $depth: Int!, $fan: Int!) {
  lineage(node: $n, direction: $d, depth: $depth, fanOutLimit: $fan) {
    root depth partial nodes { id kind hop props } edges { source target kind } } }"""

START_NODES = st.sampled_from(
    [
        "run:train-1",
        "run:other-1",
        "run:late-1",
        "run:demo-run-00000007",
        "run:other-run-00000003",
        "dataset:store://demo:clean",
        "dataset:store://other:model2",
        "dataset:file:/data/raw.csv",
        "dataset:file:/data/source3.csv",
        "dataset:file:/shared/x.csv",
        "job:demo:train",
        "job:other:train",
        "job:demo:job3",
        "job:other:job3",
    ]
) | st.text(max_size=30)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    node=START_NODES,
    direction=st.sampled_from(["UPSTREAM", "DOWNSTREAM"]),
    depth=st.integers(-3, 40),
    fan=st.integers(-3, 2000),
    project=st.sampled_from(["demo", "other"]),
)
def test_random_lineage_walks_never_show_another_projects_runs(
    live: Live, node: str, direction: str, depth: int, fan: int, project: str
) -> None:
    response = httpx.post(
        live.url + "/graphql",
        json={"query": LINEAGE, "variables": {"n": node, "d": direction, "depth": depth, "fan": fan}},
        headers={"Authorization": f"Bearer {live.tokens[project]}"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("errors"):
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes == {"BAD_USER_INPUT"}, body
        return
    graph = body["data"]["lineage"]
    ids = {n["id"] for n in graph["nodes"]}
    for n in graph["nodes"]:
        namespace = n["props"]["namespace"]
        if n["kind"] == "RUN":
            assert namespace == project, n
        elif namespace.startswith("store://"):
            assert namespace == f"store://{project}", n
        assert 0 <= n["hop"] <= 2 * graph["depth"]  # hops count edges; depth counts dataset hops
    assert any(n["hop"] == 0 for n in graph["nodes"])
    assert all(e["source"] in ids and e["target"] in ids for e in graph["edges"])
    assert 0 <= graph["depth"] <= 10


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ runs { totalCount } }", "variables": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"query": "{ runs { totalCount } }", "extensions": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        b"[" * 1_000_000,
        b'{"query": "query($n: Int) { runs(first: $n) { totalCount } }", "variables": {"n": ' + b"9" * 5_000 + b"}}",
    ],
    ids=["deep-variables", "deep-extensions", "brackets", "huge-int"],
)
def test_bodies_the_json_parser_gives_up_on_are_400_not_500(live: Live, body: bytes) -> None:
    response = httpx.post(
        f"{live.url}/graphql",
        content=body,
        headers={"Authorization": f"Bearer {live.tokens['demo']}", "Content-Type": "application/json"},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert response.status_code == 400, response.text[:300]
