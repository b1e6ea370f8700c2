"""The typer application and helpers shared by the command modules.

Import-light (typer, rich's console): `provgraph --help` and every command start from here, and
settings (pydantic) load only when a command asks for them.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from provgraph.cli._commands import COMMANDS, ROOT_HELP, VERSION_HELP
from provgraph.cli._terminal import made_safe
from provgraph.events.errors import ConfigError

if TYPE_CHECKING:
    from typer import _click as click

    from provgraph.events.settings import Settings


class _Listed(TyperCommand):
    """A command known only by its `COMMANDS` entry: enough for `--help` to list it."""


class LazyGroup(TyperGroup):
    """The root group: lists every command from `COMMANDS` and imports a command's module only when
    that command is resolved (to run it, or to show its own `--help`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (_, help_text) in COMMANDS.items():
            self.commands.setdefault(name, _Listed(name, help=help_text))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """typer's rich help, drawn without importing typer's rich help module (see `_help`)."""
        from provgraph.cli._help import print_root_help

        print_root_help()

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and isinstance(self.commands.get(args[0]), _Listed):
            self.commands[args[0]] = _load(args[0])
        return super().resolve_command(ctx, args)


def _load(name: str) -> click.Command:
    """Import the module defining command `name` and build its click command from what it registered."""
    importlib.import_module(f"provgraph.cli.{COMMANDS[name][0]}")
    from typer.main import get_command_from_info, get_group_from_info

    markup = app.rich_markup_mode
    for info in app.registered_commands:
        if info.name == name:
            return get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=markup
            )
    for group in app.registered_groups:
        if group.name == name:
            return get_group_from_info(
                group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                suggest_commands=app.suggest_commands,
                rich_markup_mode=markup,
            )
    raise LookupError(f"provgraph.cli.{COMMANDS[name][0]} defines no command {name!r} (see cli/_commands.py)")


app = typer.Typer(
    name="provgraph",
    cls=LazyGroup,
    help=ROOT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _console(stderr: bool) -> Console:
    """On a terminal rich fits output to its width; anywhere else (a pipe, a file, a script) lines
    are never wrapped or cut, so full ids and URIs survive copy and `grep`. No `:name:` emoji codes:
    user text (a `a:b:c` name) prints verbatim, and rich's emoji table is not loaded (start-up time).
    Control characters of recorded text are shown, never sent (`_terminal.py`)."""
    if (sys.stderr if stderr else sys.stdout).isatty():
        return made_safe(Console(stderr=stderr, highlight=False, emoji=False))
    return made_safe(Console(stderr=stderr, highlight=False, emoji=False, soft_wrap=True, width=1_000_000))


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
        typer.Option("--version", callback=_print_version, is_eager=True, help=VERSION_HELP),
    ] = False,
) -> None:
    """Track every run, explain every result, reproduce it from the graph."""


def settings() -> Settings:
    from provgraph.events.settings import load_settings

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
            except RecursionError:
                raise ConfigError(f"cannot parse {what} {key.strip()!r}: its JSON nests too deep") from None
        else:
            out[key.strip()] = value
    return out


def short(digest: str | None, n: int = 12) -> str:
    if not digest:
        return "-"
    algo, _, hexd = digest.partition(":")
    return f"{algo}:{hexd[:n]}" if hexd else digest[:n]
