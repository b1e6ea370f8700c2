"""Keeps a run's recorded state honest while its handler runs.

- `EndingSignals`: SIGTERM, SIGHUP and SIGINT end the run ABORT instead of killing the process
  with the run left RUNNING. The handlers are installed in the main thread only (Python delivers
  signals there), only while the run lasts, and only over the default disposition: a process that
  ignores a signal, or an application with its own handler, keeps its choice. The handler raises
  `Terminated` (a `SystemExit` with code 128 + signal, so the process still ends as a terminated
  one would) or `Interrupted` (a `KeyboardInterrupt`, so Ctrl-C behaves as before); `execute`
  records the ABORT and lets it propagate. While the run's terminal event is being written a
  signal is held back, so an event is never half-decided.
- `Heartbeat`: a background thread sends a RUNNING event every `heartbeat_interval_s`, so a
  reader on another machine can tell a silent run from a live one (`graph/liveness.py`).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

_SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")


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
        for name in _SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:  # SIGHUP does not exist on Windows
                continue
            default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            if signal.getsignal(signum) is default:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._fired:  # the run is already ending: let it record its ABORT
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


class Heartbeat:
    """Calls `beat` every `interval_s` seconds from a daemon thread until `stop()` (0 = never)."""

    def __init__(self, beat: Callable[[], object], interval_s: float) -> None:
        self._beat = beat
        self._interval = interval_s
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        if interval_s > 0:
            self._thread = threading.Thread(target=self._loop, name="provgraph-heartbeat", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._beat()
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not end the run; the next may pass
                log.warning("heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
