"""Run labels and annotations where users look: GraphQL `Run.labels`/`annotations` and `runs(filter:)`
on both stores, `provgraph show` and `provgraph runs --where` from a handler that calls `set_label`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from provgraph.api.app import create_app
from provgraph.api.server import ServerThread
from provgraph.events.facets import EventRunFacet, LabelsRunFacet
from provgraph.events.model import EventType, Job, Run, RunEvent, RunFacets
from provgraph.events.synthetic import EPOCH, run_events
from tests.test_api import Api, make_tokens, store_settings
from tests.test_cli import cli as cli


def _labelled(run_id: str, labels: dict[str, str], **notes: str) -> RunEvent:
    return RunEvent(
        event_type=EventType.RUNNING,
        event_time=EPOCH + timedelta(minutes=5),
        run=Run(
            run_id=run_id,
            facets=RunFacets(
                event=EventRunFacet(event_id=f"{run_id}:labels", seq=5),
                labels=LabelsRunFacet(labels=labels, annotations=notes),
            ),
        ),
        job=Job(namespace="demo", name="train"),
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)], ids=["sqlite", "neo4j"]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    events = [
        *run_events("l1", namespace="demo", job="train", start=EPOCH),
        _labelled("l1", {"team": "nlp", "app.kubernetes.io/name": "trainer"}, message="tuned"),
        *run_events("l2", namespace="demo", job="train", start=EPOCH + timedelta(minutes=1)),
    ]
    settings = store_settings(request.param, tmp_path_factory.mktemp(f"labels-{request.param}"), request, events)
    with ServerThread(create_app(settings)) as url:
        yield Api(url, request.param, make_tokens(settings))


def test_graphql_shows_and_filters_by_labels(api: Api) -> None:
    run = api.data('{ run(id: "l1") { labels annotations } }')["run"]
    assert run == {"labels": {"team": "nlp", "app.kubernetes.io/name": "trainer"}, "annotations": {"message": "tuned"}}
    assert api.data('{ run(id: "l2") { labels annotations } }')["run"] == {"labels": {}, "annotations": {}}
    q = 'query($f: String!) { runs(project: "demo", filter: $f) { edges { node { runId } } } }'
    found = api.data(q, f="labels.app.kubernetes.io/name = trainer and labels.team != cv")["runs"]["edges"]
    assert [e["node"]["runId"] for e in found] == ["l1"]


HANDLER = """
def train(context, n: int = 1):
    context.set_label("team", "vision")
    context.set_annotation("note", "first try")
    return {"n": n}
"""


@pytest.mark.slow
def test_show_and_where_from_set_label(cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(HANDLER)
    cli("run", "train.py:train")
    listed = cli("runs", "--where", "labels.team = vision", "--json").stdout
    [run] = [json.loads(line) for line in listed.splitlines()]
    assert run["labels"] == {"team": "vision"} and run["annotations"] == {"note": "first try"}
    shown = cli("show", run["run_id"]).stdout
    assert '  labels    team="vision"' in shown and '  notes     note="first try"' in shown
    assert cli("runs", "--where", "labels.team = nlp", "--json").stdout == ""
