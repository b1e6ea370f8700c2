"""`provgraph delete run|artifact|project` (tombstone events) and `provgraph gc` (free unreferenced bytes)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape

from provgraph._backend import Backend
from provgraph._delete import delete, gc
from provgraph.cli._app import UsageProblem, app, console, settings
from provgraph.graph.tombstones import Tombstone

delete_app = typer.Typer(
    help="Delete a run, an artifact or a project: recorded as a tombstone event, hidden from queries.",
    no_args_is_help=True,
)
app.add_typer(delete_app, name="delete")

Reason = Annotated[str, typer.Option("--reason", help="Why (kept with the tombstone)")]
AsJson = Annotated[bool, typer.Option("--json", help="The recorded tombstone as JSON")]


def _record(kind: str, target: str, reason: str, as_json: bool) -> None:
    backend = Backend(settings())
    try:
        tomb = delete(kind, target, backend, reason=reason)
    finally:
        backend.close()
    if as_json:
        print(json.dumps(tombstone_json(tomb)))
        return
    console.print(f"deleted {tomb.kind} {escape(tomb.target)} (by {escape(tomb.by)}, run {tomb.run_id})")


@delete_app.command("run")
def run_cmd(
    run_id: Annotated[str, typer.Argument(help="The run's id")], reason: Reason = "", as_json: AsJson = False
) -> None:
    """Hide a run from listings and lookups; lineage through it still shows it, marked deleted."""
    _record("run", run_id, reason, as_json)


@delete_app.command("artifact")
def artifact_cmd(
    uri: Annotated[str, typer.Argument(help="store://project/key (every version) or …@sha256:… / …:alias (one)")],
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Hide an artifact (or one version): never listed, resolved, or used as a cache source again."""
    _record("artifact", uri, reason, as_json)


@delete_app.command("project")
def project_cmd(
    project: Annotated[str, typer.Argument(help="The project")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    reason: Reason = "",
    as_json: AsJson = False,
) -> None:
    """Hide every run and artifact of a project."""
    if not yes and not (sys.stdin and sys.stdin.isatty()):
        raise UsageProblem("deleting a project asks for confirmation, but stdin is not a terminal; pass --yes")
    if not yes and not typer.confirm(f"Delete project {project!r} (every run and artifact)?", default=False):
        raise typer.Abort()
    _record("project", project, reason, as_json)


@app.command("gc")
def gc_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed")] = False,
    min_age: Annotated[
        float, typer.Option("--min-age", help="Keep objects younger than this many hours (uploads under way)")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="The removed objects and bytes freed as JSON")] = False,
) -> None:
    """Remove artifact-store bytes that no live (non-deleted) version, code snapshot or log references."""
    backend = Backend(settings())
    try:
        report = gc(backend, dry_run=dry_run, min_age=timedelta(hours=max(0.0, min_age)))
    finally:
        backend.close()
    if as_json:
        removed = [{"digest": o.digest, "size": o.size} for o in report.removed]
        print(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "removed": removed,
                    "freed": report.freed,
                    "kept": report.kept,
                    "unfinished_uploads": report.debris,
                }
            )
        )
        return
    verb = "would remove" if dry_run else "removed"
    for o in report.removed:
        console.print(f"{verb} {o.digest} ({o.size} bytes)", highlight=False)
    debris = f"; {verb} {report.debris} unfinished uploads" if report.debris else ""
    console.print(f"{verb} {len(report.removed)} objects, {report.freed} bytes; kept {report.kept}{debris}")


def tombstone_json(t: Tombstone) -> dict[str, Any]:
    return {
        "kind": t.kind,
        "target": t.target,
        "project": t.project,
        "at": t.at.isoformat(),
        "by": t.by,
        "reason": t.reason,
        "run_id": t.run_id,
    }
