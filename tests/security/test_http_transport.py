"""The HTTP transport's bearer token goes only where it was configured to go.

A redirect is not followed (it would carry the token to whatever the redirect names); the token
never appears in a log line, an error, the spool or the settings' repr, whatever the endpoint
answers; a URL with credentials in it is refused (they would be logged with every error).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provgraph.events.errors import ConfigError
from provgraph.events.settings import Settings
from provgraph.events.synthetic import workload
from provgraph.events.transport.factory import create_transport, http_config, spool_flush
from provgraph.events.transport.http import HttpTransport

TOKEN = "pg_SECRET-0123456789"


class Recorder(BaseHTTPRequestHandler):
    """Answers every POST with `status` (and a Location), recording the Authorization headers seen."""

    status = 200
    location = ""
    body = b""
    seen: list[str | None]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(self.status)
        if self.location:
            self.send_header("Location", self.location)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def serve(**attrs: Any) -> tuple[ThreadingHTTPServer, list[str | None]]:
    seen: list[str | None] = []
    handler = type("Handler", (Recorder,), {**attrs, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_redirect_is_not_followed_and_the_token_stays_home(
    servers: list[ThreadingHTTPServer], tmp_path: Path
) -> None:
    elsewhere, stolen = serve()
    redirecting, seen = serve(status=307, location=url(elsewhere) + "/api/v1/lineage")
    servers += [elsewhere, redirecting]
    settings = Settings(home=tmp_path, transport="http", http_url=url(redirecting), http_token=TOKEN)
    sender = create_transport(settings)
    assert isinstance(sender, HttpTransport)
    events = list(workload(1))
    for e in events:
        sender.emit(e)
    assert stolen == [], "the redirect target never heard from us"
    assert seen == [f"Bearer {TOKEN}"], "one try, then the spool (backoff)"
    assert str(sender.last_error) == (
        f"{url(redirecting)}/api/v1/lineage answered HTTP 307: redirected to"
        f" '{url(elsewhere)}/api/v1/lineage'; set that URL instead"
    )
    assert sender.close(timeout=1) is False and sender.pending == len(events)


@pytest.mark.parametrize("status", [401, 403, 400, 500])
def test_the_token_is_in_no_log_error_or_spool(
    servers: list[ThreadingHTTPServer], tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """Even when the endpoint echoes the Authorization header back in its error."""
    server, seen = serve(status=status, body=f'{{"error": "bad header Bearer {TOKEN}"}}'.encode())
    servers.append(server)
    caplog.set_level(logging.DEBUG)
    settings = Settings(home=tmp_path, transport="http", http_url=url(server), http_token=TOKEN)
    sender = HttpTransport(http_config(settings))
    for e in workload(1):
        sender.emit(e)
    sender.close(timeout=1)
    assert seen and all(h == f"Bearer {TOKEN}" for h in seen)
    flushed = spool_flush(settings, timeout=1)
    said = [r.getMessage() for r in caplog.records] + [str(sender.last_error), str(flushed.reason), repr(settings)]
    assert [line for line in said if TOKEN in line] == []
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert TOKEN.encode() not in stored


def test_credentials_in_the_url_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        create_transport(Settings(home=tmp_path, transport="http", http_url=f"https://user:{TOKEN}@host"))
    assert str(refused.value) == (
        "invalid setting http_url (PROVGRAPH_HTTP_URL): Value error, credentials in the URL are refused:"
        " set the token (PROVGRAPH_HTTP_TOKEN) instead"
    )
