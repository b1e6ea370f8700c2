"""Read-your-writes on the embedded store: tokens, a run's position, `@consistentWith`, `--consistent-with`.

The Kafka + Neo4j path (the projector publishing its progress, a query waiting for it) is in
tests/test_consistency_kafka.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from typer.testing import CliRunner

import provgraph as pg
from provgraph._emitter import RunEmitter
from provgraph.api.app import create_app
from provgraph.api.consistency import Watcher
from provgraph.api.server import ServerThread
from provgraph.cli import app as cli_app
from provgraph.events.consistency import Position, parse
from provgraph.events.errors import ConfigError
from provgraph.events.facets import RuntimeRunFacet
from provgraph.events.settings import Settings
from provgraph.events.transport.kafka import KafkaConfig, KafkaTransport
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.factory import open_store
from provgraph.graph.progress import wait_until


def work(n: int) -> dict[str, int]:
    return {"double": 2 * n}


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("kafka:provgraph.lineage.v1:0:0", Position("kafka", 0, "provgraph.lineage.v1", 0)),
        ("kafka:p-x_1.lineage:2:1234", Position("kafka", 1234, "p-x_1.lineage", 2)),
        ("sqlite:1", Position("sqlite", 1)),
        ("sqlite:999999999999999999", Position("sqlite", 999_999_999_999_999_999)),
    ],
)
def test_a_token_parses_to_its_position_and_back(text: str, position: Position) -> None:
    assert parse(text) == position
    assert str(position) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sqlite:0",  # log offsets start at 1
        "sqlite:01",
        "sqlite:-1",
        "sqlite:1 ",
        " sqlite:1",
        "sqlite:1000000000000000000",  # 19 digits: beyond the bound
        "SQLITE:1",
        "kafka:t:0",
        "kafka:t:0:1:2",
        "kafka::0:1",
        "kafka:t/x:0:1",
        "kafka:t:x:1",
        "kafka:t:00:1",
        "kafka:t:0:1\nsqlite:1",
        "kafka:" + "t" * 250 + ":0:1",
        "http:1",
    ],
)
def test_a_malformed_token_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^malformed consistency token .*expected kafka:<topic>") as caught:
        parse(text)
    assert "\n" not in str(caught.value)


def test_reached_compares_within_the_token_s_stream() -> None:
    kafka = parse("kafka:t:1:41")
    assert not kafka.reached_by(41)  # next offset 41: record 41 is not in yet
    assert kafka.reached_by(42)
    sqlite = parse("sqlite:7")
    assert not sqlite.reached_by(6)
    assert sqlite.reached_by(7)
    assert kafka.stream == ("kafka", "t", 1) and sqlite.stream == ("sqlite", "", 0)


def test_a_run_returns_the_log_offset_of_its_last_event(backend: pg.Backend, settings: Settings) -> None:
    result = pg.run(work, params={"n": 3}, backend=backend)
    log = SqliteEventLog(settings.events_db)
    try:
        assert result.position == f"sqlite:{log.last_offset()}"
        last = log.read(log.last_offset() - 1, 1)[0]
        assert json.loads(last.body)["eventType"] == "COMPLETE"
        assert json.loads(last.body)["run"]["runId"] == result.run_id
    finally:
        log.close()


def test_an_event_in_the_spool_has_no_position_yet(tmp_path: Path) -> None:
    """Kafka unreachable: the event is spooled, so where it will land is unknown (None), not guessed."""
    config = KafkaConfig(
        bootstrap_servers="127.0.0.1:1",
        spool_dir=tmp_path / "spool",
        topic_prefix="",
        partitions=1,
        delivery_timeout_s=0.5,
    )
    transport = KafkaTransport(config)
    try:
        emitter = RunEmitter(transport, run_id="r-1", namespace="demo", job_name="j", code=None)
        emitter.start({}, RuntimeRunFacet(kind="local"))
        assert transport.pending == 1
        assert emitter.position() is None
    finally:
        transport.close(timeout=0)


def test_the_cli_waits_for_a_token_and_refuses_a_bad_one(settings: Settings) -> None:
    runner = CliRunner()
    ran = runner.invoke(cli_app, ["run", f"{__file__}:work", "-p", "n=4", "--json"])
    assert ran.exit_code == 0, ran.output
    outcome = json.loads(ran.output)
    assert outcome["state"] == "COMPLETE" and outcome["results"] == {"double": 8}
    assert outcome["position"].startswith("sqlite:")
    shown = runner.invoke(cli_app, ["show", outcome["run_id"], "--json", "--consistent-with", outcome["position"]])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["state"] == "COMPLETE"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(settings.home), COLUMNS="300", NO_COLOR="1")
    bad = subprocess.run(
        [sys.executable, "-m", "provgraph.cli", "runs", "--consistent-with", "sqlite:x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "error: malformed consistency token 'sqlite:x': expected kafka:<topic>:<partition>:<offset> or sqlite:<offset>"
    ]


def test_a_token_about_another_log_is_refused(backend: pg.Backend, settings: Settings) -> None:
    pg.run(work, params={"n": 1}, backend=backend)
    handle = open_store(settings)
    try:
        with pytest.raises(ConfigError, match=r"sqlite:99 is beyond the end of the event log \(\d+\)"):
            wait_until(handle, parse("sqlite:99"), 1.0)
        with pytest.raises(ConfigError, match="is for Kafka; this graph projects the embedded event log"):
            wait_until(handle, parse("kafka:t:0:1"), 1.0)
    finally:
        handle.close()


def test_the_api_answers_a_query_consistent_with_a_run(backend: pg.Backend, settings: Settings) -> None:
    result = pg.run(work, params={"n": 5}, backend=backend)
    query = "query Q($t: String!, $i: ID!) @consistentWith(token: $t) { run(id: $i) { runId state } }"
    with ServerThread(create_app(settings, insecure_local=True)) as url:
        ok = httpx.post(
            f"{url}/graphql", json={"query": query, "variables": {"t": result.position, "i": result.run_id}}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"data": {"run": {"runId": result.run_id, "state": "COMPLETE"}}}
        inline = f'query @consistentWith(token: "{result.position}") {{ runs(first: 1) {{ nodes {{ runId }} }} }}'
        assert httpx.post(f"{url}/graphql", json={"query": inline}).json()["data"]["runs"]["nodes"] == [
            {"runId": result.run_id}
        ]
        for token, message in [
            ("sqlite:x", "malformed consistency token 'sqlite:x'"),
            ("sqlite:999", "consistency token sqlite:999 is beyond the end of the event log"),
            ("kafka:t:0:1", "consistency token kafka:t:0:1 is for Kafka; this graph projects the embedded event log"),
        ]:
            bad = httpx.post(f"{url}/graphql", json={"query": query, "variables": {"t": token, "i": result.run_id}})
            assert bad.status_code == 400
            assert bad.text.startswith(message) and "\n" not in bad.text
        misplaced = httpx.post(
            f"{url}/graphql", json={"query": '{ run(id: "x") @consistentWith(token: "sqlite:1") { runId } }'}
        )
        assert misplaced.json()["errors"][0]["message"] == "Directive '@consistentWith' may not be used on field."


def test_the_watcher_answers_while_every_shared_worker_thread_is_busy(backend: pg.Backend, settings: Settings) -> None:
    """A loaded server keeps anyio's shared worker threads busy with queries; the progress reads that
    the waiting requests depend on have a thread of their own and do not queue behind them."""
    result = pg.run(work, params={"n": 5}, backend=backend)
    assert result.position is not None
    position = parse(result.position)
    handle = open_store(settings)
    watcher = Watcher(handle, timeout_s=30)
    release = threading.Event()

    async def waits_while_busy() -> None:
        shared = anyio.to_thread.current_default_thread_limiter()
        busy = [asyncio.ensure_future(anyio.to_thread.run_sync(release.wait)) for _ in range(int(shared.total_tokens))]
        try:
            while shared.borrowed_tokens < shared.total_tokens:
                await asyncio.sleep(0.01)
            await asyncio.wait_for(watcher.wait(position), 20)
        finally:
            release.set()
            await asyncio.gather(*busy)

    try:
        asyncio.run(waits_while_busy())
    finally:
        handle.close()
