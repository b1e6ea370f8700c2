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


def _write(output: Path, data: bytes) -> None:
    """A regular file (or a new one) is replaced whole, never half written; a symlink's target is;
    anything else (`/dev/null`, `/dev/stdout`, a FIFO, a terminal) is written through, never
    replaced by a file (as root, renaming over `/dev/null` breaks every process of the machine)."""
    target = output.resolve() if output.is_symlink() else output
    if target.exists() and not target.is_file():
        if target.is_dir():
            raise ConfigError(f"{output} is a folder: name a file to write")
        with open(target, "wb") as f:
            f.write(data)
        return
    write_atomic(target, data)


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
        try:
            data = backend.artifacts.get_bytes(version)
        except FileNotFoundError:
            raise NotFound(
                f"{uri} ({version}) is recorded, but its bytes are not in the artifact store {backend.artifacts.url}"
                " (removed by `provgraph gc` after a delete, or by hand)"
            ) from None
    finally:
        backend.close()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _write(output, data)
        err_console.print(f"{ref.namespace}/{ref.key}@{version} -> {output} ({len(data)} bytes)", highlight=False)
