"""The web UI's files are public (code, no data); nothing else becomes public with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.artifacts import ArtifactStore
from provgraph.events.settings import Settings
from provgraph.events.synthetic import chain, run_events
from provgraph.events.transport.sqlite import SqliteEventLog
from tests.helpers import graphql_data


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    home = tmp_path / "home"
    log = SqliteEventLog(home / "events.db")
    log.append([*chain(2, prefix="d", namespace="demo")])
    log.close()
    (home / "secret.txt").write_text("do not serve")
    settings = Settings(home=home)
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["demo"])[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        yield url, token


RUNS = "{ runs { nodes { runId } } }"


@pytest.mark.parametrize(
    "path",
    [
        f"/?query={RUNS}",  # a query string on the page's URL executes nothing
        f"/assets/?query={RUNS}",
        "/assets/../graphql?query=" + RUNS,
    ],
)
def test_public_paths_execute_no_query(server: tuple[str, str], path: str) -> None:
    url, _ = server
    response = httpx.get(url + path)
    assert "runId" not in response.text
    assert response.status_code in (200, 401, 404)


def test_graphql_still_needs_a_token(server: tuple[str, str]) -> None:
    url, token = server
    assert httpx.get(url + "/graphql", params={"query": RUNS}).status_code == 401
    assert httpx.post(url + "/graphql", json={"query": RUNS}).status_code == 401
    assert httpx.post(url + "/", json={"query": RUNS}).status_code == 401
    ok = httpx.post(url + "/graphql", json={"query": RUNS}, headers={"Authorization": f"Bearer {token}"})
    assert len(ok.json()["data"]["runs"]["nodes"]) == 2


@pytest.mark.parametrize(
    "path", ["/assets/../../events.db", "/assets/%2e%2e/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"]
)
def test_assets_never_leave_the_bundle(server: tuple[str, str], path: str) -> None:
    url, _ = server
    response = httpx.get(url + path)
    assert response.status_code in (401, 404)  # 401: the client normalised the path out of /assets/
    assert b"do not serve" not in response.content and b"SQLite" not in response.content


def test_code_snapshot_only_of_runs_in_scope(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    code, _ = ArtifactStore(settings.artifact_url).put_bytes(b"SECRET = 'demo only'\n")
    log = SqliteEventLog(settings.events_db)
    log.append(run_events("r1", namespace="demo", job="j", code_hash=code))
    log.close()
    tokens = TokenStore(settings.tokens_db)
    demo, other = tokens.create(["demo"])[1], tokens.create(["other"])[1]
    tokens.close()
    query = "query($id: ID!) { codeSnapshot(runId: $id) { text } }"
    with ServerThread(create_app(settings)) as url:
        assert graphql_data(url, demo, query, id="r1")["codeSnapshot"] == {"text": "SECRET = 'demo only'\n"}
        assert graphql_data(url, other, query, id="r1")["codeSnapshot"] is None
        assert graphql_data(url, other, query, id="run:r1")["codeSnapshot"] is None
