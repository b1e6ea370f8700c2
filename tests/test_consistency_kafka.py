"""Read-your-writes on the production path: SDK -> Kafka -> projector -> Neo4j, read through the API.

After `provgraph.run` returns on the Kafka transport, a query `@consistentWith` the run's position
waits until the projector has put the run in the graph, even when the projector starts late; a
token not reached in time is an error, not stale data. A run sent to an idle projector after the
graph grew is visible within the bound: Neo4j does not plan the write path again (PLAN_ONCE).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import provgraph as pg
from provgraph._emitter import RunEmitter
from provgraph.api.app import create_app
from provgraph.api.server import ServerThread
from provgraph.events import serde, topics
from provgraph.events.admission import KnownObjects
from provgraph.events.artifacts import ArtifactStore
from provgraph.events.consistency import parse
from provgraph.events.errors import ProjectionError
from provgraph.events.facets import RuntimeRunFacet
from provgraph.events.settings import Settings
from provgraph.events.synthetic import content_hash, dataset, run_events, workload
from provgraph.events.transport.kafka import KafkaConfig, KafkaTransport
from provgraph.graph import neo4j_cypher, neo4j_store, progress
from provgraph.graph.factory import open_store
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.graph.progress import wait_until
from provgraph.services.projector import replay_neo4j
from provgraph.services.projector.app import ensure_topics
from provgraph.services.projector.handlers import BatchProjector
from provgraph.services.records import Record
from tests.test_projector import running

pytestmark = [pytest.mark.kafka, pytest.mark.neo4j]

QUERY = "query Q($t: String!, $i: ID!) @consistentWith(token: $t) { run(id: $i) { runId state results } }"


def work(n: int) -> dict[str, int]:
    return {"double": 2 * n}


def kafka_settings(kafka: str, neo4j: str, home: Path, **extra: Any) -> Settings:
    s = Settings(
        home=home,
        store="neo4j",
        transport="kafka",
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=f"test-{uuid.uuid4().hex[:10]}.",
        neo4j_uri=neo4j,
        **extra,
    )
    ensure_topics(s)
    return s


@pytest.fixture
def graph(neo4j: str, tmp_path: Path) -> Iterator[Neo4jLineageStore]:
    store = Neo4jLineageStore.from_settings(Settings(home=tmp_path / "g", store="neo4j", neo4j_uri=neo4j))
    store.reset()
    yield store
    store.close()


def tracked_run(settings: Settings, n: int) -> pg.RunResult:
    backend = pg.Backend(settings)
    try:
        return pg.run(work, params={"n": n}, backend=backend)
    finally:
        backend.close()


def projected(settings: Settings, token: str) -> None:
    """Waits until the projector has written `token`'s event: it joined and compiled its plans (cold: seconds)."""
    handle = open_store(settings)
    try:
        wait_until(handle, parse(token), 120)
    finally:
        handle.close()


def post(url: str, token: str, run_id: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json={"query": QUERY, "variables": {"t": token, "i": run_id}}, timeout=timeout)


def test_a_query_waits_for_a_late_projector_and_sees_the_run(
    kafka: str, neo4j: str, tmp_path: Path, graph: Neo4jLineageStore
) -> None:
    # The request's own budget bounds its wait too: a fresh stack's projector may start after 10 s.
    settings = kafka_settings(kafka, neo4j, tmp_path / "home", consistency_timeout_s=60, api_query_timeout_s=60)
    result = tracked_run(settings, 21)
    assert result.position is not None
    position = parse(result.position)
    assert position.kind == "kafka" and position.topic == topics.topic(topics.LINEAGE, settings.kafka_topic_prefix)
    answers: list[tuple[float, httpx.Response]] = []
    with ServerThread(create_app(settings, insecure_local=True)) as url:

        def ask() -> None:
            answer = post(url, result.position or "", result.run_id)
            answers.append((time.monotonic(), answer))

        asking = threading.Thread(target=ask)
        asking.start()
        time.sleep(2.0)
        assert asking.is_alive() and not answers, "answered before anything was projected"
        assert graph.run(result.run_id) is None
        started = time.monotonic()
        with running(settings):
            asking.join(60)
            assert not asking.is_alive()
        answered_at, answer = answers[0]
    assert answered_at > started
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"run": {"runId": result.run_id, "state": "COMPLETE", "results": {"double": 42}}}}
    assert graph.kafka_progress()[(position.topic, position.partition)] > position.offset
    handle = open_store(settings)
    try:
        wait_until(handle, position, 1.0)  # the CLI's wait: reached at once now
    finally:
        handle.close()


