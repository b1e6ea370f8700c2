"""The typer application and helpers shared by the command modules."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from provgraph.events.errors import ConfigError
from provgraph.events.settings import Settings, load_settings

app = typer.Typer(
    name="provgraph",
    help="Track every run, explain every result, reproduce it from the graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _console(stderr: bool) -> Console:
    """On a terminal rich fits output to its width; anywhere else (a pipe, a file, a script) lines
    are never wrapped or cut, so full ids and URIs survive copy and `grep`."""
    if (sys.stderr if stderr else sys.stdout).isatty():
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=1_000_000)


console = _console(stderr=False)
err_console = _console(stderr=True)


INCLUDE_DELETED = typer.Option("--include-deleted", help="Also what `provgraph delete` hid (marked deleted)")


class UsageProblem(Exception):
    """The command was called in a way it cannot work (exit 2), e.g. a confirmation without a terminal."""


def _print_version(value: bool) -> None:
    if value:
        from provgraph import __version__

        console.print(f"provgraph {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Track every run, explain every result, reproduce it from the graph."""


def debug_requested() -> bool:
    """`--debug` anywhere on the command line, or PROVGRAPH_DEBUG=1: show tracebacks."""
    return "--debug" in sys.argv or os.environ.get("PROVGRAPH_DEBUG") == "1"


def settings() -> Settings:
    return load_settings()


def parse_pairs(pairs: list[str] | None, what: str, *, json_values: bool) -> dict[str, Any]:
    """`key=value` options; with `json_values` a value that parses as JSON is taken as JSON."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"cannot parse {what} {pair!r}: expected key=value")
        if json_values:
            try:
                out[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                out[key.strip()] = value
        else:
            out[key.strip()] = value
    return out


def short(digest: str | None, n: int = 12) -> str:
    if not digest:
        return "-"
    algo, _, hexd = digest.partition(":")
    return f"{algo}:{hexd[:n]}" if hexd else digest[:n]
