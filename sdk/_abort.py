"""`provgraph abort`: end a run that is still START/RUNNING/REQUESTED, or LOST.

A live local process on this machine is asked to end itself (SIGTERM): it records its own ABORT,
with its traceback, and exits. Otherwise — its process is gone, it runs elsewhere, it cannot be
signalled, or it is still alive after `wait_s` — the ABORT is recorded for it: an event with
`provgraph_event` {eventId "<runId>:abort", seq 0} through the configured transport.

Why seq 0 (as the launcher's FAIL/ABORT): the state key puts any terminal event above every
START/RUNNING, so this ABORT ends a LOST or silent run whatever its last sequence number; but a
terminal event the run's own process still manages to send (seq >= 1) beats it. A run that
ignored SIGTERM and later COMPLETEs shows COMPLETE: what it really did wins over the guess.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from provgraph._backend import Backend
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.facets import ErrorMessageRunFacet, EventRunFacet
from provgraph.events.model import EventType, Job, Run, RunEvent, RunFacets, RunState
from provgraph.graph.liveness import LIVE_STATES, process_alive, same_machine
from provgraph.graph.views import RunView

SETTLE_S = 2.0
"""After the process exited, how long to wait for its own ABORT to show in the graph."""


@dataclass(frozen=True)
class Aborted:
    run_id: str
    state: RunState
    how: str
    """`signal`: the process ended itself; `event`: the ABORT was recorded for it."""
    message: str | None


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def abort_event(run: RunView, message: str) -> RunEvent:
    """The ABORT recorded for a run that cannot record its own (see the module docstring)."""
    facets = RunFacets(
        event=EventRunFacet(event_id=f"{run.run_id}:abort", seq=0),
        error_message=ErrorMessageRunFacet(message=message),
    )
    return RunEvent(
        event_type=EventType.ABORT,
        event_time=datetime.now(UTC),
        run=Run(run_id=run.run_id, facets=facets),
        job=Job(namespace=run.namespace, name=run.job_name),
    )


def abort(run_id: str, backend: Backend, *, reason: str | None = None, wait_s: float = 10.0) -> Aborted:
    """End `run_id` (see the module docstring); `NotFound` for an unknown run, `ConfigError` for an ended one."""
    run = backend.graph().run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r} (see `provgraph runs`)")
    if run.state.is_terminal:
        raise ConfigError(f"run {run_id} already ended {run.state}; nothing to abort")
    message = f"aborted by {who()}" + (f": {reason}" if reason else "")
    note = ""
    if run.state in LIVE_STATES and _signallable(run):
        try:
            os.kill(int(run.runtime["pid"]), signal.SIGTERM)
        except PermissionError as exc:
            note = f" (could not signal process {run.runtime['pid']}: {exc.strerror})"
        else:
            ended = _wait_for_end(run, backend, wait_s)
            if ended is not None:
                return Aborted(run_id, ended.state, "signal", ended.error)
            if process_alive(run.runtime):
                note = f" (process {run.runtime['pid']} still running {wait_s:g}s after SIGTERM)"
    backend.transport.emit(abort_event(run, message + note))
    backend.transport.flush()
    return Aborted(run_id, RunState.ABORT, "event", message + note)


def _signallable(run: RunView) -> bool:
    """Only a process proven to be the run's own (pid and start time) is sent a signal."""
    rt = run.runtime
    return same_machine(rt) and rt.get("pid_start") is not None and process_alive(rt)


def _wait_for_end(run: RunView, backend: Backend, wait_s: float) -> RunView | None:
    """The run once it shows a terminal state; None if its process lives on past `wait_s`, or died
    without its ABORT reaching the graph within `SETTLE_S`."""
    deadline = time.monotonic() + wait_s
    gone_at: float | None = None
    while True:
        now = time.monotonic()
        if gone_at is None and not process_alive(run.runtime):
            gone_at = now
        seen = backend.graph().run(run.run_id)
        if seen is not None and seen.state.is_terminal:
            return seen
        if (gone_at is not None and now - gone_at > SETTLE_S) or (gone_at is None and now > deadline):
            return None
        time.sleep(0.1)
