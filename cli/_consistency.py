"""`--consistent-with TOKEN` for read commands: wait until the graph holds a write (read-your-writes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from provgraph.events.consistency import parse

if TYPE_CHECKING:
    from provgraph.events.settings import Settings
    from provgraph.graph.factory import StoreHandle

CONSISTENT_WITH = typer.Option(
    "--consistent-with",
    metavar="TOKEN",
    help="Wait (up to consistency_timeout_s) until the graph holds this write: a run's `position` (`run --json`)",
)


def wait(handle: StoreHandle, token: str | None, settings: Settings) -> StoreHandle:
    """`handle`, once its graph holds `token`'s position (no token: at once). A malformed token, one
    about another log, or one not reached in time is a one-line error (exit 1)."""
    if token is not None:
        from provgraph.graph.progress import wait_until

        wait_until(handle, parse(token), settings.consistency_timeout_s)
    return handle
