"""`provgraph reproduce`: re-run a run from the graph alone and print the verdict."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from provgraph._backend import Backend
from provgraph._execution import RunResult
from provgraph._reproduce import reproduce
from provgraph.cli._app import app, console, settings
from provgraph.cli._resolve import resolve_run
from provgraph.cli.runs import print_result
from provgraph.events.model import RunState

VERDICT_STYLE = {"REPRODUCED": "bold green", "DIVERGED": "bold red", "PENDING": "yellow"}


@app.command("reproduce")
def reproduce_cmd(
    run_id: Annotated[str, typer.Argument(help="The run to reproduce (run id, unique prefix or run:<id>)")],
    runtime: Annotated[str | None, typer.Option(help="local or kubernetes; default the original's")] = None,
    image: Annotated[str | None, typer.Option(help="Override the container image")] = None,
) -> None:
    """Re-run RUN_ID with its exact code, params and inputs, and compare the outputs."""
    backend = Backend(settings())
    try:
        result = reproduce(resolve_run(backend.graph(), run_id), runtime=runtime, image=image, backend=backend)
    finally:
        backend.close()
    print_result(result)
    print_verdict(result)
    if result.verdict is not None and result.verdict.verdict == "DIVERGED":
        raise typer.Exit(3)
    if result.state == RunState.FAIL:
        raise typer.Exit(1)


def print_verdict(result: RunResult) -> None:
    v = result.verdict
    if v is None:
        console.print("verdict pending: it is recorded when the run completes (`provgraph show` then shows it)")
        return
    console.print(f"reproduces {v.run_id}: [{VERDICT_STYLE.get(v.verdict, 'white')}]{v.verdict}[/]")
    for diff in v.differences:
        console.print(f"  differs  {json.dumps(diff)}")
    changed = [k for k, e in v.environment.items() if not e.get("same")]
    if v.environment:
        console.print(
            "  environment "
            + (
                "unchanged"
                if not changed
                else "changed: "
                + ", ".join(f"{k} {v.environment[k]['original']} -> {v.environment[k]['reproduced']}" for k in changed)
            )
        )
