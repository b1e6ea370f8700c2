"""A token (or a producer) writes only what belongs to its projects (issue #9, section 1).

Project `beta` has a completed run `beta-run` that wrote `store://beta/model`. Writers for
project `alpha` try, on every write path, to (1) overwrite `beta-run` by sending events with its
run id, (2) plant a version of `store://beta/model` that beta's next run would read as the latest,
(3) name `store://` versions that are no content hash or whose object does not exist. Each attempt
is refused with an exact answer, and beta's run and latest model stay exactly as they were.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import provgraph as pg
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events import serde
from provgraph.events.artifacts import ArtifactStore
from provgraph.events.errors import ContractError, Forbidden
from provgraph.events.facets import (
    ArtifactDatasetFacet,
    BindingFacet,
    DatasetVersionDatasetFacet,
    ErrorMessageRunFacet,
    EventRunFacet,
    JobRef,
    ParamsRunFacet,
    ParentRunFacet,
    RunRef,
)
from provgraph.events.model import Dataset, DatasetFacets, EventType, Job, Run, RunEvent, RunFacets
from provgraph.events.settings import Settings
from provgraph.events.synthetic import EPOCH, content_hash
from provgraph.events.transport.base import Transport
from provgraph.events.transport.factory import create_transport
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.contract import LineageStore

BETA_RUN = "beta-run"
RUN_QUERY = (
    "query($id: ID!) { run(id: $id) { project state params results error { message } outputs { name version } } }"
)
MODEL_QUERY = '{ dataset(namespace: "store://beta", name: "model") { versions { version } } }'


def store_dataset(project: str, name: str, version: str | None, *, output: bool) -> Dataset:
    bind = {BindingFacet.FACET_NAME: {"name": name}}
    return Dataset(
        namespace=f"store://{project}",
        name=name,
        facets=DatasetFacets(
            version=None if version is None else DatasetVersionDatasetFacet(dataset_version=version),
            artifact=ArtifactDatasetFacet(kind="model"),
        ),
        output_facets=bind if output else None,
        input_facets=None if output else bind,
    )


def event(
    run_id: str,
    namespace: str,
    *,
    seq: int = 1,
    kind: EventType = EventType.COMPLETE,
    params: dict[str, Any] | None = None,
    error: str | None = None,
    inputs: Sequence[Dataset] = (),
    outputs: Sequence[Dataset] = (),
    when: datetime = EPOCH,
) -> RunEvent:
    return RunEvent(
        event_type=kind,
        event_time=when + timedelta(seconds=seq),
        run=Run(
            run_id=run_id,
            facets=RunFacets(
                event=EventRunFacet(event_id=f"{run_id}:{namespace}:{seq}", seq=seq),
                params=ParamsRunFacet(params=params) if params is not None else None,
                error_message=ErrorMessageRunFacet(message=error) if error else None,
            ),
        ),
        job=Job(namespace=namespace, name="train"),
        inputs=list(inputs),
        outputs=list(outputs),
    )


class World:
    """Beta's run and model in the artifact store; digests alpha can name."""

    def __init__(self, settings: Settings) -> None:
        artifacts = ArtifactStore(settings.artifact_url, settings.s3_endpoint_url)
        self.beta_model, _ = artifacts.put_bytes(b"beta weights")
        self.alpha_model, _ = artifacts.put_bytes(b"alpha weights")
        self.missing = content_hash("never stored")
        self.beta_events = [
            event(BETA_RUN, "beta", seq=1, kind=EventType.START, params={"lr": 0.1}),
            event(BETA_RUN, "beta", seq=2, kind=EventType.RUNNING, outputs=[self.model("beta", self.beta_model)]),
            event(BETA_RUN, "beta", seq=3, kind=EventType.COMPLETE),
        ]

    @staticmethod
    def model(project: str, version: str | None) -> Dataset:
        return store_dataset(project, "model", version, output=True)

    def hijack(self) -> RunEvent:
        """Alpha's event for beta's run id: later seq, so it would win every run property."""
        return event(BETA_RUN, "alpha", seq=99, kind=EventType.FAIL, params={"evil": True}, error="pwned")

    def plant(self, run_id: str = "alpha-run") -> RunEvent:
        """Alpha's run writing a version of beta's model, newer than beta's."""
        return event(run_id, "alpha", outputs=[self.model("beta", self.alpha_model)], when=datetime.now(UTC))


