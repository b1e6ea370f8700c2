"""Keeps a run's recorded state honest while its handler runs.

- `EndingSignals`: SIGTERM, SIGHUP and SIGINT end the run ABORT instead of killing the process
  with the run left RUNNING. The handlers are installed in the main thread only (Python delivers
  signals there), only while the run lasts, and only over the default disposition: a process that
  ignores a signal, or an application with its own handler, keeps its choice. The handler raises
  `Terminated` (a `SystemExit` with code 128 + signal, so the process still ends as a terminated
  one would) or `Interrupted` (a `KeyboardInterrupt`, so Ctrl-C behaves as before); `execute`
  records the ABORT and lets it propagate. While the run's terminal event is being written a
  signal is held back, so an event is never half-decided. A second signal while the run is ending
  ends the process at once, as the signal's default would (the run is then LOST, not RUNNING).
- `Heartbeat`: a background thread (one per process) sends a RUNNING event every
  `heartbeat_interval_s`, so a reader on another machine can tell a silent run from a live one
  (`graph/liveness.py`).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C module (no stubs)
import itertools
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

_SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")
_DEFAULTS: tuple[tuple[int, object], ...] = tuple(
    (int(signum), signal.default_int_handler if signum == signal.SIGINT else int(signal.SIG_DFL))
    for signum in (getattr(signal, name, None) for name in _SIGNALS)
    if signum is not None  # SIGHUP does not exist on Windows
)
"""Each signal and the disposition a run may replace, as `_signal` answers (ints for SIG_DFL/SIG_IGN)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT during a run."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class Terminated(SystemExit):
    """SIGTERM or SIGHUP during a run; exits with the conventional code 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.reason = f"terminated by {signal.Signals(signum).name}"

    def __str__(self) -> str:
        return self.reason


def _raise(signum: int) -> None:
    raise Interrupted(signum) if signum == signal.SIGINT else Terminated(signum)


def abort_reason(exc: BaseException) -> str | None:
    """The ABORT message for an exception that ends a run by interruption, else None."""
    if isinstance(exc, Terminated | Interrupted):
        return f"run aborted: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return "run aborted: interrupted (KeyboardInterrupt)"
    return None


class EndingSignals:
    """Context manager: while inside, the signals above raise in the main thread (see the module docstring)."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._deferring = False
        self._pending: int | None = None
        self._fired = False

    def __enter__(self) -> EndingSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        # `_signal`, not `signal`: the same calls without `signal`'s conversion of every answer to an
        # enum, which fails (slowly: ValueError) for a handler function, ~16 us a run of 9 calls.
        for signum, default in _DEFAULTS:
            if _signal.getsignal(signum) == default:
                self._previous[signum] = _signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            _signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._fired:  # a second signal while the run records its ABORT: the user insists, end now
            _signal.signal(signum, _signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self._deferring:
            self._pending = signum
            return
        self._fired = True
        _raise(signum)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold signals back while a terminal event is written; one that arrived is raised after."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            if self._pending is not None and not self._fired:
                self._fired = True
                _raise(self._pending)


class _Beats:
    """One daemon thread runs every heartbeat of the process: a thread per run cost 0.1-0.2 ms of each
    run's overhead. Beats run under the lock that `remove` takes, so no beat of a run happens after
    its `remove` returns (nothing follows the run's terminal event). The thread is woken only for a beat
    due before its next wake-up: waking it for every run cost each run a thread switch."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, float, Callable[[], object]]] = {}
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake = math.inf
        """When the thread wakes up next (monotonic)."""

    def add(self, beat: Callable[[], object], interval_s: float) -> int:
        with self._cond:
            key = next(self._keys)
            due = time.monotonic() + interval_s
            self._due[key] = (due, interval_s, beat)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="provgraph-heartbeat", daemon=True)
                self._thread.start()
            elif due < self._wake:
                self._cond.notify()
            return key

    def remove(self, key: int) -> None:
        with self._cond:
            self._due.pop(key, None)

    def forget_thread(self) -> None:
        """In a forked child: the parent's thread is not there; the next `add` starts one."""
        self._cond = threading.Condition()
        self._due.clear()
        self._thread = None
        self._wake = math.inf

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, (when, interval_s, beat) in list(self._due.items()):
                    if when <= now:
                        self._due[key] = (now + interval_s, interval_s, beat)
                        try:
                            beat()
                        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not end the run; the next may pass
                            log.warning("heartbeat failed: %s", exc)
                self._wake = min((when for when, _, _ in self._due.values()), default=math.inf)
                self._cond.wait(None if self._wake == math.inf else max(0.0, self._wake - time.monotonic()))


_BEATS = _Beats()
os.register_at_fork(after_in_child=_BEATS.forget_thread)


class Heartbeat:
    """Calls `beat` every `interval_s` seconds (0 = never) until `stop()`, on the process's one
    heartbeat thread."""

    def __init__(self, beat: Callable[[], object], interval_s: float) -> None:
        self._key = _BEATS.add(beat, interval_s) if interval_s > 0 else None

    def stop(self) -> None:
        if self._key is not None:
            _BEATS.remove(self._key)
            self._key = None
