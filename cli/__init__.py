"""The `provgraph` command line (typer + rich).

Every failure is one line on stderr (`--debug`, or PROVGRAPH_DEBUG=1, shows the traceback instead):
    exit 2   usage: unknown command or option, missing argument, unparsable option value
    exit 1   bad input: unknown file, function or run, a bad setting, an unreachable service
    exit 130 interrupted (Ctrl-C, or "no" to a confirmation)
Usage errors are typer's exceptions (`typer.TyperException`; typer vendors its own click, so
`click.exceptions` would never match them).
"""

from __future__ import annotations

import sys

import typer

from provgraph.cli import (  # noqa: F401  (registers commands)
    admin,
    artifacts,
    delete,
    demo,
    diff,
    doctor,
    function,
    hub,
    lineage,
    logs,
    pipeline,
    registry,
    reproduce,
    runs,
    search,
    serve,
    services,
    tags,
)
from provgraph.cli._app import UsageProblem, app, debug_requested, err_console
from provgraph.events.errors import ProvgraphError

__all__ = ["app", "main"]


def _fail(message: str, code: int, label: str = "error") -> None:
    err_console.print(f"[bold red]{label}:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    debug = debug_requested()
    args = [a for a in sys.argv[1:] if a != "--debug"]
    try:
        code = app(args=args, prog_name="provgraph", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:
        # Parsing failed (typer.Exit is not one of these). With no arguments at all typer has
        # already printed the help, and the message is empty.
        message = exc.format_message()
        if message:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _fail(_escape(message) + hint, exc.exit_code)
        sys.exit(exc.exit_code)
    except UsageProblem as exc:
        _fail(_escape(str(exc)), 2)
    except (ProvgraphError, OSError) as exc:
        if debug:
            raise
        _fail(_escape(str(exc)), 1)
    except Exception as exc:
        if debug:
            raise
        _fail(f"{type(exc).__name__}: {_escape(str(exc))} (run with --debug for the traceback)", 2, "internal error")
    sys.exit(code if isinstance(code, int) else 0)


def _escape(text: str) -> str:
    """User text printed verbatim: `[...]` in a message is not rich markup, and it stays one line."""
    from rich.markup import escape

    return escape(" ".join(text.splitlines()))
