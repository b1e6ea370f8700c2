"""Is a START/RUNNING run still going? The derived state LOST, computed when a run is read.

A run only ends when its process says so (COMPLETE/FAIL/ABORT), so a process killed with `kill -9`,
a dead machine or a lost pod would leave it RUNNING forever. Nothing stored changes here: both
stores hand their rows to `rows.run_view`, which asks `Liveness.lost` and shows LOST with a reason.

- **Same host** (the run's recorded host, boot id and pid namespace equal the reader's): the
  process is checked directly. Its pid must exist *and* have the start time recorded at START
  (`/proc/<pid>/stat` field 22, clock ticks since boot), so a reused pid is not mistaken for the run.
- **Anywhere else**: a run whose process promised heartbeats (`heartbeat_s` in its runtime facet:
  a RUNNING event every so many seconds) and sent no event for longer than `timeout_s` (at least
  three intervals) is LOST ("no heartbeat since …"). A run that promised none (another OpenLineage
  producer, or heartbeats turned off) is never judged by silence: a dbt model may run for hours.

LOST is not terminal: a late event (a heartbeat that was held up in the spool, the real FAIL)
brings the run back, and `provgraph abort` records a terminal ABORT for a LOST run.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgraph.events.states import RunState

if TYPE_CHECKING:  # a run records `this_process()`; it needs no store contract or views (start-up time)
    from provgraph.graph.contract import RunFilter
    from provgraph.graph.views import RunView

LIVE_STATES = (RunState.START, RunState.RUNNING)
"""Stored states a process may have left behind; only these can be derived LOST."""


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (Linux); None if there is no such process
    or the platform has no /proc."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 overall


@functools.cache
def _boot_id() -> str | None:
    return _read("/proc/sys/kernel/random/boot_id")


@functools.cache
def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def this_process() -> dict[str, Any]:
    """The identity the runtime facet records for the running process (see the module docstring)."""
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "pid_start": process_start(pid),
        "boot_id": _boot_id(),
        "pid_namespace": _pid_namespace(),
    }


def same_machine(runtime: dict[str, Any]) -> bool:
    """True when the run's process lived in this host's process table, so its pid can be checked here."""
    return (
        runtime.get("pid") is not None
        and runtime.get("host") == socket.gethostname()
        and runtime.get("boot_id") == _boot_id()
        and runtime.get("pid_namespace") == _pid_namespace()
    )


def process_alive(runtime: dict[str, Any]) -> bool:
    """The run's process still exists (same pid and same start time); call only if `same_machine`."""
    pid = int(runtime["pid"])
    if not 0 < pid < 2**31:  # events are data: no real process has such a pid (and os.kill would overflow)
        return False
    recorded = runtime.get("pid_start")
    if recorded is not None:
        return process_start(pid) == int(recorded)
    try:  # no start time recorded (not Linux): existence is all we can check
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Liveness:
    """How readers decide LOST; `timeout_s` (0 = never by heartbeat) is `PROVGRAPH_HEARTBEAT_TIMEOUT_S`."""

    timeout_s: float = 90.0

    def lost(self, state: RunState, runtime: dict[str, Any], last_event_at: datetime | None) -> str | None:
        """Why a run in `state` is lost, or None when it is not (or cannot be judged)."""
        if state not in LIVE_STATES:
            return None
        if same_machine(runtime):
            if process_alive(runtime):
                return None
            return f"process {runtime['pid']} on host {runtime['host']} is gone"
        interval = float(runtime.get("heartbeat_s") or 0)
        if not self.timeout_s or not interval or last_event_at is None:
            return None
        if datetime.now(UTC) - last_event_at <= timedelta(seconds=max(self.timeout_s, 3 * interval)):
            return None
        return f"no heartbeat since {last_event_at.isoformat(timespec='seconds')}"


RunsPage = Callable[["RunFilter", tuple[RunState, ...] | None, int, str | None], list["RunView"]]
"""A store's page of runs: its filter except the state, the stored states to match (None: any),
how many, and the run id the previous page ended with."""


def runs_in_state(page: RunsPage, where: RunFilter, first: int, after: str | None) -> list[RunView]:
    """`LineageStore.runs` over a store's `page`: a filter on START, RUNNING or LOST matches the
    state a reader sees (derived), not the stored one, so it pages through the live runs."""
    wanted = where.state
    rest = replace(where, state=None)
    if wanted not in (*LIVE_STATES, RunState.LOST):
        return page(rest, (wanted,) if wanted else None, first, after)
    stored = LIVE_STATES if wanted == RunState.LOST else (wanted,)
    size = max(first, 100)
    found: list[RunView] = []
    while len(found) < first:
        batch = page(rest, stored, size, after)
        found += [v for v in batch if v.state == wanted]
        if len(batch) < size:
            break
        after = batch[-1].run_id
    return found[:first]
