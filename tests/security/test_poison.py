"""One bad value can never stop the graph (issue #9, section 2).

Attack cases: a NaN metric, out-of-range numbers and dates, events the projection refuses, a
damaged graph file, a replaced event log, an interrupted replay, a reused event id, and search
text that is all wildcards or 50,000 characters long.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

import provgraph as pg
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.errors import ConfigError, ContractError, EventConflict, ProjectionError
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps, loads
from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph import sqlite_db
from provgraph.graph.contract import MAX_SEARCH_TEXT, LineageStore
from provgraph.graph.embedded import EmbeddedProjector, rebuild
from provgraph.graph.ids import parse_node_id
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction
from tests.helpers import graphql

BIN = Path(sys.executable).parent / "provgraph"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(home), COLUMNS="250", NO_COLOR="1")
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, cwd=home.parent, timeout=120)


def diverging(ctx: pg.Context) -> dict[str, Any]:
    ctx.log_metric("loss", float("nan"), step=1)
    ctx.log_metric("grad", float("inf"), step=1)
    ctx.log_metric("gain", float("-inf"), step=1)
    ctx.log_model("model", body=b"weights")
    return {"ok": True}


def healthy(ctx: pg.Context, model: pg.DataItem) -> None:
    model.get()
    ctx.log_metric("loss", 0.25, step=1)


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventType": "START",
        "eventTime": "2026-01-01T00:00:00Z",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "demo", "name": "job"},
        "producer": "https://example.com/producer",
    }
    for path, value in overrides.items():
        target = body
        *parents, leaf = path.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return body


# -- NaN metrics are data -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_nan_metric_is_recorded_faithfully_and_every_read_still_works(
    settings: Settings, backend: pg.Backend
) -> None:
    first = pg.run(diverging, project="demo", backend=backend)
    second = pg.run(healthy, project="demo", inputs={"model": first.outputs["model"]}, backend=backend)
    assert (first.state, second.state) == ("COMPLETE", "COMPLETE")

    log = SqliteEventLog(settings.events_db)
    points = [
        p
        for r in log.read()
        for p in json.loads(r.body)["run"]["facets"].get("provgraph_metrics", {}).get("metrics", [])
    ]
    log.close()
    assert sorted(((p["key"], p["value"]) for p in points), key=str) == [
        ("gain", "-Infinity"),
        ("grad", "Infinity"),
        ("loss", "NaN"),
        ("loss", 0.25),
    ]

    graph = backend.graph()
    view = graph.run(first.run_id)
    assert view is not None
    assert math.isnan(view.metrics["loss"]) and view.metrics["grad"] == math.inf and view.metrics["gain"] == -math.inf
    assert json.loads(view.model_dump_json())["metrics"] == {"gain": "-Infinity", "grad": "Infinity", "loss": "NaN"}
    assert [r.run_id for r in graph.runs()] == [second.run_id, first.run_id]
    lineage = graph.lineage(parse_node_id(f"run:{second.run_id}"), Direction.UPSTREAM)
    assert f"run:{first.run_id}" in {n.id for n in lineage.nodes}

    home = settings.home
    assert first.run_id in cli(home, "runs").stdout
    shown = cli(home, "show", first.run_id)
    assert shown.returncode == 0 and "loss=NaN" in shown.stdout and "grad=Infinity" in shown.stdout, shown.stderr
    lineage_cli = cli(home, "lineage", first.outputs["model"], "--downstream")
    assert lineage_cli.returncode == 0 and "healthy" in lineage_cli.stdout, lineage_cli.stderr
    replayed = cli(home, "replay", "--yes")
    assert replayed.returncode == 0 and "replayed 6 events" in replayed.stdout, replayed.stdout + replayed.stderr
    assert [r.run_id for r in backend.graph().runs()] == [second.run_id, first.run_id]


def test_nan_in_params_is_refused_with_the_path_and_in_results_kept_as_text_never_null(
    backend: pg.Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """A NaN param is refused before the run (its path named). A NaN result (a handler's AUC over one
    class) is recorded as the text "NaN" with a warning naming it, as metrics show it: the run keeps its
    work, the contract still refuses a non-finite number in results, and nothing becomes null."""

    def returns_nan() -> dict[str, float]:
        return {"loss": float("nan"), "gain": float("-inf")}

    with pytest.raises(ContractError, match=r"provgraph_params\.params\.lr: NaN is not a JSON number"):
        pg.run(healthy_free, params={"lr": float("nan")}, backend=backend)
    result = pg.run(returns_nan, backend=backend)
    assert result.state == "COMPLETE"
    view = backend.graph().run(result.run_id)
    assert view is not None and view.results == {"loss": "NaN", "gain": "-Infinity"}
    assert "loss" in caplog.text


# -- out-of-range values: 400 naming the field ------------------------------------------------------


class Api:
    def __init__(self, url: str, token: str, settings: Settings) -> None:
        self.url, self.token, self.settings = url, token, settings

    def post(self, body: dict[str, Any] | bytes) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return httpx.post(self.url + "/api/v1/lineage", content=content, headers=headers, timeout=30)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql(self.url, self.token, query, **variables)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(home=tmp_path / "home")
    tokens = TokenStore(settings.tokens_db)
    _, token = tokens.create(["demo"], name="producer")
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        yield Api(url, token, settings)


OUT_OF_RANGE = [
    (
        {"run.facets.provgraph_metrics": {"metrics": [{"key": "l", "value": 1, "step": 2**63}]}},
        "run.facets.provgraph_metrics.metrics.0.step: Input should be less than or equal to 9223372036854775807",
    ),
    (
        {"run.facets.provgraph_metrics": {"metrics": [{"key": "l", "value": 1, "step": -(2**63) - 1}]}},
        "run.facets.provgraph_metrics.metrics.0.step: Input should be greater than or equal to -9223372036854775808",
    ),
    (
        {"run.facets.provgraph_event": {"eventId": "e", "seq": 10**30}},
        "run.facets.provgraph_event.seq: Input should be less than or equal to 9223372036854775807",
    ),
    (
        {"run.facets.provgraph_event": {"eventId": "e", "seq": -1}},
        "run.facets.provgraph_event.seq: Input should be greater than or equal to 0",
    ),
    (
        {"outputs": [{"namespace": "s3://b", "name": "x", "facets": {"provgraph_artifact": {"size": 2**70}}}]},
        "outputs.0.facets.provgraph_artifact.size: Input should be less than or equal to 9223372036854775807",
    ),
    (
        {"eventTime": "0001-01-01T00:00:00+14:00"},
        "eventTime: Value error, 0001-01-01T00:00:00+14:00 is outside years 1..9999 once converted to UTC",
    ),
    (
        {"eventTime": "9999-12-31T23:00:00-05:00"},
        "eventTime: Value error, 9999-12-31T23:00:00-05:00 is outside years 1..9999 once converted to UTC",
    ),
    (
        {"run.facets.provgraph_params": {"params": {"n": [1, 2**70]}}},
        "run.facets.provgraph_params.params.n.1: integer 1180591620717411303424 is outside the signed 64-bit range",
    ),
    (
        {"run.facets.vendor_x": {"deep": {"n": -(2**64)}}},
        "run.facets.vendor_x.deep.n: integer -18446744073709551616 is outside the signed 64-bit range",
    ),
    ({"run.runId": "run\x00id"}, "run.runId: string contains a NUL character (U+0000)"),
    (
        {"run.facets.vendor_x": {"a\x00": 1}},
        "run.facets.vendor_x (a key): string contains a NUL character (U+0000)",
    ),
    (
        {"run.facets.provgraph_metrics": {"metrics": [{"key": "l", "value": "nan"}]}},
        "run.facets.provgraph_metrics.metrics.0.value: Value error,"
        " expected a number or one of NaN, Infinity, -Infinity",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), OUT_OF_RANGE)
def test_out_of_range_values_are_refused_with_400_naming_the_field(
    api: Api, overrides: dict[str, Any], message: str
) -> None:
    response = api.post(event(**overrides))
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("not a valid OpenLineage RunEvent: " + message)
    with pytest.raises(ContractError, match="^not a valid OpenLineage RunEvent: " + re.escape(message)):
        loads(json.dumps(event(**overrides)))


def test_non_finite_json_literals_in_free_json_are_refused_but_kept_in_metrics(api: Api) -> None:
    body = event()
    body["run"]["facets"]["provgraph_params"] = {"params": {"lr": "__NAN__"}}
    raw = json.dumps(body).replace('"__NAN__"', "NaN").encode()
    response = api.post(raw)
    assert response.status_code == 400
    assert "run.facets.provgraph_params.params.lr: NaN is not a JSON number" in response.json()["error"]

    ok = event(**{"run.facets.provgraph_metrics": {"metrics": [{"key": "loss", "value": "__NAN__", "step": 3}]}})
    run_id = ok["run"]["runId"]
    response = api.post(json.dumps(ok).replace('"__NAN__"', "NaN").encode())
    assert response.status_code == 201, response.text
    data = api.graphql("query($id: ID!) { run(id: $id) { metrics } }", id=f"run:{run_id}")
    assert data == {"data": {"run": {"metrics": {"loss": "NaN"}}}}


# -- the embedded projection never blocks -------------------------------------------------------


def _append_raw(path: Path, rows: Sequence[tuple[str, bytes]]) -> None:
    """Write bodies into the log as an older provgraph did (before the contract refused them)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO events(event_id, run_id, root_run_id, event_type, event_time, body)"
            " VALUES (?, 'r', 'r', 'START', '2026-01-01T00:00:00+00:00', ?)",
            rows,
        )
    conn.close()