def test_a_token_not_reached_in_time_is_an_error_not_stale_data(
    kafka: str, neo4j: str, tmp_path: Path, graph: Neo4jLineageStore
) -> None:
    settings = kafka_settings(kafka, neo4j, tmp_path / "home", consistency_timeout_s=0.5)
    result = tracked_run(settings, 1)
    assert result.position is not None
    with ServerThread(create_app(settings, insecure_local=True)) as url:
        before = time.monotonic()
        answer = post(url, result.position, result.run_id)
        waited = time.monotonic() - before
        bad = post(url, "sqlite:1", result.run_id)
    assert 0.5 <= waited < 5
    assert answer.status_code == 200
    body = answer.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_CONSISTENT"]
    assert body["errors"][0]["message"] == (
        f"the graph did not reach {result.position} within 0.5s (next offset to project 0)"
    )
    assert bad.status_code == 400
    assert bad.text == "consistency token sqlite:1 is for the embedded event log; this graph is fed by Kafka"


def test_a_replay_publishes_the_progress_it_rebuilt(
    kafka: str, neo4j: str, tmp_path: Path, graph: Neo4jLineageStore
) -> None:
    """`reset` drops the progress nodes with the graph; the replay puts back how far it projected."""
    settings = kafka_settings(kafka, neo4j, tmp_path / "home", consistency_timeout_s=0.5)
    result = tracked_run(settings, 2)
    assert result.position is not None
    position = parse(result.position)
    replay_neo4j(settings)
    assert graph.kafka_progress()[(position.topic, position.partition)] == position.offset + 1
    handle = open_store(settings)
    try:
        wait_until(handle, position, 0.5)
    finally:
        handle.close()
    assert graph.run(result.run_id) is not None


def test_a_spooled_event_gets_its_position_when_a_flush_delivers_it(kafka: str, tmp_path: Path) -> None:
    """While Kafka is unreachable the position is unknown; the transport that re-sends the spool
    (here a second one, as `provgraph spool flush` in another process would) knows it."""
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    down = KafkaConfig(
        bootstrap_servers="127.0.0.1:1",
        spool_dir=tmp_path / "spool",
        topic_prefix=prefix,
        partitions=1,
        delivery_timeout_s=0.5,
    )
    offline = KafkaTransport(down)
    emitter = RunEmitter(offline, run_id="spooled-run", namespace="demo", job_name="j", code=None)
    emitter.start({}, RuntimeRunFacet(kind="local"))
    emitter.complete({"ok": 1})
    assert offline.pending == 2 and emitter.position() is None
    offline.close(timeout=0)
    online = KafkaTransport(down.model_copy(update={"bootstrap_servers": kafka, "delivery_timeout_s": 10.0}))
    try:
        assert online.flush(timeout=60)
        position = online.position("spooled-run")
        assert position is not None
        assert str(position) == f"kafka:{topics.topic(topics.LINEAGE, prefix)}:0:1"  # the second record
    finally:
        online.close()


def test_a_run_sent_to_an_idle_projector_after_the_graph_grew_is_visible_within_the_bound(
    kafka: str, neo4j: str, tmp_path: Path, graph: Neo4jLineageStore
) -> None:
    """Neo4j plans a cached statement again once the graph's statistics moved and 10 s passed
    (`dbms.cypher.min_replan_interval`); planning the projector's run merge took seconds, so the next
    batch after the graph grew, and every read waiting on it, stalled past the 5 s bound (an error).
    How long the wait takes is `bench_latency`'s figure, not asserted here."""
    settings = kafka_settings(kafka, neo4j, tmp_path / "home", consistency_timeout_s=5)
    first = tracked_run(settings, 1)
    assert first.position is not None
    with running(settings), ServerThread(create_app(settings, insecure_local=True)) as url:
        projected(settings, first.position)
        graph.apply(list(workload(300, namespace="grown")))  # ~100x the nodes: every statistic moves
        time.sleep(11)  # past the minimum replan interval
        result = tracked_run(settings, 2)
        assert result.position is not None
        answer = post(url, result.position, result.run_id)
    assert answer.json() == {"data": {"run": {"runId": result.run_id, "state": "COMPLETE", "results": {"double": 4}}}}


