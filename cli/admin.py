"""Operating commands: `replay` rebuilds the graph from the event log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provgraph.cli._app import UsageProblem, app, console, err_console, settings


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@app.command("replay")
def replay_cmd(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Drop the lineage graph and rebuild it by replaying every event from the log."""
    cfg = settings()
    where = "Neo4j" if cfg.store == "neo4j" else str(cfg.graph_db)
    if not yes and not (sys.stdin and sys.stdin.isatty()):
        raise UsageProblem("replay drops the graph and asks for confirmation, but stdin is not a terminal; pass --yes")
    if not yes and not typer.confirm(f"Rebuild the graph in {where} from the event log?", default=True):
        raise typer.Abort()
    with _progress() as progress:
        task = progress.add_task("replaying", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        if cfg.store == "neo4j":
            from provgraph.services.projector import replay_neo4j

            count = replay_neo4j(cfg, report)
        else:  # without opening the graph first: a damaged one is what replay repairs
            from provgraph.events.transport.sqlite import SqliteEventLog
            from provgraph.graph.embedded import rebuild

            log = SqliteEventLog(cfg.events_db)
            try:
                count = rebuild(log, cfg.graph_db, report)
            finally:
                log.close()
    console.print(f"replayed {count} events into {where}")
    if cfg.store != "neo4j":
        _report_dead_letters(cfg.graph_db)


def _report_dead_letters(graph_db: Path) -> None:
    """Records of the log the replay could not project (a damaged or refused event) are in the DLQ:
    said at once, not left for someone to find."""
    from provgraph.graph.sqlite_store import SqliteLineageStore

    store = SqliteLineageStore(graph_db)
    try:
        dead = len(store.dead_letters())
    finally:
        store.close()
    if dead:
        err_console.print(
            f"[yellow]warning[/]: {dead} records of the log could not be projected: see `provgraph dlq list`"
        )
