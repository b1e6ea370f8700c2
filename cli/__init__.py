"""The `provgraph` command line (typer + rich).

Errors a user can fix (bad input, unknown ids, unreachable services) print one line and exit 1;
`--debug` (or PROVGRAPH_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import click

from provgraph.cli import admin, demo, lineage, reproduce, runs, serve, services  # noqa: F401  (registers commands)
from provgraph.cli._app import app, err_console
from provgraph.events.errors import ProvgraphError

__all__ = ["app", "main"]


def main() -> None:
    debug = "--debug" in sys.argv or os.environ.get("PROVGRAPH_DEBUG") == "1"
    args = [a for a in sys.argv[1:] if a != "--debug"]
    try:
        code = app(args=args, prog_name="provgraph", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ProvgraphError, OSError) as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except Exception as exc:
        if debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
