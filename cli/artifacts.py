"""`provgraph get store://project/key[@sha256:…] [-o PATH]`: fetch a logged artifact's bytes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from provgraph._backend import Backend
from provgraph._naming import is_store_uri, parse_store_uri, resolve_version
from provgraph.cli._app import app, err_console, settings
from provgraph.events.atomic import write_atomic
from provgraph.events.errors import ConfigError, NotFound


@app.command("get")
def get_cmd(
    uri: Annotated[str, typer.Argument(help="store://project/key[@sha256:…|:alias] (neither: the latest version)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")] = None,
) -> None:
    """Download any logged version of an artifact, verified against its content hash."""
    if not is_store_uri(uri):
        raise ConfigError(f"not an artifact URI: {uri!r} (expected store://<project>/<key>[@sha256:…])")
    ref = parse_store_uri(uri)
    backend = Backend(settings())
    try:
        graph = backend.graph()
        try:
            version: str | None = resolve_version(ref, graph)
        except NotFound:
            version = None
        if version is None or graph.dataset_version(ref.namespace, ref.key, version) is None:
            raise NotFound(f"no artifact {uri} (see `provgraph lineage` or `provgraph show RUN_ID`)")
        data = backend.artifacts.get_bytes(version)
    finally:
        backend.close()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomic(output, data)
        err_console.print(f"{ref.namespace}/{ref.key}@{version} -> {output} ({len(data)} bytes)", highlight=False)
