"""API tokens end to end: created and revoked with the real `provgraph token` CLI, checked by a live
server; `provgraph serve --insecure-local` only on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread, free_port
from provgraph.events.settings import Settings
from provgraph.events.synthetic import chain
from provgraph.events.transport.sqlite import SqliteEventLog
from tests.helpers import wait_for

BIN = Path(sys.executable).parent / "provgraph"
QUERY = {"query": "{ runs(first: 100) { nodes { runId project } } }"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    log = SqliteEventLog(home / "events.db")
    log.append([*chain(3, prefix="d", namespace="demo"), *chain(2, prefix="o", namespace="other")])
    log.close()
    return home


def cli(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(home), COLUMNS="200", NO_COLOR="1")
    proc = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=home.parent, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    with ServerThread(create_app(Settings(home=home))) as url:
        yield url


def post(url: str, token: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url + "/graphql", json=QUERY, headers=headers, timeout=30)


def test_no_or_bad_token_is_401_on_every_endpoint(server: str) -> None:
    for response in (
        post(server),
        post(server, "pgt_00000000_not-a-real-secret"),
        post(server, "garbage"),
        post(server, headers={"Authorization": "Basic dXNlcjpwYXNz"}),
        httpx.get(server + "/graphql", params={"query": "{ runs { nodes { runId } } }"}, timeout=10),
        httpx.post(server + "/api/v1/lineage", json={}, timeout=10),
    ):
        assert response.status_code == 401, response.text
        assert "API token" in response.json()["error"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    # anonymous: liveness and the GraphiQL page (which sends the token the user enters)
    assert httpx.get(server + "/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(server + "/graphql", headers={"Accept": "text/html"}, timeout=10).status_code == 200


@pytest.mark.slow
def test_token_cli_create_list_revoke_and_the_server_obeys(home: Path, server: str) -> None:
    created = cli(home, "token", "create", "--project", "demo", "--name", "ci")
    token = created.stdout.strip()
    assert token.startswith("pgt_") and "shown once" in created.stderr
    token_id = token.split("_")[1]

    response = post(server, token)
    assert response.status_code == 200
    assert {n["project"] for n in response.json()["data"]["runs"]["nodes"]} == {"demo"}

    listed = cli(home, "token", "list").stdout
    assert token_id in listed and "ci" in listed and "demo" in listed and "active" in listed
    assert token.split("_", 2)[2] not in listed

    # stored hashed: the secret appears nowhere in the token database
    secret = token.split("_", 2)[2].encode()
    for path in home.glob("tokens.db*"):
        assert secret not in path.read_bytes()

    assert "revoked token" in cli(home, "token", "revoke", token_id).stdout
    assert post(server, token).status_code == 401
    assert "revoked" in cli(home, "token", "list").stdout
    missing = cli(home, "token", "revoke", "nope", ok=False)
    assert missing.returncode == 1 and "no API token with id 'nope'" in missing.stderr


def test_a_token_for_two_projects_sees_both(home: Path, server: str) -> None:
    token = cli(home, "token", "create", "-p", "demo", "-p", "other").stdout.strip()
    nodes = post(server, token).json()["data"]["runs"]["nodes"]
    assert {n["project"] for n in nodes} == {"demo", "other"} and len(nodes) == 5


def test_token_create_needs_a_project(home: Path) -> None:
    proc = cli(home, "token", "create", ok=False)
    assert proc.returncode == 1 and "a token needs at least one non-empty project (--project P)" in proc.stderr


def test_a_wrong_secret_for_a_real_token_id_is_refused(home: Path, server: str) -> None:
    store = TokenStore(home / "tokens.db")
    info, token = store.create(["demo"])
    store.close()
    assert post(server, token).status_code == 200
    assert post(server, f"pgt_{info.id}_{'x' * 43}").status_code == 401
    assert post(server, token + "x").status_code == 401


def test_insecure_local_is_refused_off_loopback(home: Path) -> None:
    proc = cli(home, "serve", "--host", "0.0.0.0", "--insecure-local", ok=False)
    assert proc.returncode == 1
    assert "--insecure-local" in proc.stderr and "127.0.0.1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_insecure_local_serves_without_tokens_on_loopback(home: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(home))
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port), "--insecure-local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert proc.poll() is None, f"serve exited early: {proc.stdout.read() if proc.stdout else ''}"
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the server's /healthz", healthy, interval=0.05)
        nodes = post(url).json()["data"]["runs"]["nodes"]
        assert {n["project"] for n in nodes} == {"demo", "other"}
        # this machine's own pages only: another site's page (a cross-origin POST needs no preflight
        # for a text/plain body) or one DNS-rebound to 127.0.0.1 gets nothing
        assert post(url, headers={"Origin": f"http://localhost:{port}"}).status_code == 200
        for headers in (
            {"Origin": "http://attacker.example"},
            {"Origin": "null"},
            {"Host": f"attacker.example:{port}"},
            {"Host": f"127.evil.example:{port}", "Origin": f"http://127.evil.example:{port}"},
        ):
            refused = post(url, headers=headers)
            assert refused.status_code == 403, headers
            assert "answers only this machine's own pages" in refused.json()["error"]
        forged = httpx.post(
            url + "/api/v1/lineage",
            content=b'{"eventType": "START"}',
            headers={"Content-Type": "text/plain", "Origin": "http://attacker.example"},
            timeout=30,
        )
        assert forged.status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)
