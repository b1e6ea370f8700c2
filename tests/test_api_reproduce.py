"""The `reproduce` mutation: returns the new run id at once (REQUESTED); the verdict appears on the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import provgraph as pg
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.synthetic import run_events

MUTATION = """
mutation($id: ID!) { reproduce(runId: $id) { runId originalRunId state verdict differences } }
"""
REPRODUCES = "query($id: ID!) { run(id: $id) { state reproduces { originalRunId verdict differences } } }"


def copy(ctx: pg.Context, data: pg.DataItem) -> dict[str, int]:
    body = data.get()
    ctx.log_artifact("copy", body=body)
    return {"n": len(body)}


@pytest.fixture
def server(settings: pg.Settings, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    (tmp_path / "in.txt").write_text("hello")
    backend = pg.Backend(settings.model_copy(update={"project": "demo"}))
    original = pg.run(copy, inputs={"data": str(tmp_path / "in.txt")}, backend=backend).raise_for_state()
    for event in run_events("synthetic-1", namespace="demo", job="imported"):
        backend.transport.emit(event)
    backend.close()
    tokens = TokenStore(settings.tokens_db)
    issued = {"demo": tokens.create(["demo"])[1], "other": tokens.create(["other"])[1]}
    tokens.close()
    on_host = settings.model_copy(update={"api_reproduce_on_host": True})  # its token holders may run code here
    with ServerThread(create_app(on_host)) as url:
        yield url, issued, original.run_id


def call(url: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for_end(url: str, token: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    """The run once it has ended (the reproduction runs in its own process)."""
    # Imported here, not at the top: this module is also a handler's code snapshot, loaded by a
    # reproduction in its own process, where the `tests` package is not importable.
    from tests.helpers import wait_for

    def ended() -> dict[str, Any] | None:
        run: dict[str, Any] | None = call(url, token, REPRODUCES, id=run_id)["data"]["run"]
        return run if run is not None and run["state"] in ("COMPLETE", "FAIL", "ABORT") else None

    return wait_for(f"run {run_id} to end", ended, timeout)


def test_reproduce_mutation_returns_the_new_run_and_its_verdict(server: tuple[str, dict[str, str], str]) -> None:
    url, tokens, original = server
    body = call(url, tokens["demo"], MUTATION, id=f"run:{original}")
    assert "errors" not in body, body
    result = body["data"]["reproduce"]
    assert result["originalRunId"] == original and result["runId"] != original
    assert (result["state"], result["verdict"], result["differences"]) == ("REQUESTED", None, [])
    run = wait_for_end(url, tokens["demo"], result["runId"])
    assert run["state"] == "COMPLETE"
    assert run["reproduces"] == {"originalRunId": original, "verdict": "REPRODUCED", "differences": []}


def test_reproduce_is_scoped_and_refusals_are_clear(server: tuple[str, dict[str, str], str]) -> None:
    url, tokens, original = server
    body = call(url, tokens["other"], MUTATION, id=original)
    assert body["data"] is None and f"no such run: {original}" in body["errors"][0]["message"]
    body = call(url, tokens["demo"], MUTATION, id="synthetic-1")
    assert body["data"] is None
    message = body["errors"][0]["message"]
    assert "the source snapshot" in message and "of run synthetic-1 is not in" in message


def test_a_token_holder_reproduces_on_the_servers_host_only_where_allowed(
    settings: pg.Settings, tmp_path: Path
) -> None:
    """A reproduction runs the recorded code, and reads the recorded inputs, as the server's user: a
    token holder could post a run naming any file of the server's host as an input. By default a
    server with tokens reproduces on Kubernetes only, and never with another project's artifacts."""
    (tmp_path / "in.txt").write_text("hello")
    backend = pg.Backend(settings.model_copy(update={"project": "demo"}))
    original = pg.run(copy, inputs={"data": str(tmp_path / "in.txt")}, backend=backend).raise_for_state()
    borrowed = pg.run(copy, inputs={"data": original.outputs["copy"]}, project="other", backend=backend)
    backend.close()
    tokens = TokenStore(settings.tokens_db)
    demo, other = tokens.create(["demo"])[1], tokens.create(["other"])[1]
    tokens.close()
    mutation = "mutation($id: ID!) { reproduce(runId: $id) { runId state } }"
    with ServerThread(create_app(settings)) as url:
        refused = call(url, demo, mutation, id=original.run_id)
        assert refused["data"] is None
        assert "reproduces token holders' runs on Kubernetes only" in refused["errors"][0]["message"]
    with ServerThread(create_app(settings.model_copy(update={"api_reproduce_on_host": True}))) as url:
        scoped = call(url, other, mutation, id=borrowed.run_id)
        assert scoped["data"] is None
        assert "which this token may not use" in scoped["errors"][0]["message"]
