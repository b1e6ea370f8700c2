"""The `provgraph` command line (typer + rich).

Every failure is one line on stderr (`--debug`, or PROVGRAPH_DEBUG=1, shows the traceback instead):
    exit 2   usage: unknown command or option, missing argument, unparsable option value
    exit 1   bad input: unknown file, function or run, a bad setting, an unreachable service
    exit 130 interrupted (Ctrl-C, or "no" to a confirmation)
Usage errors are typer's exceptions (`typer.TyperException`; typer vendors its own click, so
`click.exceptions` would never match them).

Commands load lazily: `provgraph --help` lists them from `cli/_commands.py` (name, module, one-line
help) without importing any command module, and a command's module is imported when it runs. To
register a command, define it in its module with `@app.command("name")` (or `app.add_typer(...)` for a
group; `app` from `provgraph.cli._app`) and add its line to `COMMANDS` in `cli/_commands.py`.
Keep heavy imports (pandas, httpx, neo4j, kafka...) inside the command functions that need them.
`provgraph --help` alone is drawn from the tables without importing typer (`_help`).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

__all__ = ["app", "debug_requested", "main"]


def __getattr__(name: str) -> Any:
    """`provgraph.cli.app`, the typer application, imported when asked for (not by `--help`)."""
    if name == "app":
        from provgraph.cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def debug_requested() -> bool:
    """`--debug` anywhere on the command line, or PROVGRAPH_DEBUG=1: show tracebacks."""
    return "--debug" in sys.argv or os.environ.get("PROVGRAPH_DEBUG") == "1"


def fail(message: str, code: int, label: str = "error") -> NoReturn:
    """`label: message` as one line on stderr (`message` already escaped: `one_line`), then exit `code`."""
    from provgraph.cli._app import err_console

    err_console.print(f"[bold red]{label}:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _aborted() -> None:
    from provgraph.cli._app import err_console

    err_console.print("aborted")
    sys.exit(130)


def main() -> None:
    debug = debug_requested()
    args = [a for a in sys.argv[1:] if a != "--debug"]
    if args == ["--help"]:
        try:
            from provgraph.cli._help import print_root_help

            print_root_help()
            print()  # (click echoes the empty rest of typer's help formatter: one newline)
        except KeyboardInterrupt:
            _aborted()
        except OSError as exc:  # (a closed pipe): one line and exit 1, as from any command
            if debug:
                raise
            fail(one_line(str(exc)), 1)
        sys.exit(0)
    import typer

    from provgraph.cli._app import UsageProblem, app
    from provgraph.events.errors import ProvgraphError

    try:
        code = app(args=args, prog_name="provgraph", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        _aborted()
    except typer.TyperException as exc:
        # Parsing failed (typer.Exit is not one of these). With no arguments at all typer has
        # already printed the help, and the message is empty.
        message = exc.format_message()
        if message:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            fail(one_line(message) + hint, exc.exit_code)
        sys.exit(exc.exit_code)
    except UsageProblem as exc:
        fail(one_line(str(exc)), 2)
    except (ProvgraphError, OSError) as exc:
        if debug:
            raise
        fail(one_line(str(exc)), 1)
    except Exception as exc:
        if debug:
            raise
        trouble = _storage_trouble(exc)
        if trouble == "failed":
            fail(
                f"the embedded store could not be read or written: {one_line(str(exc))}"
                " (is its disk full, or its folder read-only?)",
                1,
            )
        if trouble == "damaged":
            fail(
                f"a database of the embedded store is damaged: {one_line(str(exc))}. The lineage graph"
                " (graph.db) is rebuilt from the log by `provgraph replay`; the event log (events.db) is the"
                " record: restore it from a backup, or salvage what it holds with `sqlite3 events.db .recover`",
                1,
            )
        fail(f"{type(exc).__name__}: {one_line(str(exc))} (run with --debug for the traceback)", 2, "internal error")
    sys.exit(code if isinstance(code, int) else 0)


_SQLITE_TROUBLE = {
    "SQLITE_FULL": "failed",
    "SQLITE_IOERR": "failed",
    "SQLITE_CANTOPEN": "failed",
    "SQLITE_READONLY": "failed",
    "SQLITE_CORRUPT": "damaged",
    "SQLITE_NOTADB": "damaged",
}
"""SQLite's primary result codes that are the machine's trouble, not a bug of ours: the store could not
be read or written (a full disk, an I/O error, a read-only folder), or a file is damaged."""


def _storage_trouble(exc: BaseException) -> str | None:
    """ "failed", "damaged" or None for an error of the event log (sqlite3) or the graph (apsw)."""
    import sqlite3

    if isinstance(exc, sqlite3.Error):  # extended names (SQLITE_IOERR_WRITE …) start with the primary one
        name = str(getattr(exc, "sqlite_errorname", ""))
        return next((kind for code, kind in _SQLITE_TROUBLE.items() if name.startswith(code)), None)
    if "apsw" not in sys.modules:  # the graph's binding, loaded only when the graph was opened
        return None
    from provgraph.graph import sqlite_db

    apsw = sys.modules["apsw"]
    if isinstance(exc, sqlite_db.DAMAGED):
        return "damaged"
    failed = apsw.FullError | apsw.IOError | apsw.CantOpenError | apsw.ReadOnlyError
    return "failed" if isinstance(exc, failed) else None


def one_line(text: str) -> str:
    """User text printed verbatim: `[...]` in a message is not rich markup, and it stays one line."""
    from rich.markup import escape

    return escape(" ".join(text.splitlines()))
