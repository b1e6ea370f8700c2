"""Fair shares over real HTTP: clients hammering costly lineage queries cannot starve a simple query.

A real uvicorn server on a port, real HTTP clients (one connection each), a populated embedded
store big enough that a downstream walk from a source dataset is costly. No timed assertions:
what must hold is what each client is answered (bench/bench_fairness.py measures the latencies).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from provgraph.api.app import GraphQLApp, create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.settings import Settings
from provgraph.events.synthetic import content_hash, workload
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.factory import embedded_projector

RUNS = 1_500
NAMESPACE = "fair"
# 8 aliased walks, each downstream from a source dataset 6 hops deep (estimated cost 1,640).
COSTLY = (
    "query { "
    + " ".join(
        f'w{i}: lineage(node: "dataset:file:/data/source{i % 10}.csv@{content_hash(f"source{i % 10}")}",'
        " direction: DOWNSTREAM, depth: 6, fanOutLimit: 500) { partial nodes { id } }"
        for i in range(8)
    )
    + " }"
)
SIMPLE = 'query { run(id: "fair-run-00000042") { runId state params } }'


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("fair-home")
    log = SqliteEventLog(home / "events.db")
    log.append(list(workload(RUNS, namespace=NAMESPACE)))
    log.close()
    embedded_projector(Settings(home=home)).sync()
    return home


def serve(home: Path, **limits: Any) -> tuple[ServerThread, list[str]]:
    settings = Settings(home=home, api_query_timeout_s=60, **limits)
    tokens = TokenStore(settings.tokens_db)
    issued = [tokens.create([NAMESPACE], name=f"client{i}")[1] for i in range(5)]
    tokens.close()
    return ServerThread(create_app(settings)), issued


def post(client: httpx.Client, url: str, query: str) -> httpx.Response:
    return client.post(url + "/graphql", json={"query": query})


def check_costly(response: httpx.Response) -> str:
    """A costly query is answered in full or refused with 429 RATE_LIMITED; nothing else."""
    body = response.json()
    if response.status_code == 429:
        assert int(response.headers["retry-after"]) >= 1
        assert body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == ["RATE_LIMITED"]
        return "limited"
    assert response.status_code == 200 and "errors" not in body, body
    assert set(body["data"]) == {f"w{i}" for i in range(8)}
    assert all(len(walk["nodes"]) > 50 for walk in body["data"].values())  # costly indeed
    return "served"


def clients(tokens: list[str]) -> Iterator[httpx.Client]:
    for token in tokens:
        yield httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120)


@pytest.mark.slow
def test_simple_queries_are_served_while_four_clients_hammer_lineage(populated: Path) -> None:
    server, tokens = serve(populated)
    outcomes: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def hammer(client: httpx.Client, url: str) -> None:
        try:
            while not stop.is_set():
                outcomes.append(check_costly(post(client, url, COSTLY)))
        except BaseException as exc:  # noqa: BLE001 - a thread's failure, reported by the main thread
            failures.append(exc)

    with server as url:
        *costly, simple = list(clients(tokens))
        # Two connections per costly client: its own second query competes with its first.
        workers = [threading.Thread(target=hammer, args=(c, url)) for c in costly for _ in range(2)]
        for w in workers:
            w.start()
        try:
            answers = [post(simple, url, SIMPLE) for _ in range(40)]
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=300)
            for c in [*costly, simple]:
                c.close()
    assert not failures, failures
    assert outcomes and set(outcomes) <= {"served", "limited"}
    for answer in answers:
        assert answer.status_code == 200
        run = answer.json()["data"]["run"]
        assert (run["runId"], run["state"], run["params"]["i"]) == ("fair-run-00000042", "COMPLETE", 42)


def test_a_client_over_its_share_gets_429_at_once(populated: Path) -> None:
    """Share = one such query, no waiting: of 6 concurrent queries from one token, some are refused."""
    server, tokens = serve(populated, api_client_costly_cost=2_000, api_costly_wait_s=0, api_costly_store_calls=1)
    start = threading.Barrier(6)
    answers: list[httpx.Response] = []

    def one(client: httpx.Client, url: str) -> None:
        start.wait()
        answers.append(post(client, url, COSTLY))

    with server as url:
        pool = list(clients([tokens[0]] * 6))
        threads = [threading.Thread(target=one, args=(c, url)) for c in pool]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        after = post(pool[0], url, COSTLY)  # the share is given back once the others are done
        for c in pool:
            c.close()
    outcomes = [check_costly(a) for a in answers]
    assert len(outcomes) == 6 and "served" in outcomes and "limited" in outcomes
    assert check_costly(after) == "served"
    refused = next(a for a in answers if a.status_code == 429).json()["errors"][0]
    assert refused["message"] == (
        "too many costly queries from this client at once; retry in 1 s"
        " (or ask for less: fewer aliases, smaller depth or fanOutLimit)"
    )
    assert refused["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}


def test_costly_operations_run_on_their_own_lane(populated: Path) -> None:
    """With the costly lane stuck, cheap queries are still answered; costly ones wait for the lane.

    Before the lane existed, costly operations executed on the event loop: one stuck there would
    have stuck every request.
    """
    settings = Settings(home=populated, api_query_timeout_s=60)
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create([NAMESPACE], name="lane")[1]
    tokens.close()
    app = create_app(settings)
    graphql = next(r.endpoint for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    assert isinstance(graphql, GraphQLApp)
    gate = threading.Event()
    stuck = threading.Event()

    async def block_the_lane() -> None:
        stuck.set()
        gate.wait()  # blocks the lane's loop itself, as a long synchronous step would

    costly_answer: list[httpx.Response] = []
    with ServerThread(app) as url, httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        blocker = threading.Thread(target=lambda: asyncio.run(graphql.lanes.lane.run(block_the_lane())))
        blocker.start()
        costly = threading.Thread(target=lambda: costly_answer.append(post(client, url, COSTLY)))
        try:
            assert stuck.wait(60)
            costly.start()
            for _ in range(5):
                answer = post(client, url, SIMPLE)
                assert answer.status_code == 200 and answer.json()["data"]["run"]["runId"] == "fair-run-00000042"
            assert costly.is_alive() and not costly_answer  # still queued behind the stuck lane
        finally:
            gate.set()
            blocker.join(timeout=60)
            costly.join(timeout=300)
    assert check_costly(costly_answer[0]) == "served"