def copy(ctx: pg.Context, data: pg.DataItem) -> None:
    ctx.log_artifact("copy", body=data.get())


def beta_is_intact(run: dict[str, Any], versions: list[dict[str, str]], world: World) -> None:
    assert run == {
        "project": "beta",
        "state": "COMPLETE",
        "params": {"lr": 0.1},
        "results": {},
        "error": None,
        "outputs": [{"name": "model", "version": world.beta_model}],
    }
    assert versions == [{"version": world.beta_model}]


# -- the embedded event log (what the SDK's embedded transport and the embedded API write to) ------------


def test_the_embedded_log_keeps_runs_and_artifacts_in_their_project(settings: Settings) -> None:
    world = World(settings)
    log = SqliteEventLog(settings.events_db)
    assert log.append(world.beta_events) == 3
    with pytest.raises(
        Forbidden, match="run 'beta-run' belongs to project 'beta'; an event with job namespace 'alpha'"
    ):
        log.append([world.hijack()])
    with pytest.raises(Forbidden, match="run 'alpha-run' of project 'alpha' may not write store://beta/model"):
        log.append([world.plant()])
    with pytest.raises(ContractError, match="output store://alpha/model: version 'unversioned' is not a content hash"):
        log.append([event("alpha-run", "alpha", outputs=[world.model("alpha", None)])])
    with pytest.raises(ContractError, match="input store://beta/model: version 'SHA256:AB' is not a content hash"):
        log.append([event("alpha-run", "alpha", inputs=[store_dataset("beta", "model", "SHA256:AB", output=False)])])
    squat = store_dataset("beta", "model", world.beta_model, output=True)
    squat = squat.model_copy(update={"namespace": "store", "name": "//beta:model"})
    with pytest.raises(ContractError, match="output store///beta:model: its id would read as store://beta/model"):
        log.append([event("alpha-run", "alpha", outputs=[squat])])
    # a batch that claims one new run for two projects is refused whole
    with pytest.raises(Forbidden, match="run 'new-run' belongs to project 'alpha'"):
        log.append([event("new-run", "alpha", seq=1), event("new-run", "beta", seq=2)])
    assert log.count() == 3 and log.owners([BETA_RUN, "new-run", "alpha-run"]) == {BETA_RUN: "beta"}
    # alpha's own run and artifact are fine, and reading beta's pinned model is a shared read
    read = store_dataset("beta", "model", world.beta_model, output=False)
    assert log.append([event("alpha-run", "alpha", inputs=[read], outputs=[world.model("alpha", world.alpha_model)])])
    assert log.owners(["alpha-run"]) == {"alpha-run": "alpha"}
    log.close()


def test_a_log_from_before_run_owners_gets_them_from_its_first_events(settings: Settings) -> None:
    world = World(settings)
    log = SqliteEventLog(settings.events_db)
    log.append(world.beta_events)
    log.close()
    conn = sqlite3.connect(settings.events_db)  # what an older provgraph left behind
    conn.executescript("DROP TABLE run_owner; PRAGMA user_version = 0;")
    conn.close()
    log = SqliteEventLog(settings.events_db)
    assert log.owners([BETA_RUN]) == {BETA_RUN: "beta"}
    with pytest.raises(Forbidden, match="run 'beta-run' belongs to project 'beta'"):
        log.append([world.hijack()])
    log.close()


