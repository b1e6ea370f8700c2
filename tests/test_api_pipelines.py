"""GraphQL for pipelines over HTTP: `Run.children`, `Run.cachedFrom` and `pipeline(runId)` on a
real pipeline run (embedded store), with project scoping."""

from __future__ import annotations

from pathlib import Path

import httpx

from provgraph import Backend, Settings
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.pipelines import run_pipeline
from tests import pipeline_steps as ps

QUERY = """
query($id: ID!) {
  pipeline(runId: $id) {
    run { jobName state children { jobName state cachedFrom parent { runId } } }
    steps { name state runId cachedFrom upstream attempts reason }
  }
}
"""


def _post(url: str, token: str, query: str, **variables: object) -> dict[str, object]:
    response = httpx.post(
        url + "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]  # type: ignore[no-any-return]


def test_pipeline_dag_and_children_over_graphql(settings: Settings, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("1 2 3 4")
    backend = Backend(settings)
    try:
        first = run_pipeline(ps.three, {"raw": str(raw)}, project="demo", backend=backend).raise_for_state()
        again = run_pipeline(ps.three, {"raw": str(raw)}, project="demo", backend=backend).raise_for_state()
    finally:
        backend.close()
    tokens = TokenStore(settings.tokens_db)
    demo, other = tokens.create(["demo"], name="demo")[1], tokens.create(["other"], name="other")[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        data = _post(url, demo, QUERY, id=again.run_id)["pipeline"]
        assert data["run"]["jobName"] == "three" and data["run"]["state"] == "COMPLETE"  # type: ignore[index]
        assert data["run"]["children"] == [  # type: ignore[index]
            {"jobName": n, "state": "COMPLETE", "cachedFrom": first.steps[n].run_id, "parent": {"runId": again.run_id}}
            for n in ("prepare", "train", "evaluate")
        ]
        assert data["steps"] == [  # type: ignore[index]
            {
                "name": n,
                "state": "CACHED",
                "runId": again.steps[n].run_id,
                "cachedFrom": first.steps[n].run_id,
                "upstream": up,
                "attempts": 0,
                "reason": None,
            }
            for n, up in (("prepare", []), ("train", ["prepare"]), ("evaluate", ["prepare", "train"]))
        ]
        # another project's token sees no pipeline, and a step run is not a pipeline
        assert _post(url, other, QUERY, id=again.run_id) == {"pipeline": None}
        assert _post(url, demo, QUERY, id=first.steps["train"].run_id or "") == {"pipeline": None}
