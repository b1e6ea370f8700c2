"""`provgraph doctor`: runs whose events did not all reach provgraph (see graph/completeness.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from provgraph.cli._app import app, console, settings
from provgraph.graph.factory import open_store


@app.command("doctor")
def doctor_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    first: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many runs")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per incomplete run, one per line")] = False,
) -> None:
    """List incomplete runs: a gap in their events, no START, no end long after their last event, or
    fewer events than their producer declared."""
    found = open_store(settings()).fresh().incomplete_runs(project, first)
    if as_json:
        for r in found:
            c = r.completeness
            print(
                json.dumps(
                    {
                        "run_id": r.run_id,
                        "project": r.namespace,
                        "job": r.job_name,
                        "state": r.state.value,
                        "missing": c.missing if c else [],
                        "reasons": c.reasons if c else [],
                    }
                )
            )
        return
    if not found:
        console.print("every run is complete")
        return
    table = Table("run", "project", "job", "state", "reasons", "missing events")
    for r in found:
        c = r.completeness
        table.add_row(
            r.run_id,
            r.namespace,
            r.job_name,
            r.state.value,
            ", ".join(c.reasons) if c else "",
            ", ".join(map(str, c.missing)) if c else "",
        )
    console.print(table)
