"""HTTP transport: OpenLineage RunEvents POSTed to `<url>/api/v1/lineage`, as OpenLineage's own
HttpTransport does, so it writes to provgraph's API (`api/ingest.py`) and to any OpenLineage backend
(Marquez …) alike. The only header beyond `Content-Type` is an optional `Authorization: Bearer`.

Delivery follows `spooled.py` (shared with Kafka): acknowledged (HTTP 2xx) or fsynced in the spool
when `emit` returns; spooled events are re-sent in order, one POST each over one keep-alive
connection, once the endpoint answers again; at-least-once (the ingest is idempotent by event id).

What an answer means:

    2xx                  delivered
    401, 403             refused (bad token, or no right to the project): logged as an ERROR
                         naming the endpoint's message; events stay in the spool until it accepts them
    400, 409, 413, 422   this event can never be accepted (invalid, an event id already recorded with
                         other content, too large): it is set aside in `<spool>/rejected/` with the
                         reason (another spool: nothing is dropped) and the events behind it go on
    anything else        (3xx, 404, 408, 429, 5xx, no answer) an outage: spooled, retried with backoff

Redirects are not followed (the token would go where the redirect points): set the URL they name.
Only the standard library is used, so the transport works in a bare `pip install provgraph`.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from provgraph.events.errors import TransportError
from provgraph.events.transport.spool import REJECTED_DIR, Record, Spool
from provgraph.events.transport.spooled import DeliveryRefused, SpooledTransport
from provgraph.events.version import __version__

REFUSED = frozenset({401, 403})
REJECTED = frozenset({400, 409, 413, 422})
_RECONNECT = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
"""What a kept-alive connection the server has closed meanwhile raises on reuse: retried once, fresh."""


class HttpConfig(BaseModel):
    """Where and how the HTTP transport sends; build it with `factory.http_config(settings)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """Base URL of the endpoint (`https://lineage.example.com`); `endpoint` is appended."""
    endpoint: str
    token: SecretStr | None = None
    spool_dir: Path
    timeout_s: float = Field(gt=0)
    """Longest one POST may take (connect + answer) before the event is spooled."""
    retry_interval_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
        if parts.username or parts.password:  # not echoed: they would be in every error message
            raise ValueError("credentials in the URL are refused: set the token (PROVGRAPH_HTTP_TOKEN) instead")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: no query or fragment in the URL")
        return value.rstrip("/")

    @property
    def post_url(self) -> str:
        return f"{self.url}/{self.endpoint.strip('/')}"


class HttpTransport(SpooledTransport):
    """POSTs each event to an OpenLineage HTTP endpoint; spools them locally while it does not accept them."""

    kind = "http"
    config_class: ClassVar[type[HttpConfig]] = HttpConfig

    def __init__(self, config: HttpConfig, *, spool: Spool | None = None) -> None:
        self.config = config
        self.destination = f"the OpenLineage endpoint {config.post_url}"
        super().__init__(
            spool if spool is not None else Spool(config.spool_dir),
            delivery_timeout_s=config.timeout_s,
            retry_interval_s=config.retry_interval_s,
            retry_max_s=config.retry_max_s,
        )
        self.rejected_dir = self.spool.directory / REJECTED_DIR
        parts = urlsplit(config.post_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = parts.path
        self._headers = {"Content-Type": "application/json", "User-Agent": f"provgraph/{__version__}"}
        if config.token is not None:
            self._headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
        self._conn: http.client.HTTPConnection | None = None

    # -- SpooledTransport ------------------------------------------------------------------------

    def _send_now(self, key: bytes, value: bytes, deadline: float) -> None:
        self._deliver(key, value, deadline)

    def _send_batch(self, batch: list[Record], deadline: float | None) -> tuple[int, TransportError | None]:
        for done, rec in enumerate(batch):
            if deadline is not None and time.monotonic() >= deadline:
                return done, None
            try:
                self._deliver(rec.key, rec.value, deadline)
            except TransportError as exc:
                return done, exc
        return len(batch), None

    def _drop_client(self, timeout: float) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- one POST --------------------------------------------------------------------------------

    def _deliver(self, key: bytes, value: bytes, deadline: float | None) -> None:
        """POST one event; returns when it is accepted or set aside as rejected, else raises `TransportError`."""
        status, message = self._post(value, self._remaining(deadline))
        if 200 <= status < 300:
            return
        if self.config.token is not None:  # an endpoint may echo the header back: never log it
            message = message.replace(self.config.token.get_secret_value(), "<token>")
        where = self.config.post_url
        if status in REFUSED:
            raise DeliveryRefused(f"{where} refused the events (HTTP {status}: {message}); check PROVGRAPH_HTTP_TOKEN")
        if status in REJECTED:
            self._set_aside(key, value, f"HTTP {status}: {message}")
            return
        raise TransportError(f"{where} answered HTTP {status}: {message}")

    def _post(self, body: bytes, timeout: float) -> tuple[int, str]:
        """(status, the answer's error message or first bytes); `TransportError` when there is no answer."""
        for attempt in range(2):
            reused = self._conn is not None
            conn = self._connection(timeout)
            try:
                conn.request("POST", self._path, body=body, headers=self._headers)
                response = conn.getresponse()
                text = response.read(64 * 1024)
            except _RECONNECT as exc:
                self._drop_client(0)
                if reused and attempt == 0:
                    continue  # the server closed the idle connection: one fresh try
                raise TransportError(f"POST {self.config.post_url} failed: {type(exc).__name__}: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop_client(0)
                raise TransportError(f"POST {self.config.post_url} failed: {type(exc).__name__}: {exc}") from exc
            if response.will_close:
                self._drop_client(0)
            status = response.status
            if 300 <= status < 400:
                return status, f"redirected to {response.getheader('Location')!r}; set that URL instead"
            return status, _message(text)
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        timeout = max(timeout, 0.05)
        if self._conn is None:
            if self._https:
                context = ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=context)
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def _set_aside(self, key: bytes, value: bytes, reason: str) -> None:
        """Keep an event the endpoint will never accept in `rejected/` (key = the reason), and say so."""
        with Spool(self.rejected_dir) as rejected:
            rejected.append(reason.encode(), value)
        self.log.error(
            "provgraph: %s rejected an event of root run %s (%s); it is kept in %s",
            self.config.post_url,
            key.decode(errors="replace"),
            reason,
            self.rejected_dir,
        )


def _message(text: bytes) -> str:
    """The `error` of a JSON answer (provgraph, Marquez), else the answer's first 200 characters."""
    decoded = text.decode(errors="replace")
    try:
        body = json.loads(decoded)
    except ValueError:
        return decoded[:200].strip() or "no message"
    if isinstance(body, dict):
        for field in ("error", "message", "detail"):
            if isinstance(body.get(field), str):
                return str(body[field])[:500]
    return decoded[:200]
