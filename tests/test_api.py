"""The GraphQL API over HTTP, one suite for both stores: a real uvicorn server, httpx, real tokens.

The graph (seeded once per store) has two projects:

    demo:   prep-1 (file:/data/raw.csv -> store://demo/clean)
            train-1 (clean -> store://demo/model)      eval-1 (model, clean -> store://demo/report)
            train-fail (clean, FAIL, this week)        late-1 (file:/shared/x.csv -> store://demo/late)
            c-000000 … c-000029 (a chain, for paging)
    other:  other-1 (store://demo/clean -> file:/shared/x.csv, store://other/model2)

so scoping has something to hide in both directions: other-1 reads demo's data and writes what
demo's late-1 reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.guards import LINEAGE_BOUNDS, MASKED_MESSAGE
from provgraph.api.server import ServerThread
from provgraph.events.model import EventType, RunEvent
from provgraph.events.settings import Settings
from provgraph.events.synthetic import EPOCH, chain, content_hash, dataset, run_events
from provgraph.events.transport.sqlite import SqliteEventLog

NOW = datetime.now(UTC).replace(microsecond=0)
RAW = ("file", "/data/raw.csv", content_hash("raw"))
CLEAN = ("store://demo", "clean", content_hash("clean"))
MODEL = ("store://demo", "model", content_hash("model"))
REPORT = ("store://demo", "report", content_hash("report"))
SHARED = ("file", "/shared/x.csv", content_hash("shared"))
MODEL2 = ("store://other", "model2", content_hash("model2"))
LATE = ("store://demo", "late", content_hash("late"))
TRAIN_CODE = content_hash("train-v1")


def dsv_id(d: tuple[str, str, str]) -> str:
    return f"dataset:{d[0]}:{d[1]}@{d[2]}"


def ds(d: tuple[str, str, str], binding: str, *, output: bool = False, kind: str = "data") -> Any:
    return dataset(d[0], d[1], d[2], binding, kind=kind, output=output, size=123)


def seed_events() -> list[RunEvent]:
    return [
        *run_events(
            "prep-1",
            namespace="demo",
            job="prepare",
            params={"frac": 0.8},
            inputs=[ds(RAW, "raw")],
            outputs=[ds(CLEAN, "clean", output=True)],
            start=EPOCH,
        ),
        *run_events(
            "train-1",
            namespace="demo",
            job="train",
            code_hash=TRAIN_CODE,
            params={"lr": 0.1},
            inputs=[ds(CLEAN, "data")],
            outputs=[ds(MODEL, "model", output=True, kind="model")],
            metrics=[("loss", 0.5, 1), ("loss", 0.3, 2)],
            results={"accuracy": 0.93},
            start=EPOCH + timedelta(minutes=1),
        ),
        *run_events(
            "eval-1",
            namespace="demo",
            job="evaluate",
            inputs=[ds(MODEL, "model", kind="model"), ds(CLEAN, "data")],
            outputs=[ds(REPORT, "report", output=True)],
            start=EPOCH + timedelta(minutes=2),
        ),
        *run_events(
            "train-fail",
            namespace="demo",
            job="train",
            code_hash=content_hash("train-v2"),
            params={"lr": 10.0},
            inputs=[ds(CLEAN, "data")],
            final=EventType.FAIL,
            start=NOW - timedelta(days=1),
        ),
        *run_events(
            "other-1",
            namespace="other",
            job="train",
            inputs=[ds(CLEAN, "data")],
            outputs=[ds(SHARED, "x", output=True), ds(MODEL2, "model", output=True, kind="model")],
            start=EPOCH + timedelta(minutes=3),
        ),
        *run_events(
            "late-1",
            namespace="demo",
            job="late",
            inputs=[ds(SHARED, "x")],
            outputs=[ds(LATE, "late", output=True)],
            start=EPOCH + timedelta(minutes=4),
        ),
        *chain(30, prefix="c", namespace="demo"),
    ]


@dataclass
class Api:
    """A running server and a client per token."""

    url: str
    store: str
    tokens: dict[str, str]

    def post(self, query: str, *, token: str | None = "demo", **variables: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return httpx.post(
            self.url + "/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30
        )

    def data(self, query: str, *, token: str = "demo", **variables: Any) -> dict[str, Any]:
        response = self.post(query, token=token, **variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data

    def error(self, query: str, *, token: str = "demo", **variables: Any) -> str:
        """The first error message; the request must not be a server error nor a masked one."""
        response = self.post(query, token=token, **variables)
        assert response.status_code < 500, response.text
        errors = response.json()["errors"]
        assert errors and errors[0]["message"] != MASKED_MESSAGE, errors
        return str(errors[0]["message"])


def make_tokens(settings: Settings) -> dict[str, str]:
    store = TokenStore(settings.tokens_db)
    try:
        return {
            "demo": store.create(["demo"], name="demo")[1],
            "other": store.create(["other"], name="other")[1],
            "both": store.create(["demo", "other"], name="both")[1],
        }
    finally:
        store.close()


def store_settings(
    store: str, home: Path, request: pytest.FixtureRequest, events: list[RunEvent] | None = None
) -> Settings:
    """Settings of a graph holding `events` (default: `seed_events()`)."""
    events = seed_events() if events is None else events
    if store == "neo4j":
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        settings = Settings(home=home, store="neo4j", neo4j_uri=request.getfixturevalue("neo4j"))
        graph = Neo4jLineageStore.from_settings(settings)
        try:
            graph.reset()
            graph.apply(events)
        finally:
            graph.close()
        return settings
    settings = Settings(home=home)
    log = SqliteEventLog(settings.events_db)  # embedded: the server projects the log itself
    log.append(events)
    log.close()
    return settings


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)], ids=["sqlite", "neo4j"]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = store_settings(request.param, tmp_path_factory.mktemp(f"api-{request.param}"), request)
    tokens = make_tokens(settings)
    with ServerThread(create_app(settings)) as url:
        yield Api(url, request.param, tokens)


RUN_DETAIL = """
fragment RunDetail on Run {
  id runId project jobName state startedAt endedAt codeHash params results metrics runtime error { message }
  jobVersion { namespace name codeHash entrypoint gitCommit gitDirty }
  inputs { id namespace name version binding kind }
  outputs { id namespace name version binding kind }
}
"""

# -- the three questions of docs/API.md -----------------------------------------------------------


def test_what_produced_this_model(api: Api) -> None:
    ns, name, version = MODEL
    data = api.data(
        RUN_DETAIL + "query($ns: String!, $name: String!, $v: String!) {"
        " producedBy(namespace: $ns, name: $name, version: $v) { ...RunDetail } }",
        ns=ns,
        name=name,
        v=version,
    )
    run = data["producedBy"]
    assert run["runId"] == "train-1" and run["id"] == "run:train-1"
    assert run["state"] == "COMPLETE" and run["project"] == "demo" and run["jobName"] == "train"
    assert run["params"] == {"lr": 0.1} and run["results"] == {"accuracy": 0.93}
    assert run["metrics"] == {"loss": 0.3}
    assert run["jobVersion"]["codeHash"] == TRAIN_CODE == run["codeHash"]
    assert run["jobVersion"]["entrypoint"] == "train.py:train"
    assert run["inputs"] == [
        {
            "id": dsv_id(CLEAN),
            "namespace": "store://demo",
            "name": "clean",
            "version": CLEAN[2],
            "binding": "data",
            "kind": "data",
        }
    ]
    assert [o["id"] for o in run["outputs"]] == [dsv_id(MODEL)]


def test_what_did_this_dataset_feed(api: Api) -> None:
    data = api.data(
        "query($n: ID!) { lineage(node: $n, direction: DOWNSTREAM, depth: 4) { root depth partial cutReasons"
        " nodes { id kind hop label props } edges { source target kind binding } } }",
        n=dsv_id(RAW),
    )["lineage"]
    hops = {n["id"]: n["hop"] for n in data["nodes"]}
    assert hops == {
        dsv_id(RAW): 0,
        "run:prep-1": 1,
        dsv_id(CLEAN): 2,
        "run:train-1": 3,
        "run:eval-1": 3,
        "run:train-fail": 3,
        dsv_id(MODEL): 4,
        dsv_id(REPORT): 4,
    }
    assert data["partial"] is False and data["cutReasons"] == [] and data["depth"] == 4
    kinds = {n["id"]: n["kind"] for n in data["nodes"]}
    assert kinds["run:prep-1"] == "RUN" and kinds[dsv_id(CLEAN)] == "DATASET_VERSION"
    props = next(n["props"] for n in data["nodes"] if n["id"] == "run:prep-1")
    assert props["job"] == "prepare" and props["params"] == {"frac": 0.8} and props["namespace"] == "demo"
    assert {"source": "run:prep-1", "target": dsv_id(RAW), "kind": "READ", "binding": "raw"} in data["edges"]
    assert {"source": "run:prep-1", "target": dsv_id(CLEAN), "kind": "WROTE", "binding": "clean"} in data["edges"]


def test_runs_of_a_job_that_failed_this_week(api: Api) -> None:
    week_ago = (NOW - timedelta(days=7)).isoformat()
    data = api.data(
        'query($since: DateTime!) { runs(project: "demo", job: "train", state: FAIL, since: $since)'
        " { edges { node { runId state params jobVersion { codeHash } } } pageInfo { hasNextPage } } }",
        since=week_ago,
    )["runs"]
    assert [e["node"]["runId"] for e in data["edges"]] == ["train-fail"]
    assert data["edges"][0]["node"]["jobVersion"]["codeHash"] == content_hash("train-v2")
    assert data["pageInfo"]["hasNextPage"] is False


# -- queries ------------------------------------------------------------------------------------


def test_run_by_id_accepts_both_id_forms_and_null_for_unknown(api: Api) -> None:
    q = "query($id: ID!) { run(id: $id) { id runId outputs { name } } }"
    assert api.data(q, id="train-1")["run"] == api.data(q, id="run:train-1")["run"]
    assert api.data(q, id="train-1")["run"]["outputs"] == [{"name": "model"}]
    assert api.data(q, id="no-such-run")["run"] is None


def test_runs_pages_through_every_run_once_newest_first(api: Api) -> None:
    q = (
        'query($after: String) { runs(project: "demo", first: 7, after: $after)'
        " { edges { cursor node { runId startedAt } } nodes { runId } pageInfo { hasNextPage endCursor } } }"
    )
    seen: list[str] = []
    after = None
    for _ in range(20):
        page = api.data(q, after=after)["runs"]
        assert [e["node"]["runId"] for e in page["edges"]] == [n["runId"] for n in page["nodes"]]
        seen += [e["node"]["runId"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    whole = api.data('{ runs(project: "demo", first: 500) { nodes { runId startedAt } } }')["runs"]["nodes"]
    assert seen == [n["runId"] for n in whole]
    assert len(seen) == len(set(seen)) == 35  # 5 demo runs + a chain of 30
    assert seen[0] == "train-fail"  # the newest
    starts = [n["startedAt"] for n in whole]
    assert starts == sorted(starts, reverse=True)


def test_job_with_versions_and_dataset_with_versions(api: Api) -> None:
    job = api.data('{ job(namespace: "demo", name: "train") { id namespace name runCount versions { codeHash } } }')
    assert job["job"]["id"] == "job:demo:train" and job["job"]["runCount"] == 2
    assert sorted(v["codeHash"] for v in job["job"]["versions"]) == sorted([TRAIN_CODE, content_hash("train-v2")])
    data = api.data(
        'query($v: String!) { dataset(namespace: "store://demo", name: "model") { id kind versions { version size }'
        " latest { version } }"
        ' datasetVersion(namespace: "store://demo", name: "model", version: $v) { id size producedBy { runId } } }',
        v=MODEL[2],
    )
    assert data["dataset"]["id"] == "dataset:store://demo:model"
    assert data["dataset"]["versions"] == [{"version": MODEL[2], "size": 123}]
    assert data["dataset"]["latest"] == {"version": MODEL[2]}
    assert data["datasetVersion"] == {"id": dsv_id(MODEL), "size": 123, "producedBy": {"runId": "train-1"}}
    assert api.data('{ job(namespace: "demo", name: "nope") { id } }')["job"] is None


def test_lineage_upstream_of_the_model_with_hops(api: Api) -> None:
    data = api.data(
        "query($n: ID!) { lineage(node: $n, direction: UPSTREAM, depth: 10) { nodes { id hop } partial } }",
        n=dsv_id(MODEL),
    )["lineage"]
    assert {n["id"]: n["hop"] for n in data["nodes"]} == {
        dsv_id(MODEL): 0,
        "run:train-1": 1,
        dsv_id(CLEAN): 2,
        "run:prep-1": 3,
        dsv_id(RAW): 4,
    }
    assert data["partial"] is False


def test_lineage_bounds_are_capped_server_side(api: Api) -> None:
    data = api.data(
        "query($n: ID!) { lineage(node: $n, direction: DOWNSTREAM, depth: 100000, fanOutLimit: 100000000)"
        " { depth fanOutLimit } }",
        n=dsv_id(RAW),
    )["lineage"]
    assert data == {"depth": LINEAGE_BOUNDS.max_depth, "fanOutLimit": LINEAGE_BOUNDS.max_fan_out}
    cut = api.data(
        "query($n: ID!) { lineage(node: $n, direction: DOWNSTREAM, depth: 1, fanOutLimit: 1)"
        " { nodes { id } partial cutReasons } }",
        n=dsv_id(CLEAN),
        token="both",
    )["lineage"]
    assert cut["partial"] is True and len(cut["nodes"]) == 3  # depth 1: a reader and what it wrote
    assert any("fan-out limit of 1" in r for r in cut["cutReasons"])


def test_search_finds_jobs_runs_and_datasets(api: Api) -> None:
    data = api.data('{ search(text: "TRAIN", kinds: [JOB, RUN], limit: 10) { id kind label } }')["search"]
    assert {"id": "job:demo:train", "kind": "JOB", "label": "train"} in data
    assert {h["id"] for h in data if h["kind"] == "RUN"} == {"run:train-1", "run:train-fail"}
    datasets = api.data('{ search(text: "data/RAW", kinds: [DATASET]) { id kind } }')["search"]
    assert datasets == [{"id": "dataset:file:/data/raw.csv", "kind": "DATASET"}]


# -- scope: a token sees its projects only ------------------------------------------------------


def test_another_projects_run_is_null_and_runs_are_filtered(api: Api) -> None:
    q = "query($id: ID!) { run(id: $id) { runId project } }"
    assert api.data(q, id="other-1")["run"] is None
    assert api.data(q, id="other-1", token="other")["run"] == {"runId": "other-1", "project": "other"}

    def projects(token: str) -> set[str]:
        return {
            n["project"] for n in api.data("{ runs(first: 500) { nodes { project } } }", token=token)["runs"]["nodes"]
        }

    assert projects("demo") == {"demo"}
    assert projects("other") == {"other"}
    assert projects("both") == {"demo", "other"}
    assert api.data('{ runs(project: "other") { nodes { runId } } }')["runs"]["nodes"] == []
    assert api.data('{ job(namespace: "other", name: "train") { id } }')["job"] is None


def test_paging_over_several_projects_merges_them_in_order(api: Api) -> None:
    q = "query($after: String) { runs(first: 4, after: $after) { nodes { runId } pageInfo { hasNextPage endCursor } } }"
    seen, after = [], None
    while True:
        page = api.data(q, token="both", after=after)["runs"]
        seen += [n["runId"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    whole = api.data("{ runs(first: 500) { nodes { runId } } }", token="both")["runs"]["nodes"]
    assert seen == [n["runId"] for n in whole] and len(seen) == 36 and "other-1" in seen


def test_lineage_hides_other_projects_runs_and_what_lies_behind_them(api: Api) -> None:
    q = (
        "query($n: ID!, $d: Direction!) { lineage(node: $n, direction: $d, depth: 10)"
        " { nodes { id hop } edges { source target } } }"
    )
    # late-1 read x.csv, which other-1 wrote from demo's clean data: demo sees up to x.csv only.
    mine = api.data(q, n="run:late-1", d="UPSTREAM")["lineage"]
    assert {n["id"]: n["hop"] for n in mine["nodes"]} == {"run:late-1": 0, dsv_id(SHARED): 1}
    everything = api.data(q, n="run:late-1", d="UPSTREAM", token="both")["lineage"]
    assert {"run:other-1", dsv_id(CLEAN), "run:prep-1", dsv_id(RAW)} <= {n["id"] for n in everything["nodes"]}
    # downstream of clean, demo does not see other-1 nor the artifacts it wrote
    down = api.data(q, n=dsv_id(CLEAN), d="DOWNSTREAM")["lineage"]
    ids = {n["id"] for n in down["nodes"]}
    assert "run:other-1" not in ids and dsv_id(MODEL2) not in ids and dsv_id(SHARED) not in ids
    assert {"run:train-1", "run:eval-1", dsv_id(REPORT)} <= ids
    assert all("other-1" not in e["source"] for e in down["edges"])
    # other cannot start a walk from demo's run nor from demo's artifacts
    assert api.error(q, n="run:train-1", d="UPSTREAM", token="other") == "no such node: run:train-1"
    assert api.error(q, n=dsv_id(MODEL), d="UPSTREAM", token="other") == f"no such node: {dsv_id(MODEL)}"


def test_produced_by_and_datasets_respect_scope(api: Api) -> None:
    q = "query($ns: String!, $n: String!, $v: String!) { producedBy(namespace: $ns, name: $n, version: $v) { runId } }"
    assert api.data(q, ns=SHARED[0], n=SHARED[1], v=SHARED[2])["producedBy"] is None
    assert api.data(q, ns=SHARED[0], n=SHARED[1], v=SHARED[2], token="both")["producedBy"] == {"runId": "other-1"}
    assert api.data('{ dataset(namespace: "store://other", name: "model2") { id } }')["dataset"] is None
    assert api.data('{ dataset(namespace: "store://other", name: "model2") { id } }', token="other")["dataset"]
    hits = api.data('{ search(text: "train") { id } }')["search"]
    assert "job:other:train" not in {h["id"] for h in hits} and "run:other-1" not in {h["id"] for h in hits}
    assert "run:other-1" in {h["id"] for h in api.data('{ search(text: "train") { id } }', token="other")["search"]}


# -- guardrails and errors ------------------------------------------------------------------------


def test_client_mistakes_are_graphql_errors_with_clear_messages(api: Api) -> None:
    assert "not a node id: 'nonsense'" in api.error('{ lineage(node: "nonsense") { root } }')
    assert api.error('{ lineage(node: "run:ghost") { root } }') == "no such node: run:ghost"
    assert "invalid cursor" in api.error('{ runs(after: "!!") { nodes { runId } } }')
    assert "first must be >= 0" in api.error("{ runs(first: -1) { nodes { runId } } }")
    assert "Cannot query field 'nope'" in api.error("{ nope }")
    assert "DateTime" in api.error('{ runs(since: "last tuesday") { nodes { runId } } }')


def nested(levels: int) -> str:
    """run -> inputs -> producedBy -> inputs -> … : `levels` pairs deep."""
    inner = "runId"
    for _ in range(levels):
        inner = f"runId inputs {{ producedBy {{ {inner} }} }}"
    return f'{{ run(id: "train-1") {{ {inner} }} }}'


def test_depth_alias_token_and_complexity_limits_answer_with_clear_errors(api: Api) -> None:
    two = api.data(nested(2))["run"]["inputs"][0]["producedBy"]
    assert two["runId"] == "prep-1" and two["inputs"][0]["producedBy"] is None  # nobody wrote raw.csv
    assert "exceeds maximum operation depth" in api.error(nested(6))
    aliases = "{ " + " ".join(f'a{i}: run(id: "x") {{ runId }}' for i in range(30)) + " }"
    assert api.error(aliases) == "30 aliases found. Allowed: 20"
    costly = "{ runs(first: 500) { nodes { parent { runId } job { name } inputs { producedBy { runId } } } } }"
    assert "too complex: estimated cost" in api.error(costly)
    assert "too complex" in api.error(
        "query($n: Int) { runs(first: $n) { nodes { parent { runId } job { name } inputs { producedBy { runId } } } } }"
    )
    huge = "{ " + 'run(id: "x") { runId } ' * 500 + "}"
    assert "more than 2000 tokens" in api.error(huge)


def test_graphiql_is_served_at_graphql(api: Api) -> None:
    page = httpx.get(api.url + "/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "graphiql" in page.text.lower()


def test_the_server_parses_http_and_runs_its_loop_in_c() -> None:
    """Round 12: uvicorn picks httptools and uvloop, which the api extra installs: h11's pure-Python
    parsing and asyncio's loop cost ~1.5 ms of the API's ~7 ms of CPU a small query."""
    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    config = uvicorn.Config(app, lifespan="off")
    config.load()
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
        assert type(loop).__module__.startswith("uvloop"), type(loop)
    finally:
        loop.close()
