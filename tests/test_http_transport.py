"""The HTTP transport (PROVGRAPH_TRANSPORT=http) against a real provgraph API (uvicorn, embedded
store) and a plain OpenLineage receiver: SDK -> API -> graph, an API outage in the middle of a run
(spooled, flushed, the same graph as without the outage), refused tokens and rejected events
(nothing lost)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread, free_port
from provgraph.events.errors import ConfigError
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps, event_id, loads
from provgraph.events.settings import HTTP_UNSET, Settings, load_settings
from provgraph.events.synthetic import workload
from provgraph.events.transport.factory import create_transport, http_config, spool_flush, spool_status
from provgraph.events.transport.http import HttpTransport
from provgraph.events.transport.spool import Spool
from provgraph.events.transport.spooled import DeliveryRefused
from provgraph.graph.factory import open_store
from provgraph.graph.sqlite_store import SqliteLineageStore
from tests.helpers import graphql_data

CLOSED = "http://127.0.0.1:1"


class Api:
    """A provgraph API (embedded store) that can be stopped and started again on the same port."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings(home=home)
        tokens = TokenStore(self.settings.tokens_db)
        self.token = tokens.create(["synthetic", "demo"], name="producer")[1]
        tokens.close()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ServerThread | None = None

    def start(self) -> None:
        self._server = ServerThread(create_app(self.settings), port=self.port)
        self._server.__enter__()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client_settings(self, home: Path, **kw: Any) -> Settings:
        return Settings(
            home=home,
            transport="http",
            http_url=self.url,
            http_token=self.token,
            project="demo",
            artifact_store=self.settings.artifact_url,  # the API checks that written objects exist
            **kw,
        )

    def dump(self) -> dict[str, Any]:
        handle = open_store(self.settings)
        try:
            return facts(handle.fresh().dump())
        finally:
            handle.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    server = Api(tmp_path / "server")
    server.start()
    yield server
    server.stop()


def transport(settings: Settings, **kw: Any) -> HttpTransport:
    return HttpTransport(http_config(settings).model_copy(update=kw))


def graph_of(events: list[RunEvent], path: Path) -> dict[str, Any]:
    store = SqliteLineageStore(path)
    try:
        store.apply(events)
        return facts(store.dump())
    finally:
        store.close()


def facts(dump: dict[str, Any]) -> dict[str, Any]:
    """A canonical dump without ingestion times (`known_at`, `ended_known_at`): when provgraph
    received an event differs between any two deliveries; everything the events say must not."""
    return {
        table: sorted(
            ({k: v for k, v in row.items() if not k.endswith("known_at")} for row in rows),
            key=lambda row: json.dumps(row, sort_keys=True, default=str),
        )
        for table, rows in dump.items()
    }


# -- configuration ------------------------------------------------------------------------------


def test_settings_select_the_http_transport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVGRAPH_CONFIG", "")
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path))
    monkeypatch.setenv("PROVGRAPH_TRANSPORT", "http")
    monkeypatch.setenv("PROVGRAPH_HTTP_URL", "https://lineage.example.com/base/")
    monkeypatch.setenv("PROVGRAPH_HTTP_TOKEN", "s3cret")
    settings = load_settings()
    assert "s3cret" not in repr(settings), "the token is a secret: never printed"
    created = create_transport(settings)
    assert isinstance(created, HttpTransport)
    assert created.config.post_url == "https://lineage.example.com/base/api/v1/lineage"
    assert created.config.timeout_s == Settings.model_fields["http_timeout_s"].default
    assert created.spool.directory == tmp_path / "spool"
    created.close(timeout=0)

    with pytest.raises(ConfigError) as unset:
        create_transport(Settings(home=tmp_path, transport="http"))
    assert str(unset.value) == HTTP_UNSET
    for bad, why in (
        ("ftp://host/x", "is not an http:// or https:// URL with a host"),
        ("http:///nohost", "is not an http:// or https:// URL with a host"),
        ("https://host/?q=1", "'https://host/?q=1': no query or fragment in the URL"),
    ):
        with pytest.raises(ConfigError) as invalid:
            create_transport(Settings(home=tmp_path, transport="http", http_url=bad))
        assert str(invalid.value).startswith("invalid setting http_url (PROVGRAPH_HTTP_URL):")
        assert why in str(invalid.value)


