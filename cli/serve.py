"""`provgraph serve` (the GraphQL API) and `provgraph token create|list|revoke` (its API tokens).

The API modules (strawberry, uvicorn) load only when a command runs, so the CLI starts fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from provgraph.cli._app import app, console, err_console, settings

token_app = typer.Typer(help="API tokens: each is scoped to one or more projects.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: PROVGRAPH_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PROVGRAPH_API_PORT, 8765)")] = None,
    insecure_local: Annotated[
        bool, typer.Option("--insecure-local", help="Serve without API tokens; only on 127.0.0.1/localhost")
    ] = False,
) -> None:
    """Serve the web UI at /, GraphQL (GraphiQL) at /graphql and OpenLineage ingest at POST /api/v1/lineage."""
    from provgraph.api.server import check_insecure_local, serve

    cfg = settings()
    host = host or cfg.api_host
    port = cfg.api_port if port is None else port
    check_insecure_local(host, insecure_local)
    auth = "no tokens (--insecure-local)" if insecure_local else f"bearer tokens from {cfg.tokens_db}"
    err_console.print(
        f"provgraph on http://{host}:{port}/ (web UI; GraphQL and GraphiQL at /graphql) — store {cfg.store}, {auth}"
    )
    serve(cfg, host, port, insecure_local=insecure_local)


@token_app.command("create")
def token_create(
    project: Annotated[
        list[str] | None, typer.Option("--project", "-p", help="Project the token may read and write (repeatable)")
    ] = None,
    name: Annotated[str, typer.Option(help="A label to recognise the token by")] = "",
) -> None:
    """Create a token and print it once; only its hash is kept."""
    from provgraph.api.auth import TokenStore

    store = TokenStore(settings().tokens_db)
    try:
        info, token = store.create(project or [], name=name)
    finally:
        store.close()
    err_console.print(
        f"token {info.id} ({info.name}) for {', '.join(info.projects)}; shown once, store it now:", highlight=False
    )
    console.print(token, soft_wrap=True)


@token_app.command("list")
def token_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per token, one per line")] = False,
) -> None:
    """List tokens (never their secrets)."""
    from provgraph.api.auth import TokenStore

    store = TokenStore(settings().tokens_db)
    try:
        tokens = store.tokens()
    finally:
        store.close()
    if as_json:
        for t in tokens:
            revoked = t.revoked_at.isoformat() if t.revoked_at else None
            print(
                json.dumps(
                    {
                        "id": t.id,
                        "name": t.name,
                        "projects": list(t.projects),
                        "created_at": t.created_at.isoformat(),
                        "active": t.active,
                        "revoked_at": revoked,
                    }
                )
            )
        return
    table = Table("id", "name", "projects", "created", "status")
    for t in tokens:
        status = "active" if t.active else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(t.id, t.name, ", ".join(t.projects), f"{t.created_at:%Y-%m-%d %H:%M}", status)
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="Token id (see `provgraph token list`)")]) -> None:
    """Revoke a token; requests with it get 401 from the next one on."""
    from provgraph.api.auth import TokenStore

    store = TokenStore(settings().tokens_db)
    try:
        info = store.revoke(token_id)
    finally:
        store.close()
    console.print(f"revoked token {info.id} ({info.name})")
