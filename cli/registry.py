"""`provgraph compare RUN RUN [RUN…]`: runs side by side, differences highlighted."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from provgraph.cli._app import UsageProblem, app, console, settings
from provgraph.cli._resolve import resolve_run
from provgraph.events.errors import NotFound
from provgraph.graph.compare import MAX_COMPARED, compare
from provgraph.graph.factory import open_store


@app.command("compare")
def compare_cmd(
    run_ids: Annotated[
        list[str], typer.Argument(help=f"2 to {MAX_COMPARED} run ids (or run:<id>, or unique prefixes)")
    ],
    only_differences: Annotated[bool, typer.Option("--diff", help="Only the rows that differ")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="{run_ids, rows: [{section, key, values, differs}]}")] = False,
) -> None:
    """Runs side by side: params, metrics, results, input/output hashes, code, environment; differences marked."""
    if not 2 <= len(run_ids) <= MAX_COMPARED:
        raise UsageProblem(f"compare 2 to {MAX_COMPARED} runs (got {len(run_ids)})")
    handle = open_store(settings())
    try:
        store = handle.fresh()
        runs = []
        for raw in run_ids:
            run = store.run(resolve_run(store, raw))
            if run is None:
                raise NotFound(f"no run {raw!r} (see `provgraph runs`)")
            runs.append(run)
    finally:
        handle.close()
    result = compare(runs)
    rows = [r for r in result.rows if r.differs or not only_differences]
    if as_json:
        print(json.dumps({"run_ids": result.run_ids, "rows": [r.model_dump() for r in rows]}))
        return
    table = Table("", "", *result.run_ids, title=f"{sum(r.differs for r in result.rows)} differences (≠)")
    for r in rows:
        cells = [escape(_text(v)) for v in r.values]
        if r.differs:
            cells = [f"[bold yellow]{c}[/]" for c in cells]
        table.add_row(r.section, ("≠ " if r.differs else "  ") + escape(r.key), *cells)
    console.print(table)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)
