"""`provgraph --help`: the root help, drawn exactly as typer's rich help draws it.

typer draws help with `typer.rich_utils`, whose imports (rich.markdown with markdown_it and pygments,
rich.traceback with attrs) are more than half of what `provgraph --help` cost to start, and none of
them is needed in `rich` markup mode. The root help is the only one drawn here: its options are
flags with a help line and its commands are `COMMANDS` (one help line each), so this is the part of
typer's layout it uses (usage, help text, the Options and Commands panels). A command's own `--help`
is still typer's. tests/test_startup.py checks the output against typer's own, in colour and without.
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING

from rich.align import Align
from rich.columns import Columns
from rich.console import Console
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme
from typer.core import TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer import _click as click


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
    return _options(Text.from_markup(inspect.cleandoc(text), style=""))


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


def print_root_help(group: TyperGroup, ctx: click.Context) -> None:
    """Usage, the group's help line, its options and every command of `COMMANDS` with its help line."""
    console = _console()
    console.print(Padding(_options(group.get_usage(ctx)), 1), style="bold")
    if group.help:
        first = inspect.cleandoc(group.help).partition("\f")[0].split("\n\n")[0]
        console.print(Padding(Align(_markup(first.replace("\n", " ").strip()), pad=False), (0, 1, 1, 1)))

    options = _table(highlight=True)
    for param in group.get_params(ctx):
        if not isinstance(param, TyperOption) or param.hidden:
            continue
        kind = Text(style="bold yellow", overflow="fold")
        kind.append(param.display_type_rich(ctx=ctx) or "")
        help_lines = (param.help or "").split("\n\n")
        options.add_row(
            _options(",".join(o for o in param.opts if "--" in o)),
            _options(",".join(o for o in param.opts if "--" not in o)),
            _negative(",".join(o for o in param.secondary_opts if "--" in o)),
            _negative(",".join(o for o in param.secondary_opts if "--" not in o)),
            _types(kind),
            Columns(
                [_markup("\n".join(p.replace("\n", " ").strip() for p in help_lines).strip())] if param.help else []
            ),
        )
    console.print(Panel(options, border_style="dim", title="Options", title_align="left"))

    listed = [c for c in map(group.commands.get, group.list_commands(ctx)) if c is not None and not c.hidden]
    commands = _table(highlight=False)
    commands.add_column(style="bold cyan", no_wrap=True, width=max(len(c.name or "") for c in listed))
    commands.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for command in listed:
        help_text = inspect.cleandoc(command.short_help or command.help or "")
        commands.add_row(Text(command.name or ""), _markup(help_text.split("\n\n")[0].strip()))
    console.print(Panel(commands, border_style="dim", title="Commands", title_align="left"))
