"""Deletion: only the object's project may delete it, over the HTTP ingest, GraphQL and the embedded
log; the tombstone's project is the object's, whatever a field says; nothing of a refusal is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import provgraph as pg
from provgraph._delete import tombstone_event
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events import serde
from provgraph.events.admission import check_tombstone
from provgraph.events.artifacts import sha256_bytes
from provgraph.events.errors import ContractError, Forbidden
from provgraph.events.facets import ParamsRunFacet, TombstoneRunFacet
from provgraph.events.facets.tombstone_run import DELETE_JOB, TombstoneKind
from provgraph.events.model import Dataset, Job, RunEvent
from provgraph.events.settings import Settings
from provgraph.events.transport.sqlite import SqliteEventLog
from tests.helpers import graphql

DELETE = """mutation($k: String!, $t: String!) { delete(kind: $k, target: $t) { kind target project by runId } }"""
RUN = """query($id: ID!) { run(id: $id) { id } }"""
RUNS = """query($d: Boolean!) {
  runs(project: "demo", includeDeleted: $d) { edges { node { jobName deleted { by } } } } }"""
RUN_KEPT = """query($id: ID!) { run(id: $id, includeDeleted: true) { id deleted { at by runId } } }"""
V1 = sha256_bytes(b"w1")


def train(ctx: pg.Context, body: str = "w1") -> None:
    ctx.log_model("model", body=body.encode(), framework="none")


class Served:
    def __init__(self, url: str, settings: Settings, tokens: dict[str, str], run_id: str) -> None:
        self.url, self.settings, self.tokens, self.run_id = url, settings, tokens, run_id

    def gql(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        return graphql(self.url, self.tokens[token], query, **variables)

    def post(self, token: str, event: RunEvent) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"}
        return httpx.post(f"{self.url}/api/v1/lineage", json=serde.to_dict(event), headers=headers, timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    settings = Settings(home=tmp_path / "home")
    backend = pg.Backend(settings)
    try:
        run = pg.run(train, project="demo", backend=backend)
        pg.run(train, project="other", backend=backend)
    finally:
        backend.close()
    store = TokenStore(settings.tokens_db)
    tokens = {"demo": store.create(["demo"], name="demo")[1], "other": store.create(["other"], name="other")[1]}
    store.close()
    with ServerThread(create_app(settings)) as url:
        yield Served(url, settings, tokens, run.run_id)


def _tomb(kind: TombstoneKind, target: str, project: str) -> RunEvent:
    return tombstone_event(TombstoneRunFacet(kind=kind, target=target, by="mallory"), project)


def test_a_token_deletes_its_projects_run_and_it_disappears(served: Served) -> None:
    done = served.gql("demo", DELETE, k="run", t=served.run_id)["data"]["delete"]
    assert (done["kind"], done["target"], done["project"]) == ("run", served.run_id, "demo")
    assert done["by"].startswith("token:")
    assert served.gql("demo", RUN, id=served.run_id)["data"]["run"] is None
    kept = served.gql("demo", RUN_KEPT, id=served.run_id)["data"]["run"]
    assert kept["deleted"]["by"] == done["by"] and kept["deleted"]["runId"] == done["runId"]
    assert served.gql("other", RUN_KEPT, id=served.run_id)["data"]["run"] is None  # still not theirs to see
    listed = served.gql("demo", RUNS, d=False)["data"]["runs"]["edges"]
    assert [e["node"]["jobName"] for e in listed] == ["provgraph.delete"]
    everything = served.gql("demo", RUNS, d=True)["data"]["runs"]["edges"]
    assert [(e["node"]["jobName"], e["node"]["deleted"] is not None) for e in everything] == [
        ("provgraph.delete", False),
        ("train", True),
    ]


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("run", None, "no such run: {run}"),
        ("artifact", "store://demo/model", "no such artifact: store://demo/model"),
        ("artifact", f"store://demo/model@{V1}", "no such artifact: store://demo/model"),
        ("project", "demo", "no such project: demo"),
    ],
)
def test_graphql_refuses_deleting_another_projects_object(
    served: Served, kind: str, target: str | None, message: str
) -> None:
    got = served.gql("other", DELETE, k=kind, t=target or served.run_id)
    assert got["data"] is None
    assert got["errors"][0]["message"] == message.format(run=served.run_id)
    assert served.gql("demo", RUN, id=served.run_id)["data"]["run"] == {"id": f"run:{served.run_id}"}


def test_the_http_ingest_refuses_a_tombstone_of_another_projects_object(served: Served) -> None:
    for event in (
        _tomb("run", served.run_id, "other"),  # the token's own project, naming demo's run
        _tomb("artifact", "store://demo/model", "other"),
        _tomb("project", "demo", "other"),
    ):
        got = served.post("other", event)
        assert got.status_code == 403, got.text
    assert served.post("other", _tomb("run", served.run_id, "demo")).status_code == 403  # not the token's project
    assert served.gql("demo", RUN, id=served.run_id)["data"]["run"] == {"id": f"run:{served.run_id}"}
    assert served.post("demo", _tomb("run", served.run_id, "demo")).status_code == 201
    assert served.gql("demo", RUN, id=served.run_id)["data"]["run"] is None


def test_the_embedded_log_refuses_a_tombstone_of_another_projects_run(served: Served) -> None:
    log = SqliteEventLog(served.settings.events_db)
    try:
        with pytest.raises(Forbidden, match=f"may not delete run '{served.run_id}' of project 'demo'"):
            log.append([_tomb("run", served.run_id, "other")])
    finally:
        log.close()


def _event(**changes: Any) -> RunEvent:
    """A well-formed deletion of store://demo/model by project demo, with `changes`."""
    event = _tomb("artifact", "store://demo/model", "demo")
    facets = event.run.facets.model_copy(update=changes.pop("facets", {}))
    return event.model_copy(update={"run": event.run.model_copy(update={"facets": facets}), **changes})


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (_event(job=Job(namespace="other", name=DELETE_JOB)), Forbidden, "may not delete store://demo/model"),
        (_event(job=Job(namespace="demo", name="train")), ContractError, "belongs to runs of job 'provgraph.delete'"),
        (_event(facets={"tombstone": None}), ContractError, "carries the provgraph_tombstone facet"),
        (
            _event(facets={"params": ParamsRunFacet(params={"kind": "run"})}),
            ContractError,
            "a deletion run's provgraph_params are its tombstone",
        ),
        (
            _event(inputs=[Dataset(namespace="store://demo", name="model")]),
            ContractError,
            "a deletion run reads and writes no datasets",
        ),
        (
            _tomb("artifact", "store://demo/model@sha256:abc", "demo"),
            ContractError,
            "the version is not a content hash",
        ),
        (_tomb("artifact", "s3://bucket/model", "demo"), ContractError, "expected store://<project>/<key>"),
        (_tomb("project", "demo", "other"), Forbidden, "may not delete project 'demo'"),
    ],
)
def test_the_write_rules_refuse_malformed_or_foreign_tombstones(
    event: RunEvent, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as err:
        check_tombstone(event)
    assert message in str(err.value)
