"""The web UI and GraphiQL, served from files shipped in the package (api/ui_dist/, built by `make ui`).

    GET /               the UI (one page; its routes live in the URL's #fragment)
    GET /assets/<file>  its scripts, styles and fonts (content-hashed names, cached for a year)
    GET /graphql        GraphiQL from the same bundle (no CDN: it works offline)

These files are public code, the same for every caller: they carry no data, so they are served
without a token (see `auth.PUBLIC_PATHS`); every query the UI then sends carries the token the user
typed in, and is scoped like any other API request.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

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


def ui_routes() -> list[BaseRoute]:
    """`/` and `/assets/…`; public like the GraphiQL page (see the module docstring)."""
    return [
        Route("/", index, methods=["GET"]),
        Mount(ASSETS_PREFIX.rstrip("/"), app=Assets(directory=UI_DIST / "assets", check_dir=False), name="assets"),
    ]
