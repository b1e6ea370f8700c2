"""API tokens: created and revoked by the CLI, checked on every request, never stored in clear.

A token reads `pgt_<id>_<secret>`: `id` (8 hex chars) finds the row, `secret` (32 random bytes,
url-safe base64) is the credential. The row keeps `sha256(salt || secret)` with a per-token random
salt, and the check compares digests with `hmac.compare_digest`, so neither the database nor the
timing of a comparison gives the secret away. The secret has 256 bits of entropy, so a slow
password hash would add latency to every request without adding safety.

    store = TokenStore(settings.tokens_db)
    info, token = store.create(["demo"], name="ci")     # `token` is shown once, then only its hash exists
    store.verify(token)                                   # -> TokenInfo, or None (unknown, wrong, revoked)
    store.revoke(info.id)

Revocation takes effect on the next request: nothing is cached, each request reads its row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as ASGIScope

from provgraph.api.scope import Scope
from provgraph.events.errors import ConfigError, NotFound

PREFIX = "pgt"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS token (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    projects    TEXT NOT NULL,
    salt        BLOB NOT NULL,
    digest      BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
"""


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    projects: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def _now() -> datetime:
    return datetime.now(UTC)


def _clean_projects(projects: Iterable[str]) -> tuple[str, ...]:
    out = tuple(sorted({p.strip() for p in projects}))
    if not out or any(not p for p in out):
        raise ConfigError("a token needs at least one non-empty project (--project P)")
    return out


class TokenStore:
    """Tokens in one small SQLite file; safe to share between the server and the CLI."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def create(self, projects: Iterable[str], name: str = "") -> tuple[TokenInfo, str]:
        """A new token for `projects`: its description and the token text (shown once, never stored)."""
        scoped = _clean_projects(projects)
        token_id = secrets.token_hex(4)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        salt = secrets.token_bytes(16)
        info = TokenInfo(id=token_id, name=name or token_id, projects=scoped, created_at=_now())
        with self._lock:
            self._conn.execute(
                "INSERT INTO token(id, name, projects, salt, digest, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (info.id, info.name, json.dumps(scoped), salt, _digest(salt, secret), info.created_at.isoformat()),
            )
        return info, f"{PREFIX}_{token_id}_{secret}"

    def tokens(self) -> list[TokenInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, name, projects, created_at, revoked_at FROM token ORDER BY created_at, id"
            ).fetchall()
        return [_info(r) for r in rows]

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token by id (idempotent); `NotFound` for an unknown id."""
        with self._lock:
            self._conn.execute(
                "UPDATE token SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (_now().isoformat(), token_id)
            )
            rows = self._conn.execute(
                "SELECT id, name, projects, created_at, revoked_at FROM token WHERE id = ?", (token_id,)
            ).fetchall()
        if not rows:
            raise NotFound(f"no API token with id {token_id!r} (see `provgraph token list`)")
        return _info(rows[0])

    def verify(self, token: str) -> TokenInfo | None:
        """The token's description when `token` is valid and not revoked, else None."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not token_id or not secret:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT id, name, projects, created_at, revoked_at, salt, digest FROM token WHERE id = ?", (token_id,)
            ).fetchone()
        if row is None:
            # Same work as a real check, so an unknown id takes as long as a wrong secret.
            hmac.compare_digest(_digest(b"\0" * 16, secret), b"\0" * 32)
            return None
        if not hmac.compare_digest(_digest(bytes(row[5]), secret), bytes(row[6])):
            return None
        info = _info(row[:5])
        return info if info.active else None

    def close(self) -> None:
        self._conn.close()


def _info(row: tuple[object, ...]) -> TokenInfo:
    token_id, name, projects, created, revoked = row
    return TokenInfo(
        id=str(token_id),
        name=str(name),
        projects=tuple(json.loads(str(projects))),
        created_at=datetime.fromisoformat(str(created)),
        revoked_at=None if revoked is None else datetime.fromisoformat(str(revoked)),
    )


def bearer(header: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# -- request authentication --------------------------------------------------------------------

SCOPE_KEY = "provgraph.scope"
# Served to anyone on GET: liveness, and the web UI's static files (public code, no data; ui.py).
PUBLIC_PATHS = frozenset({"/healthz", "/"})
PUBLIC_PREFIX = "/assets/"
LOOPBACK_CLIENTS = frozenset({"127.0.0.1", "::1", "localhost"})


class Authenticate:
    """ASGI middleware: every request carries a valid bearer token, or gets a 401 and goes no further.

    The `Scope` it grants is put in the ASGI scope under `SCOPE_KEY` for the handlers. Anonymous:
    `GET /healthz`, the web UI's files (`GET /`, `GET /assets/…`) and `GET /graphql` without a query
    (the GraphiQL page); the requests those pages send carry the token the user gives them. With
    `tokens=None` (`--insecure-local`) every loopback request may see everything and any other
    client is refused.
    """

    def __init__(self, app: ASGIApp, tokens: TokenStore | None) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no subscriptions: websockets are not served
            await send({"type": "websocket.close", "code": 1008})
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX) or _graphiql(path, scope)):
            scope[SCOPE_KEY] = Scope(frozenset())
            await self.app(scope, receive, send)
            return
        if self.tokens is None:
            client = (scope.get("client") or ("",))[0]
            if client not in LOOPBACK_CLIENTS:
                await _refuse(send, 403, "this server runs with --insecure-local and answers only loopback clients")
                return
            if not _local_page(dict(scope["headers"])):
                await _refuse(
                    send,
                    403,
                    "this server runs with --insecure-local and answers only this machine's own pages"
                    " (Host and Origin must name 127.0.0.1, localhost or [::1])",
                )
                return
            scope[SCOPE_KEY] = Scope.everything()
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization")
        token = bearer(raw.decode("latin-1") if raw else None)
        info = self.tokens.verify(token) if token else None
        if info is None:
            reason = "missing API token" if token is None else "invalid or revoked API token"
            await _refuse(
                send, 401, f"{reason}: send 'Authorization: Bearer <token>' (create one with `provgraph token create`)"
            )
            return
        scope[SCOPE_KEY] = Scope(frozenset(info.projects), token_id=info.id)
        await self.app(scope, receive, send)


def _local_page(headers: dict[bytes, bytes]) -> bool:
    """A loopback client is a browser too: a page of another site may POST to it (no preflight for a
    text/plain body) or, renaming itself to 127.0.0.1 by DNS, read it. Without tokens, the request's
    `Host` must name loopback and its `Origin`, when a browser sends one, too."""
    host = headers.get(b"host", b"").decode("latin-1")
    origin = headers.get(b"origin")
    if not _loopback_host(host):
        return False
    if origin is None:
        return True
    scheme, sep, rest = origin.decode("latin-1").partition("://")
    return bool(sep) and scheme in ("http", "https") and _loopback_host(rest)


def _loopback_host(host: str) -> bool:
    """`127.0.0.1:8765`, `localhost`, `[::1]:8765` …: a loopback name, with or without a port."""
    name = host[1 : host.find("]")] if host.startswith("[") else host.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # any other name: what DNS says of it is the attacker's to choose
        return False


def _graphiql(path: str, scope: ASGIScope) -> bool:
    """GET /graphql without a `query` parameter, parsed exactly as strawberry parses it: GraphiQL renders,
    nothing executes."""
    return path == "/graphql" and "query" not in QueryParams(scope["query_string"])


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="provgraph"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
