"""Pipelines and project boundaries: a step run that names another project's run as its parent is
not shown as that run's child; a forged pipeline record cannot break the API; a cache source is
never taken from another project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from provgraph import Backend, Settings
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.facets import JobRef, ParentRunFacet, RunRef, RuntimeRunFacet
from provgraph.events.model import RunEvent
from provgraph.events.synthetic import EPOCH, run_events
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.pipelines import run_pipeline
from tests import pipeline_steps as ps

QUERY = "query($id: ID!) { run(id: $id) { children { runId } } pipeline(runId: $id) { steps { name state } } }"


def _with(events: list[RunEvent], **facets: Any) -> list[RunEvent]:
    return [
        e.model_copy(update={"run": e.run.model_copy(update={"facets": e.run.facets.model_copy(update=facets)})})
        for e in events
    ]


def _data(url: str, token: str, run_id: str) -> Any:
    response = httpx.post(
        url + "/graphql",
        json={"query": QUERY, "variables": {"id": run_id}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


def test_foreign_children_are_hidden_and_forged_step_records_are_harmless(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    pipeline_runtime = RuntimeRunFacet(kind="pipeline")
    beta_pipe = _with(
        run_events(
            "beta-pipe",
            namespace="beta",
            job="flow",
            results={"steps": [{"name": "ok", "state": "COMPLETE", "attempts": "x", "upstream": "y"}, 7, {"no": 1}]},
        ),
        runtime=pipeline_runtime,
    )
    beta_step = _with(
        run_events("beta-step", namespace="beta", job="ok", start=EPOCH),
        parent=ParentRunFacet(run=RunRef(run_id="beta-pipe"), job=JobRef(namespace="beta", name="flow")),
    )
    intruder = _with(
        run_events("alpha-step", namespace="alpha", job="sneaky", start=EPOCH),
        parent=ParentRunFacet(run=RunRef(run_id="beta-pipe"), job=JobRef(namespace="beta", name="flow")),
    )
    log = SqliteEventLog(settings.events_db)
    log.append([*beta_pipe, *beta_step, *intruder])
    log.close()
    tokens = TokenStore(settings.tokens_db)
    beta, alpha = tokens.create(["beta"], name="beta")[1], tokens.create(["alpha"], name="alpha")[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        seen = _data(url, beta, "beta-pipe")
        assert seen["run"]["children"] == [{"runId": "beta-step"}]
        # the malformed record: the well-formed step only, its bad fields dropped; the child it lacks added
        assert seen["pipeline"]["steps"] == [{"name": "ok", "state": "COMPLETE"}]
        assert _data(url, alpha, "beta-pipe") == {"run": None, "pipeline": None}
    # the SDK, the CLI and the controller read the same children: beta's pipeline has one step
    backend = Backend(settings)
    try:
        assert [c.run_id for c in backend.graph().children("beta-pipe")] == ["beta-step"]
    finally:
        backend.close()


def test_a_step_never_reuses_another_projects_run(settings: Settings, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("1 2 3 4")
    backend = Backend(settings)
    try:
        run_pipeline(ps.three, {"raw": str(raw)}, project="beta", backend=backend).raise_for_state()
        alpha = run_pipeline(ps.three, {"raw": str(raw)}, project="alpha", backend=backend).raise_for_state()
        assert {s.state for s in alpha.steps.values()} == {"COMPLETE"}
        assert all(s.cached_from is None for s in alpha.steps.values())
    finally:
        backend.close()
