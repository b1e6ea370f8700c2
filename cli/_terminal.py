"""What reaches the terminal: recorded text is data, never terminal commands.

Names, params, error messages and facets come from any producer the record accepts (an OpenLineage
event through the API, a hub source, another user's run). A name holding ESC could recolour the
terminal, set its title, move the cursor over earlier lines or, through OSC 52, write the user's
clipboard; a bidi override could make a name read as another. rich escapes its own markup but sends
these characters as they are, so every console of the CLI renders through `Visible`, which shows
them as `\\x1b`, `\\u202e` …; rich's own control output (cursor moves of a progress display) and the
styles it adds are untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook, RichCast
from rich.segment import Segment

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 controls but tab and newline, DEL, C1 controls, and the bidi marks, embeddings, overrides and isolates."""


def visible(text: str) -> str:
    """`text` with every unsafe character written as its Python escape."""
    return _UNSAFE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


class Visible:
    """A renderable rendered as `inner` is, with unsafe characters of its text made visible."""

    def __init__(self, inner: ConsoleRenderable | RichCast | str) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        for segment in console.render(self.inner, options):
            if segment.control is None and _UNSAFE.search(segment.text):
                yield Segment(visible(segment.text), segment.style)
            else:
                yield segment


class _VisibleHook(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [Visible(r) for r in renderables]


def made_safe(console: Console) -> Console:
    """`console`, rendering everything it prints through `Visible`."""
    console.push_render_hook(_VisibleHook())
    return console