@pytest.mark.slow
def test_a_poisoned_event_already_in_the_log_is_dead_lettered_and_the_graph_moves_on(settings: Settings) -> None:
    events = list(workload(4))
    log = SqliteEventLog(settings.events_db)
    log.append(events[:6])
    poisoned = copy.deepcopy(json.loads(dumps(events[0])))
    poisoned["run"]["runId"] = "poisoned"
    poisoned["run"]["facets"]["provgraph_metrics"] = {"metrics": [{"key": "loss", "value": None, "step": 1}]}
    poisoned["run"]["facets"].pop("provgraph_event", None)
    original = json.dumps(poisoned).encode()
    _append_raw(settings.events_db, [("old-null-metric", original)])
    log.append(events[6:])

    proc = cli(settings.home, "runs")
    assert proc.returncode == 0, proc.stderr
    store = SqliteLineageStore(settings.graph_db)
    assert store.projected_offset() == log.last_offset() == len(events) + 1
    assert len(store.runs(first=100)) == 4
    [letter] = store.dead_letters()
    assert (letter.log_offset, letter.stage, letter.original) == (7, "validate", original)
    assert letter.error.startswith("not a valid OpenLineage RunEvent: run.facets.provgraph_metrics.metrics.0.value")
    store.close()
    log.close()

    listed = cli(settings.home, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    record = json.loads(listed.stdout)
    assert (record["offset"], record["stage"], base64.b64decode(record["original"])) == (7, "validate", original)
    human = cli(settings.home, "dlq", "list")
    assert "@7  validate  not a valid OpenLineage RunEvent" in human.stdout


class RefusingStore(SqliteLineageStore):
    """A store whose write rule refuses some runs, as an ownership check does (ProjectionError)."""

    def apply(self, events: Sequence[RunEvent], **kwargs: Any) -> None:
        for e in events:
            if e.run.run_id.endswith("3"):
                raise ProjectionError(f"run {e.run.run_id} belongs to another project")
        super().apply(events, **kwargs)


def test_refused_events_are_bisected_out_and_the_rest_is_projected(tmp_path: Path) -> None:
    events = list(workload(8))  # runs synthetic-run-00000000 .. 07
    log = SqliteEventLog(tmp_path / "events.db")
    log.append(events)
    store = RefusingStore(tmp_path / "graph.db")
    # SQLite itself refusing a value: a trigger aborts run 05's rows
    store._conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON run WHEN NEW.run_id LIKE '%05'"
        " BEGIN SELECT RAISE(ABORT, 'run 05 refused by the database'); END"
    )
    projector = EmbeddedProjector(log, store, batch=1000)
    assert projector.sync() == len(events)
    assert store.projected_offset() == log.last_offset()
    assert sorted(r.run_id[-2:] for r in store.runs(first=100)) == ["00", "01", "02", "04", "06", "07"]
    letters = store.dead_letters()
    per_run = {loads(d.original).run.run_id[-2:]: (d.stage, d.error) for d in letters}
    assert per_run == {
        "03": ("project", "run synthetic-run-00000003 belongs to another project"),
        "05": ("project", "ConstraintError: run 05 refused by the database"),
    }
    assert len(letters) == sum(1 for e in events if e.run.run_id[-2:] in ("03", "05"))
    assert projector.sync() == 0 and len(store.dead_letters()) == len(letters)