def plan_operators(plan: Any) -> set[str]:
    """Every operator of an EXPLAINed plan, without its runtime suffix (`NodeIndexSeek@neo4j`)."""
    found = {plan["operatorType"].split("@")[0]}
    for child in plan.get("children", []):
        found |= plan_operators(child)
    return found


def test_statements_planned_once_find_nodes_through_indexes_even_on_an_empty_graph(
    graph: Neo4jLineageStore,
) -> None:
    """PLAN_ONCE keeps the first plan however the graph grows: it must be the plan a full graph gets."""
    planned_once = {
        "batch": neo4j_store.BATCH,
        "advance_progress": progress.ADVANCE,
        "run_detail": neo4j_cypher.PLAN_ONCE + "MATCH (r:Run {run_id: $run_id})" + neo4j_cypher.RUN_DETAIL,
    }
    scans = {"AllNodesScan", "NodeByLabelScan", "DirectedAllRelationshipsScan", "UndirectedAllRelationshipsScan"}
    assert not any(graph.count().values())  # planned on an empty graph
    with graph._driver.session() as s:
        for name, statement in planned_once.items():
            assert statement.startswith(neo4j_cypher.PLAN_ONCE), name
            fresh = "EXPLAIN CYPHER replan=force " + statement.removeprefix(neo4j_cypher.PLAN_ONCE)
            lists: dict[str, list[object]] = {part: [] for part, _ in neo4j_store.BATCH_PARTS}
            plan = s.run(fresh, {"batch": lists, "run_id": "x"}).consume().plan
            assert plan is not None
            operators = plan_operators(plan)
            assert not operators & scans, f"{name}: {sorted(operators)}"
            assert operators & {"NodeUniqueIndexSeek", "NodeIndexSeek", "Merge"}, f"{name}: {sorted(operators)}"


def test_the_progress_commits_with_its_batch_and_never_without_it(graph: Neo4jLineageStore) -> None:
    """The projector's progress is the last statement of its batch's transaction (no commit of its own,
    so a waiting reader sees it as soon as the data): a batch the graph refuses leaves it where it was."""
    good = list(workload(2, namespace="good"))
    graph.apply_prepared(graph.prepare(good), offsets={("t", 0): len(good), ("t", 1): 3})
    assert graph.kafka_progress() == {("t", 0): len(good), ("t", 1): 3}
    assert graph.run(good[-1].run.run_id) is not None
    too_big = run_events("too-big", inputs=[dataset("file", "/x" * 20_000, content_hash("big"), "data")])
    with pytest.raises(ProjectionError):
        graph.apply_prepared(graph.prepare(too_big), offsets={("t", 0): 99})
    assert graph.kafka_progress() == {("t", 0): len(good), ("t", 1): 3}
    assert graph.run("too-big") is None


def test_a_bisected_batch_publishes_its_progress_once_its_valid_records_are_in(
    graph: Neo4jLineageStore, tmp_path: Path
) -> None:
    """A batch with a record the graph refuses is written in parts; the progress past the whole batch
    follows the last part, and the refused record is a dead letter."""
    too_big = run_events("too-big", inputs=[dataset("file", "/x" * 20_000, content_hash("big"), "data")])[1]
    events = [*run_events("before"), too_big, *run_events("after")]
    records = [Record("t", 0, 10 + i, e.root_run_id.encode(), serde.dumps(e)) for i, e in enumerate(events)]
    projector = BatchProjector(graph, KnownObjects(ArtifactStore(str(tmp_path / "artifacts"))))
    dead = projector.write(projector.prepare(records), publish=True)
    assert [r.offset for r, _ in dead] == [10 + events.index(too_big)]
    assert graph.kafka_progress() == {("t", 0): 10 + len(events)}
    assert graph.run("before") is not None and graph.run("after") is not None