def test_unreachable_endpoint_spools_and_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    events = list(workload(2))
    sender = transport(Settings(home=tmp_path, http_url=CLOSED), timeout_s=1.0)
    for e in events:
        sender.emit(e)
    assert [loads(r.value) for r in sender.spool.pending()] == events
    assert [r.key.decode() for r in sender.spool.pending()] == [e.root_run_id for e in events]
    warnings = [r for r in caplog.records if r.name.startswith("provgraph") and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING, "one warning per outage"
    assert "cannot deliver to the OpenLineage endpoint http://127.0.0.1:1/api/v1/lineage" in warnings[0].getMessage()
    assert sender.close(timeout=1) is False
    flushed = spool_flush(Settings(home=tmp_path, transport="http", http_url=CLOSED), timeout=1)
    assert flushed[:2] == (0, len(events))
    assert flushed.reason is not None and flushed.reason.startswith("POST http://127.0.0.1:1/api/v1/lineage failed:")


# -- a plain OpenLineage receiver ---------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def test_any_openlineage_backend_gets_plain_openlineage_posts(tmp_path: Path) -> None:
    """What a Marquez-like backend sees: POST /api/v1/lineage, JSON RunEvents, a bearer token, nothing else."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        events = list(workload(2))
        sender = transport(Settings(home=tmp_path, http_url=url, http_token="tok"))
        for e in events:
            sender.emit(e)
        assert sender.close() is True
    finally:
        server.shutdown()
        server.server_close()
    assert [path for path, _, _ in _Receiver.received] == ["/api/v1/lineage"] * len(events)
    assert [loads(body) for _, _, body in _Receiver.received] == events
    for _, headers, body in _Receiver.received:
        assert headers["Authorization"] == "Bearer tok" and headers["Content-Type"] == "application/json"
        assert json.loads(body)["schemaURL"].startswith("https://openlineage.io/spec/")
        assert not [h for h in headers if h.lower().startswith("x-")], "no provgraph-only headers"


# -- provgraph's own API ------------------------------------------------------------------------


def upper(ctx: pg.Context, src: pg.DataItem) -> dict[str, int]:
    data = src.get()
    ctx.log_model("upper", body=data.upper(), framework="none")
    return {"size": len(data)}


def test_sdk_runs_reach_the_graph_through_the_api(api: Api, tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"hello")
    settings = api.client_settings(tmp_path / "client")
    result = pg.run(upper, inputs={"src": str(raw)}, backend=pg.Backend(settings))
    version = result.outputs["upper"].rpartition("@")[2]
    run = graphql_data(
        api.url,
        api.token,
        'query($v: String!) { producedBy(namespace: "store://demo", name: "upper", version: $v)'
        " { runId state results inputs { namespace name } } }",
        v=version,
    )["producedBy"]
    assert run == {
        "runId": result.run_id,
        "state": "COMPLETE",
        "results": {"size": 5},
        "inputs": [{"namespace": "file", "name": str(raw)}],
    }
    assert spool_status(settings).records == 0, "delivered directly: nothing spooled"


def test_api_down_mid_run_then_flush_gives_the_uninterrupted_graph(api: Api, tmp_path: Path) -> None:
    events = list(workload(6))  # 6 runs x 6 events
    before, during = 8, 22  # the API stops inside the 2nd run and is back inside the 4th
    sender = transport(api.client_settings(tmp_path / "client"), timeout_s=2.0, retry_max_s=0.5)
    for e in events[:before]:
        sender.emit(e)
    assert sender.spool.is_empty()

    api.stop()
    for e in events[before:during]:
        sender.emit(e)  # never raises: the run goes on
    assert sender.pending == during - before
    assert sender.flush(timeout=1) is False
    assert sender.last_error is not None and "ConnectionRefusedError" in str(sender.last_error)
    api.start()

    for e in events[during:]:  # behind the spool: in order, not before it
        sender.emit(e)
    assert sender.flush() is True and sender.pending == 0
    # A crash between a delivery and its ack re-sends events the API has: harmless duplicates.
    for e in events[:3]:
        sender.spool.append(e.root_run_id.encode(), dumps(e))
    assert sender.close() is True

    assert api.dump() == graph_of(events, tmp_path / "uninterrupted.db")


def test_a_bad_token_is_a_clear_error_and_loses_nothing(
    api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = list(workload(2))
    good = api.client_settings(tmp_path / "client")
    bad = good.model_copy(update={"http_token": "pg_not-a-token"})
    sender = transport(bad, retry_max_s=0.1)
    for e in events:
        sender.emit(e)
    assert isinstance(sender.last_error, DeliveryRefused)
    assert str(sender.last_error).startswith("http://127.0.0.1:")
    assert "refused the events (HTTP 401: " in str(sender.last_error)
    assert str(sender.last_error).endswith("check PROVGRAPH_HTTP_TOKEN")
    errors = [r for r in caplog.records if r.name.startswith("provgraph") and r.levelno >= logging.WARNING]
    assert [r.levelno for r in errors] == [logging.ERROR], "one error for the refusal, not one per event"
    assert [loads(r.value) for r in sender.spool.pending()] == events
    assert sender.close(timeout=2) is False

    refused = spool_flush(bad, timeout=2)
    assert refused[:2] == (0, len(events)) and refused.reason == str(sender.last_error)
    assert api.dump() == graph_of([], tmp_path / "empty.db")
    assert spool_flush(good) == (len(events), 0, None)
    assert api.dump() == graph_of(events, tmp_path / "expected.db")


def test_a_rejected_event_is_set_aside_and_the_rest_goes_on(
    api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """409 (same event id, other content) can never succeed: kept in rejected/, not blocking the spool."""
    first, second = list(workload(1)), list(workload(2))[6:]
    forged = first[1].model_copy(update={"event_time": first[1].event_time + timedelta(seconds=1)})
    assert event_id(forged) == event_id(first[1]) and dumps(forged) != dumps(first[1])
    sender = transport(api.client_settings(tmp_path / "client"))
    for e in [*first, forged, *second]:
        sender.emit(e)
    assert sender.close() is True
    with Spool(sender.rejected_dir) as rejected:
        kept = list(rejected.pending())
    assert [loads(r.value) for r in kept] == [forged]
    assert kept[0].key.decode().startswith(f"HTTP 409: event id {event_id(forged)!r} is already recorded")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"provgraph: {sender.config.post_url} rejected an event of root run {forged.root_run_id}"
        f" ({kept[0].key.decode()}); it is kept in {sender.rejected_dir}"
    ]
    assert api.dump() == graph_of([*first, *second], tmp_path / "expected.db")
    assert spool_status(api.client_settings(tmp_path / "client"))[1:] == (0, 0, 0, 1), "nothing waits, one set aside"


def provgraph(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "provgraph"), *args],
        env={**clean, "PROVGRAPH_HOME": str(home), "COLUMNS": "300", "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_spool_status_and_flush_commands_over_http(api: Api, tmp_path: Path) -> None:
    home = tmp_path / "client"
    events = list(workload(1))
    sender = transport(api.client_settings(home).model_copy(update={"http_token": "pg_wrong"}), retry_max_s=0.1)
    for e in events:
        sender.emit(e)
    sender.close(timeout=0)
    http = {"PROVGRAPH_TRANSPORT": "http", "PROVGRAPH_HTTP_URL": api.url}
    status = provgraph(home, "spool", "status")
    assert status.returncode == 0 and status.stdout.startswith(f"{len(events)} event(s) waiting in {home / 'spool'}")
    refused = provgraph(home, "spool", "flush", **http, PROVGRAPH_HTTP_TOKEN="pg_wrong")
    assert refused.returncode == 1
    assert refused.stdout.startswith(f"sent 0 event(s); {len(events)} still waiting: {api.url}/api/v1/lineage refused")
    assert refused.stdout.rstrip().endswith("check PROVGRAPH_HTTP_TOKEN")
    flushed = provgraph(home, "spool", "flush", **http, PROVGRAPH_HTTP_TOKEN=api.token)
    assert (flushed.returncode, flushed.stdout) == (0, f"sent {len(events)} event(s); 0 still waiting\n")
    assert api.dump() == graph_of(events, tmp_path / "expected.db")
