"""`provgraph logs RUN_ID [-f]`: a run's captured stdout, stderr and logger records."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from provgraph._backend import Backend
from provgraph.cli._app import app, settings
from provgraph.cli._resolve import resolve_run
from provgraph.events.errors import NotFound
from provgraph.events.model import RunState
from provgraph.graph.factory import StoreHandle, open_store
from provgraph.graph.run_logs import read_log
from provgraph.graph.views import LogChunkView, RunView

FOLLOW_POLL_S = 1.0


@app.command("logs")
def logs_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id, run:<id>, or a unique prefix")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing output until the run ends")] = False,
    tail: Annotated[int | None, typer.Option(min=0, help="Only the last TAIL bytes")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="{run_id, state, start, end, text} as one JSON object")
    ] = False,
) -> None:
    """Print what a run wrote on stdout and stderr and what it logged (the traceback is in `show`)."""
    cfg = settings()
    handle = open_store(cfg)
    backend = Backend(cfg)
    try:
        rid = resolve_run(handle.fresh(), run_id)
        run, chunks = _read(handle, rid)
        if run is None:
            raise NotFound(f"no run {run_id!r} (see `provgraph runs`)")
        fetch = backend.artifacts.get_chunk
        if as_json or not follow:
            log = read_log(chunks, fetch, tail=tail)
            if as_json:
                print(
                    json.dumps(
                        {"run_id": rid, "state": run.state, "start": log.start, "end": log.end, "text": log.text}
                    )
                )
            else:
                _write(log.text)
            return
        at = read_log(chunks, fetch, tail=tail).start
        while True:
            done = run.state.is_terminal or run.state == RunState.LOST
            ready = chunks if done else _contiguous(chunks, at)
            log = read_log(ready, fetch, start=at)
            _write(log.text)
            at = log.end
            if done:
                return
            time.sleep(FOLLOW_POLL_S)
            run, chunks = _read(handle, rid)
            assert run is not None
    finally:
        backend.close()
        handle.close()


def _read(handle: StoreHandle, run_id: str) -> tuple[RunView | None, list[LogChunkView]]:
    store = handle.fresh()
    return store.run(run_id), store.log_chunks(run_id)


def _contiguous(chunks: list[LogChunkView], start: int) -> list[LogChunkView]:
    """The chunks that continue the output from `start` without a gap (a later one may still be on its way)."""
    out: list[LogChunkView] = []
    at = start
    for c in chunks:
        if c.offset > at:
            break
        out.append(c)
        at = max(at, c.offset + c.size)
    return out


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