def test_sdk_runs_and_reproductions_write_only_their_own_project(settings: Settings, tmp_path: Path) -> None:
    """The SDK's own events pass the rules: outputs under store://<run's project>, content hashes."""
    (tmp_path / "in.txt").write_text("x")
    backend = pg.Backend(settings.model_copy(update={"project": "beta"}))
    first = pg.run(copy, inputs={"data": str(tmp_path / "in.txt")}, backend=backend).raise_for_state()
    again = pg.reproduce(first.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED"
    assert again.outputs["copy"] == first.outputs["copy"] and first.outputs["copy"].startswith("store://beta/copy@")
    log = SqliteEventLog(settings.events_db)
    assert log.owners([first.run_id, again.run_id]) == {first.run_id: "beta", again.run_id: "beta"}
    log.close()
    backend.close()


# -- the API: embedded, and Kafka -> projector -> Neo4j ---------------------------------------------------


class Api:
    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url, self.tokens = url, tokens

    def post(self, token: str, e: RunEvent | dict[str, Any]) -> httpx.Response:
        body = serde.to_dict(e) if isinstance(e, RunEvent) else e
        return httpx.post(
            f"{self.url}/api/v1/lineage",
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[token]}"},
            timeout=30,
        )

    def data(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        from tests.helpers import graphql_data  # not at the top: reproductions load this module as handler code

        return graphql_data(self.url, self.tokens[token], query, **variables)

    def beta(self) -> tuple[dict[str, Any], list[dict[str, str]]]:
        run = self.data("beta", RUN_QUERY, id=BETA_RUN)["run"]
        return run, self.data("beta", MODEL_QUERY)["dataset"]["versions"]


def issue(settings: Settings) -> dict[str, str]:
    store = TokenStore(settings.tokens_db)
    tokens = {name: store.create(projects)[1] for name, projects in (("alpha", ["alpha"]), ("beta", ["beta"]))}
    tokens["both"] = store.create(["alpha", "beta"])[1]
    store.close()
    return tokens


def attack_through(api: Api, world: World) -> list[str]:
    """Every refused write, with its exact answer; returns the run ids alpha may still write."""

    def refused(token: str, e: RunEvent | dict[str, Any], status: int, message: str) -> None:
        response = api.post(token, e)
        assert (response.status_code, response.json()) == (status, {"error": message})

    refused("alpha", world.hijack(), 403, "run 'beta-run' belongs to a project this token may not write to")
    refused(
        "both",
        world.hijack(),
        403,
        "run 'beta-run' belongs to project 'beta'; an event with job namespace 'alpha' may not write to it",
    )
    refused(
        "alpha", event(BETA_RUN, "beta", seq=99), 403, "this token may not write to project 'beta' (the job namespace)"
    )
    refused(
        "alpha",
        world.plant(),
        403,
        "run 'alpha-run' of project 'alpha' may not write store://beta/model:"
        " a run writes logged artifacts only in its own project (store://alpha)",
    )
    refused(
        "alpha",
        event("alpha-run", "alpha", inputs=[store_dataset("beta", "model", world.beta_model, output=False)]),
        403,
        "this token may not use input store://beta/model: project 'beta'",
    )
    refused(
        "alpha",
        event("alpha-run", "alpha", outputs=[world.model("alpha", None)]),
        400,
        "output store://alpha/model: version 'unversioned' is not a content hash"
        " (sha256: followed by 64 lowercase hex digits)",
    )
    refused(
        "alpha",
        event("alpha-run", "alpha", outputs=[world.model("alpha", "sha256:" + "A" * 64)]),
        400,
        f"output store://alpha/model: version {'sha256:' + 'A' * 64!r} is not a content hash"
        " (sha256: followed by 64 lowercase hex digits)",
    )
    for role in ("output", "input"):  # a name that makes beta's artifact's id out of another namespace
        squat = store_dataset("beta", "model", world.beta_model, output=role == "output")
        squat = squat.model_copy(update={"namespace": "store", "name": "//beta:model"})
        refused(
            "alpha",
            event(
                "alpha-run",
                "alpha",
                inputs=[squat] if role == "input" else [],
                outputs=[squat] if role == "output" else [],
            ),
            400,
            f"{role} store///beta:model: its id would read as store://beta/model, a dataset of a project's"
            " artifact store (store://<project>); name it without that prefix",
        )
    adopted = event("alpha-run", "alpha")  # a step of beta's run, would beta's pipeline show it
    parent = ParentRunFacet(run=RunRef(run_id=BETA_RUN), job=JobRef(namespace="alpha", name="flow"))
    adopted = adopted.model_copy(
        update={
            "run": adopted.run.model_copy(update={"facets": adopted.run.facets.model_copy(update={"parent": parent})})
        }
    )
    refused(
        "alpha", adopted, 403, "run 'beta-run', this run's parent, belongs to a project this token may not write to"
    )
    response = api.post("alpha", event("alpha-run", "alpha", outputs=[world.model("alpha", world.missing)]))
    assert response.status_code == 400
    assert response.json()["error"].startswith("an output or a tagged version is not in the artifact store")
    # alpha's own run writing its own artifact is accepted
    own = event("alpha-run", "alpha", outputs=[world.model("alpha", world.alpha_model)])
    assert api.post("alpha", own).json() == {"runId": "alpha-run", "eventType": "COMPLETE"}
    return ["alpha-run"]


@pytest.fixture
def embedded_api(settings: Settings) -> Iterator[tuple[Api, World]]:
    world = World(settings)
    log = SqliteEventLog(settings.events_db)
    log.append(world.beta_events)
    log.close()
    tokens = issue(settings)
    with ServerThread(create_app(settings)) as url:
        yield Api(url, tokens), world


def test_api_embedded_refuses_foreign_runs_artifacts_and_bad_versions(
    embedded_api: tuple[Api, World], settings: Settings
) -> None:
    api, world = embedded_api
    attack_through(api, world)
    log = SqliteEventLog(settings.events_db)
    assert log.count() == 4  # beta's three, alpha's own one
    log.close()
    run, versions = api.beta()
    beta_is_intact(run, versions, world)
    assert api.data("alpha", RUN_QUERY, id="alpha-run")["run"]["outputs"] == [
        {"name": "model", "version": world.alpha_model}
    ]


def kafka_world(kafka: str, neo4j: str, tmp_path: Path) -> tuple[Settings, LineageStore, World, Transport]:
    """Kafka + Neo4j settings on fresh topics and an empty graph, with beta's run already emitted."""
    from provgraph.graph.neo4j_store import Neo4jLineageStore
    from provgraph.services.projector.app import ensure_topics

    settings = Settings(
        home=tmp_path / "home",
        store="neo4j",
        transport="kafka",
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=f"test-{uuid.uuid4().hex[:10]}.",
        neo4j_uri=neo4j,
    )
    ensure_topics(settings)
    graph = Neo4jLineageStore.from_settings(settings)
    graph.reset()
    world = World(settings)
    transport = create_transport(settings)
    for e in world.beta_events:
        transport.emit(e)
    return settings, graph, world, transport


@pytest.mark.kafka
@pytest.mark.neo4j
def test_api_with_kafka_and_the_projector_refuses_the_same(kafka: str, neo4j: str, tmp_path: Path) -> None:
    from provgraph.services.projector import list_dlq
    from tests.test_projector import caught_up, running

    settings, graph, world, transport = kafka_world(kafka, neo4j, tmp_path)
    assert transport.close(30)
    with running(settings):
        caught_up(settings)
        with ServerThread(create_app(settings)) as url:
            api = Api(url, issue(settings))
            attack_through(api, world)
            caught_up(settings)
            run, versions = api.beta()
            beta_is_intact(run, versions, world)
            assert api.data("alpha", RUN_QUERY, id="alpha-run")["run"]["project"] == "alpha"
    assert list_dlq(settings) == []  # the API forwarded nothing the projector had to refuse
    graph.close()


# -- the Kafka topic: SDK transport -> projector -> DLQ -------------------------------------------------


@pytest.mark.kafka
@pytest.mark.neo4j
def test_the_projector_dead_letters_what_no_producer_may_write(kafka: str, neo4j: str, tmp_path: Path) -> None:
    from provgraph.services.projector import list_dlq
    from tests.helpers import wait_for
    from tests.test_projector import caught_up, running

    settings, graph, world, transport = kafka_world(kafka, neo4j, tmp_path)
    assert transport.flush(30)
    refused = [
        (world.hijack(), ("project", "run 'beta-run' belongs to project 'beta'; an event with job namespace 'alpha'")),
        (world.plant(), ("admit", "run 'alpha-run' of project 'alpha' may not write store://beta/model")),
        (
            event("bad-1", "alpha", outputs=[world.model("alpha", "latest")]),
            ("admit", "output store://alpha/model: version 'latest' is not a content hash"),
        ),
        (
            event("bad-2", "alpha", inputs=[store_dataset("beta", "model", None, output=False)]),
            ("admit", "input store://beta/model: version 'unversioned' is not a content hash"),
        ),
        (
            event("bad-3", "alpha", outputs=[world.model("alpha", world.missing)]),
            ("admit", f"output store://alpha/model@{world.missing}: no such object in the artifact store"),
        ),
        # claimed by alpha just before, on the same partition (same key): beta's event is refused
        (event("contested", "beta", seq=2), ("project", "run 'contested' belongs to project 'alpha'")),
    ]
    with running(settings):
        caught_up(settings)  # beta's run is in the graph before the attack
        transport.emit(event("contested", "alpha", seq=1))
        for e, _ in refused:
            transport.emit(e)
        transport.emit(event("alpha-run", "alpha", outputs=[world.model("alpha", world.alpha_model)]))
        assert transport.close(30)
        caught_up(settings)
        wait_for("the dead letters", lambda: len(list_dlq(settings)) == len(refused), 30)
    letters = {d.original_bytes: d for d in list_dlq(settings)}
    for e, (stage, message) in refused:
        letter = letters[serde.dumps(e)]
        assert letter.stage == stage and message in letter.error, (letter.stage, letter.error)
    beta = graph.run(BETA_RUN)
    assert beta is not None and (beta.namespace, beta.state, beta.params, beta.error) == (
        "beta",
        "COMPLETE",
        {"lr": 0.1},
        None,
    )
    latest = graph.latest_version("store://beta", "model")
    assert latest is not None and latest.version == world.beta_model
    assert graph.run_owners(["contested", "alpha-run", "bad-1"]) == {"contested": "alpha", "alpha-run": "alpha"}
    graph.close()


# -- the reproduce mutation ------------------------------------------------------------------------------


def test_reproduce_mutation_refuses_runs_outside_the_tokens_projects(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("hello")
    backend = pg.Backend(settings.model_copy(update={"project": "beta"}))
    original = pg.run(copy, inputs={"data": str(tmp_path / "in.txt")}, backend=backend).raise_for_state()
    backend.close()
    tokens = issue(settings)
    events_before = SqliteEventLog(settings.events_db).count()
    mutation = "mutation($id: ID!) { reproduce(runId: $id) { runId state } }"
    with ServerThread(create_app(settings)) as url:
        for run_id in (original.run_id, f"run:{original.run_id}"):
            response = httpx.post(
                f"{url}/graphql",
                json={"query": mutation, "variables": {"id": run_id}},
                headers={"Authorization": f"Bearer {tokens['alpha']}"},
                timeout=60,
            )
            body = response.json()
            assert response.status_code == 200 and body["data"] is None
            assert [e["message"] for e in body["errors"]] == [f"no such run: {run_id}"]
        api = Api(url, tokens)
        runs = api.data("beta", "{ runs { nodes { runId } } }")["runs"]["nodes"]
    assert [r["runId"] for r in runs] == [original.run_id]  # nothing was reproduced
    assert SqliteEventLog(settings.events_db).count() == events_before
