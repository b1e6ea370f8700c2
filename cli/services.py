"""Service commands: `launcher`, `pipeline-controller`, `projector` (long-running, stop with SIGTERM/Ctrl-C), `dlq list`
(the dead-letter topic) and `spool flush|status` (events waiting for Kafka or the HTTP endpoint on this machine).

The services' modules (faststream, aiokafka, kubernetes, neo4j) load only when a command runs.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Annotated

import typer
from rich.markup import escape

from provgraph.cli._app import app, console, err_console, settings
from provgraph.events.settings import require_kafka

dlq_app = typer.Typer(help="The dead-letter topic: records the services refused, and why.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
spool_app = typer.Typer(
    help="The local spool: events kept until Kafka or the HTTP endpoint accepts them.", no_args_is_help=True
)
app.add_typer(spool_app, name="spool")


def _service_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command("launcher")
def launcher_cmd() -> None:
    """Run the Kubernetes launcher: run requests from Kafka become Jobs; failed or deleted Jobs are reported."""
    from provgraph.services.launcher import run_launcher

    cfg = settings()
    _service_logging()
    err_console.print(f"provgraph launcher: requests from {require_kafka(cfg)} → Jobs in namespace {cfg.k8s_namespace}")
    run_launcher(cfg)


@app.command("pipeline-controller")
def pipeline_controller_cmd() -> None:
    """Run the pipeline controller: kubernetes-engine pipeline runs advance on run events (steps become Jobs)."""
    from provgraph.services.pipeline_controller import run_controller

    cfg = settings()
    _service_logging()
    err_console.print(f"provgraph pipeline-controller: pipeline runs from {require_kafka(cfg)} → run requests")
    run_controller(cfg)


@app.command("projector")
def projector_cmd() -> None:
    """Run the graph projector: the Kafka lineage topic into Neo4j, refusals to the dead-letter topic."""
    from provgraph.services.projector import run_projector

    cfg = settings()
    _service_logging()
    err_console.print(f"provgraph projector: {require_kafka(cfg)} → {cfg.neo4j_uri}")
    run_projector(cfg)


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N dead letters")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line, original bytes in base64")] = False,
) -> None:
    """List dead letters, oldest first: where the record was, which stage refused it, and why.

    Embedded (`PROVGRAPH_STORE=sqlite`): the events of the local log the projection refused.
    """
    cfg = settings()
    if cfg.store != "neo4j":
        _embedded_dlq_list(limit, as_json)
        return
    from provgraph.services.projector import list_dlq

    letters = list_dlq(cfg, limit)
    for letter in letters:
        if as_json:
            console.print(letter.to_bytes().decode(), soft_wrap=True)
            continue
        shown = _shown(letter.original_bytes)
        console.print(
            f"{letter.failed_at:%Y-%m-%d %H:%M:%S}  {letter.topic}/{letter.partition}@{letter.offset}"
            f"  [bold]{letter.stage}[/]  {escape(letter.error)}\n    {escape(shown)}",
            soft_wrap=True,
        )
    if not letters and not as_json:
        err_console.print("no dead letters")


def _embedded_dlq_list(limit: int, as_json: bool) -> None:
    from provgraph.graph.factory import open_store
    from provgraph.graph.sqlite_store import SqliteLineageStore

    store = open_store(settings()).fresh(include_deleted=True)  # syncs first, so what is listed is current
    assert isinstance(store, SqliteLineageStore)
    try:
        letters = store.dead_letters(limit)
    finally:
        store.close()
    where = str(settings().events_db)
    for d in letters:
        if as_json:
            record = {
                "error": d.error,
                "stage": d.stage,
                "log": where,
                "offset": d.log_offset,
                "original": base64.b64encode(d.original).decode("ascii"),
                "failed_at": d.failed_at,
            }
            console.print(json.dumps(record, sort_keys=True, separators=(",", ":")), soft_wrap=True)
            continue
        console.print(
            f"{d.failed_at[:19].replace('T', ' ')}  {where}@{d.log_offset}  [bold]{d.stage}[/]  {escape(d.error)}\n"
            f"    {escape(_shown(d.original))}",
            soft_wrap=True,
        )
    if not letters and not as_json:
        err_console.print("no dead letters")


def _shown(original: bytes) -> str:
    try:
        return json.dumps(original[:80].decode())
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(original[:80]).decode()


@spool_app.command("status")
def spool_status_cmd(as_json: Annotated[bool, typer.Option("--json", help="As one JSON object")] = False) -> None:
    """What is waiting in this machine's spool (no network)."""
    from provgraph.events.transport.factory import spool_status

    status = spool_status(settings())
    if as_json:
        print(
            json.dumps(
                {
                    "records": status.records,
                    "directory": str(status.directory),
                    "bytes": status.bytes,
                    "segments": status.segments,
                }
            )
        )
        return
    console.print(
        f"{status.records} event(s) waiting in {status.directory} ({status.bytes} bytes, {status.segments} segment(s))"
    )
    if status.rejected:
        console.print(f"{status.rejected} event(s) the endpoint rejected, kept in {status.directory / 'rejected'}")


@spool_app.command("flush")
def spool_flush_cmd(
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds")] = None,
) -> None:
    """Re-send the spool now, in order, to the HTTP endpoint (PROVGRAPH_TRANSPORT=http) or Kafka;
    exits 1 if events are still waiting."""
    from provgraph.events.transport.factory import spool_flush

    sent, remaining, reason = spool_flush(settings(), timeout)
    console.print(f"sent {sent} event(s); {remaining} still waiting" + (f": {reason}" if reason else ""))
    if remaining:
        raise typer.Exit(1)
