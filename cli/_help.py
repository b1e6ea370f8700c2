"""`provgraph --help`: the root help, drawn exactly as typer's rich help draws it.

typer draws help with `typer.rich_utils`, whose imports (rich.markdown with markdown_it and pygments,
rich.traceback with attrs) are more than half of what `provgraph --help` cost to start, and none of
them is needed in `rich` markup mode. The root help is the only one drawn here: its options are
two flags with a help line (`ROOT_OPTIONS`) and its commands are `COMMANDS` (one help line each), so
this is the part of typer's layout it uses (usage, help text, the Options and Commands panels), drawn
from those tables alone: `provgraph --help` does not import typer at all (`cli.main`). A command's
own `--help` is still typer's. tests/test_startup.py checks the output against typer's own, in colour
and without, so a table that drifts from the options typer builds fails there.
"""

from __future__ import annotations

import os

from rich.align import Align
from rich.columns import Columns
from rich.console import Console
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from provgraph.cli._commands import COMMANDS, ROOT_HELP, VERSION_HELP

USAGE = "Usage: provgraph [OPTIONS] COMMAND [ARGS]..."
ROOT_OPTIONS = (("--version", VERSION_HELP), ("--help", "Show this message and exit."))
"""The root group's options as typer lists them: flags, so each shows the type `<bool>`."""


class _OptionHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _NegativeOptionHighlighter(RegexHighlighter):
    highlights = [
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights = [
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


_options = _OptionHighlighter()
_negative = _NegativeOptionHighlighter()
_types = _TypesHighlighter()
_THEME = {
    "option": "bold cyan",
    "switch": "bold green",
    "negative_option": "bold magenta",
    "negative_switch": "bold red",
    "types": "bold yellow",
    "types_sep": "dim",
    "usage": "yellow",
}


def _console() -> Console:
    """typer's help console: the same environment variables force or forbid a terminal and fix the width."""
    force = True if os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS") else None
    if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    width = os.getenv("TERMINAL_WIDTH")
    return Console(
        theme=Theme(_THEME),
        highlighter=_options,
        color_system="auto",
        force_terminal=force,
        width=int(width) if width else None,
    )


def _markup(text: str) -> Text:
    """Help text as typer draws it; the tables hold it already cleaned (`inspect.cleandoc`, which is
    not imported: tests/test_startup.py checks `COMMANDS` against the commands' cleaned help)."""
    return _options(Text.from_markup(text, style=""))


def _table(*, highlight: bool) -> Table:
    return Table(
        highlight=highlight,
        show_header=False,
        expand=True,
        box=None,
        show_lines=False,
        leading=0,
        border_style=None,
        row_styles=None,
        pad_edge=False,
        padding=(0, 1),
    )


def print_root_help() -> None:
    """Usage, the root help line, its options and every command of `COMMANDS` with its help line."""
    console = _console()
    console.print(Padding(_options(USAGE), 1), style="bold")
    first = ROOT_HELP.partition("\f")[0].split("\n\n")[0]
    console.print(Padding(Align(_markup(first.replace("\n", " ").strip()), pad=False), (0, 1, 1, 1)))

    options = _table(highlight=True)
    for opt, help_text in ROOT_OPTIONS:
        kind = Text(style="bold yellow", overflow="fold")
        kind.append("<bool>")
        options.add_row(
            _options(opt),
            _options(""),
            _negative(""),
            _negative(""),
            _types(kind),
            Columns([_markup(help_text.replace("\n", " ").strip())]),
        )
    console.print(Panel(options, border_style="dim", title="Options", title_align="left"))

    commands = _table(highlight=False)
    commands.add_column(style="bold cyan", no_wrap=True, width=max(map(len, COMMANDS)))
    commands.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for name, (_, help_text) in COMMANDS.items():
        commands.add_row(Text(name), _markup(help_text.split("\n\n")[0].strip()))
    console.print(Panel(commands, border_style="dim", title="Commands", title_align="left"))