def test_an_infrastructure_failure_is_raised_and_nothing_advances(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    log.append(list(workload(3)))
    store = SqliteLineageStore(tmp_path / "graph.db")
    store._conn.set_busy_timeout(50)
    blocker = sqlite_db.connect(tmp_path / "graph.db")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(apsw.BusyError, match="database is locked"):
            EmbeddedProjector(log, store).sync()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.projected_offset() == 0 and store.dead_letters() == []
    assert EmbeddedProjector(log, store).sync() == log.last_offset()
    assert store.dead_letters() == []


# -- damaged graph, replaced log, interrupted replay ----------------------------------------------


@pytest.mark.slow
def test_a_garbage_graph_file_is_reported_and_replay_rebuilds_it(settings: Settings, backend: pg.Backend) -> None:
    pg.run(healthy_free, backend=backend)
    backend.close()
    settings.graph_db.write_bytes(os.urandom(8192))
    for sidecar in ("-wal", "-shm"):
        Path(str(settings.graph_db) + sidecar).unlink(missing_ok=True)
    proc = cli(settings.home, "runs")
    assert proc.returncode == 1
    assert f"the lineage graph {settings.graph_db} is damaged" in proc.stderr
    assert "rebuild it from the event log with `provgraph replay`" in proc.stderr
    replayed = cli(settings.home, "replay", "--yes")
    assert replayed.returncode == 0, replayed.stderr
    assert len(list(settings.graph_db.parent.glob("graph.db.damaged-*"))) == 1
    assert "healthy_free" in cli(settings.home, "runs").stdout


def healthy_free(ctx: pg.Context, lr: float = 0.1) -> None:
    ctx.log_metric("loss", lr)


@pytest.mark.slow
def test_a_log_shorter_than_the_projection_is_reported_and_replay_fixes_it(settings: Settings) -> None:
    log = SqliteEventLog(settings.events_db)
    log.append(list(workload(3)))
    log.close()
    assert cli(settings.home, "runs").returncode == 0
    settings.events_db.unlink()
    for sidecar in ("-wal", "-shm"):
        Path(str(settings.events_db) + sidecar).unlink(missing_ok=True)
    log = SqliteEventLog(settings.events_db)
    log.append(list(workload(1, namespace="fresh")))
    log.close()
    proc = cli(settings.home, "runs")
    assert proc.returncode == 1
    assert (
        f"the event log {settings.events_db} ends at offset 6 but the graph {settings.graph_db} already holds"
        " events up to offset 18: the log was replaced or truncated" in proc.stderr
    )
    assert "`provgraph replay`" in proc.stderr
    assert cli(settings.home, "replay", "--yes").returncode == 0
    out = cli(settings.home, "runs").stdout
    assert "fresh" in out and "synthetic" not in out


def test_an_interrupted_replay_leaves_the_old_graph_untouched(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    log.append(list(workload(30)))
    graph = tmp_path / "graph.db"
    live = SqliteLineageStore(graph)
    EmbeddedProjector(log, live).sync()
    before = live.dump()
    log.append(list(workload(5, namespace="later")))

    class Interrupted(Exception):
        pass

    def interrupt(done: int, total: int) -> None:
        assert live.dump() == before  # a reader sees the old graph while the new one is built aside
        if done >= 40:
            raise Interrupted

    with pytest.raises(Interrupted):
        rebuild(log, graph, interrupt, batch=20)
    assert live.dump() == before and live.projected_offset() == 180
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("graph.db")) == [
        "graph.db",
        "graph.db-shm",
        "graph.db-wal",
    ]
    assert rebuild(log, graph, batch=20) == log.last_offset()
    # the reader that stayed open sees the whole new graph, not a mix
    assert len(live.runs(first=100)) == 35 and live.projected_offset() == log.last_offset()
    live.close()


# -- one event id, one event ---------------------------------------------------------------------


def test_a_reused_event_id_with_other_content_is_refused_409_with_both_digests(api: Api) -> None:
    body = event(**{"run.facets.provgraph_event": {"eventId": "fixed-id", "seq": 1}})
    assert api.post(body).status_code == 201
    assert api.post(body).status_code == 201  # the same event again: idempotent
    changed = copy.deepcopy(body)
    changed["eventType"] = "COMPLETE"
    response = api.post(changed)
    assert response.status_code == 409
    stored = "sha256:" + hashlib.sha256(dumps(loads(json.dumps(body)))).hexdigest()
    new = "sha256:" + hashlib.sha256(dumps(loads(json.dumps(changed)))).hexdigest()
    assert response.json()["error"] == (
        f"event id 'fixed-id' is already recorded with different content (stored {stored}, new {new});"
        " a different event needs its own event id"
    )


def test_the_log_refuses_a_conflicting_batch_whole(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    events = list(workload(2))
    log.append(events[:1])
    clash = events[0].model_copy(update={"event_type": events[-1].event_type, "producer": "someone else"})
    with pytest.raises(EventConflict, match="already recorded with different content"):
        log.append([*events[1:], clash])
    assert log.count() == 1
    with pytest.raises(EventConflict):
        log.append([events[1], events[1].model_copy(update={"producer": "twin"})])
    assert log.count() == 1


# -- search is literal and bounded --------------------------------------------------------------


def test_search_treats_wildcards_literally_and_bounds_its_text(store: LineageStore) -> None:
    names = ["a_b", "axb", "100%", "1000", "back\\slash"]
    store.apply([e for i, n in enumerate(names) for e in _named_run(f"r{i}", n)])
    assert store.search("a_b", ["job"]) == ["job:demo:a_b"]
    assert store.search("0%", ["job"]) == ["job:demo:100%"]
    assert store.search("%", ["job"]) == ["job:demo:100%"]
    assert store.search("_", ["job"]) == ["job:demo:a_b"]
    assert store.search("k\\s", ["job"]) == ["job:demo:back\\slash"]
    assert store.search("x" * MAX_SEARCH_TEXT, ["job", "run", "dataset"]) == []
    with pytest.raises(ConfigError, match=f"search text is {MAX_SEARCH_TEXT + 1} characters long; the limit is 1000"):
        store.search("x" * (MAX_SEARCH_TEXT + 1))


def _named_run(run_id: str, job: str) -> list[RunEvent]:
    return [loads(json.dumps(event(**{"run.runId": run_id, "job.name": job})))]


def test_graphql_search_of_50001_characters_is_a_bad_user_input(api: Api) -> None:
    body = api.graphql("query($t: String!) { search(text: $t) { id } }", t="x" * 50_001)
    [error] = body["errors"]
    assert error["message"] == "search text is 50001 characters long; the limit is 1000"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
