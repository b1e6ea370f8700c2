"""The web UI and GraphiQL, served from files shipped in the package (api/ui_dist/, built by `make ui`).

    GET /               the UI (one page; its routes live in the URL's #fragment)
    GET /assets/<file>  its scripts, styles and fonts (content-hashed names, cached for a year)
    GET /features.json  the schema's types and fields, which the UI adapts to (computed once; with a
                        token like any API call: the UI's sign-in check)
    GET /graphql        GraphiQL from the same bundle (no CDN: it works offline)

and `codeSnapshot(runId)`, the one query the UI adds to the schema (a run's source, for its page).

These files are public code, the same for every caller: they carry no data, so they are served
without a token (see `auth.PUBLIC_PATHS`); every query the UI then sends carries the token the user
typed in, and is scoped like any other API request.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import anyio
import strawberry
from graphql import GraphQLSchema, graphql_sync
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope
from strawberry.types import Info

from provgraph.api.context import RequestContext
from provgraph.api.schema import resolver
from provgraph.events.artifacts import ArtifactStore, check_digest
from provgraph.events.settings import Settings
from provgraph.graph.ids import as_run_id

# Resolved: under the strict editable install ui.py is a symlink, and StaticFiles serves no symlinks.
UI_DIST = Path(__file__).resolve().with_name("ui_dist")
ASSETS_PREFIX = "/assets/"

# The pages are small and change with every build: never cached. Assets are named by their content.
_PAGE_HEADERS = {"cache-control": "no-cache", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
_ASSET_HEADERS = {"cache-control": "public, max-age=31536000, immutable", "x-content-type-options": "nosniff"}
# Everything comes from this server; the UI only ever talks to this origin.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _page(name: str) -> str:
    path = UI_DIST / name
    if not path.is_file():
        raise HTTPException(404, f"the web UI is not built into this package ({name} missing): run `make ui`")
    return path.read_text(encoding="utf-8")


def page_response(name: str) -> HTMLResponse:
    return HTMLResponse(_page(name), headers={**_PAGE_HEADERS, "content-security-policy": _CSP})


async def index(request: Request) -> Response:
    return page_response("index.html")


class Assets(StaticFiles):
    """The bundle's assets, with long-lived caching (their names change when their content does)."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if isinstance(response, FileResponse):
            response.headers.update(_ASSET_HEADERS)
        return response


_TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
FEATURES_QUERY = (
    f"query Features {{ __schema {{ types {{ name fields {{ name args {{ name }} type {{ {_TYPE_REF} }} }} }} }} }}"
)
"""What the UI reads of the schema: every type's fields, their arguments and types."""


@functools.cache
def _features(schema: GraphQLSchema) -> bytes:
    result = graphql_sync(schema, FEATURES_QUERY)
    if result.errors:  # the schema is the package's own: an error here is a bug
        raise RuntimeError(f"introspection failed: {result.errors[0].message}")
    return json.dumps(result.data, separators=(",", ":")).encode()


def ui_routes(schema: GraphQLSchema) -> list[BaseRoute]:
    """`/` and `/assets/…`, public like the GraphiQL page (see the module docstring), and `/features.json`.

    The features are introspected once per process: asked per page load they cost the first paint
    more than the page's own query (half a second under load at 100k runs, docs/BENCHMARKS.md)."""

    async def features(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(_features, schema)
        return Response(body, media_type=JSONResponse.media_type, headers=_PAGE_HEADERS)

    return [
        Route("/", index, methods=["GET"]),
        Route("/features.json", features, methods=["GET"]),
        Mount(ASSETS_PREFIX.rstrip("/"), app=Assets(directory=UI_DIST / "assets", check_dir=False), name="assets"),
    ]


# -- the one query the UI needs beyond the shared schema --------------------------------------

MAX_SNAPSHOT_BYTES = 512 * 1024
"""A snapshot is one module file; anything larger is not shown (a forged code hash may name any object)."""


@strawberry.type(description="The source a run executed: its code snapshot, by content hash.")
class CodeSnapshot:
    code_hash: str
    entrypoint: str | None
    size: int
    text: str | None = strawberry.field(
        description=f"The source as UTF-8 (undecodable bytes replaced); null past {MAX_SNAPSHOT_BYTES} bytes."
    )


def _read_snapshot(settings: Settings, code_hash: str) -> tuple[int, bytes | None] | None:
    store = ArtifactStore(settings.artifact_url, settings.s3_endpoint_url)
    uri = store.uri(check_digest(code_hash))
    try:
        size = int(store.fs.size(uri))
    except FileNotFoundError:
        return None
    return size, (store.get_bytes(code_hash) if size <= MAX_SNAPSHOT_BYTES else None)


@strawberry.type
class UiQuery:
    @resolver("The code snapshot of a run you may see; null when none was kept.")
    async def code_snapshot(self, info: Info[RequestContext, None], run_id: strawberry.ID) -> CodeSnapshot | None:
        ctx = info.context
        run = await ctx.run_detail(as_run_id(str(run_id)))
        if run is None or not ctx.scope.run_visible(run) or ctx.settings is None:
            return None
        version = run.job_version
        code_hash = version.code_hash if version else run.code_hash
        if not code_hash or not code_hash.startswith("sha256:"):
            return None
        found = await ctx.call(_read_snapshot, ctx.settings, code_hash)
        if found is None:
            return None
        size, data = found
        return CodeSnapshot(
            code_hash=code_hash,
            entrypoint=version.entrypoint if version else None,
            size=size,
            text=None if data is None else data.decode("utf-8", errors="replace"),
        )
