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
from provgraph.pipelines.status import is_pipeline_run

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
        graph = backend.graph()
        found = graph.run(resolve_run(graph, run_id))
        if found is not None and is_pipeline_run(found):
            reproduce_pipeline_cmd(found.run_id, backend, runtime)
            return
        result = reproduce(resolve_run(graph, run_id), runtime=runtime, image=image, backend=backend)
    finally:
        backend.close()
    print_result(result)
    print_verdict(result)
    if result.verdict is not None and result.verdict.verdict == "DIVERGED":
        raise typer.Exit(3)
    if result.state == RunState.FAIL:
        raise typer.Exit(1)


def reproduce_pipeline_cmd(run_id: str, backend: Backend, runtime: str | None) -> None:
    """Every step of a pipeline run, each with its verdict, then the pipeline's (exit 3 unless REPRODUCED)."""
    from provgraph.pipelines.reproduce import reproduce_pipeline

    found = reproduce_pipeline(run_id, backend, runtime=runtime)
    for s in found.steps:
        style = VERDICT_STYLE.get(s.verdict, "white")
        again = f" as {s.result.run_id}" if s.result is not None else ""
        console.print(f"  step {s.step:<20} {s.original_run_id}{again}: [{style}]{s.verdict}[/]")
        if s.reason:
            console.print(f"       {s.reason}", highlight=False)
    console.print(f"pipeline run {run_id}: [{VERDICT_STYLE.get(found.verdict, 'bold red')}]{found.verdict}[/]")
    if found.verdict != "REPRODUCED":
        raise typer.Exit(3)


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
