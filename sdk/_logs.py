"""Captures a run's output: what the handler prints on stdout and stderr, and its logger records.

While a handler runs, `sys.stdout` and `sys.stderr` are tees (the terminal still shows everything)
and a handler on the root logger copies each record that reaches it. The bytes form one stream;
every event the run sends takes what arrived since the previous one, stores it content-addressed
in the artifact store and names it in the event's `provgraph_logs` facet (`LogsRunFacet`), so a
reader (`provgraph logs -f`, GraphQL `Run.logs`) sees output as the run goes, on every runtime
(a Kubernetes pod runs the same code). A run with pending output sends a RUNNING event every
`LOG_FLUSH_S` seconds, so output does not wait for the next heartbeat.

Limits, by design: output written to the file descriptors directly (C extensions, child
processes) is not seen; two runs executing at once in one process share the tees, so each keeps
the other's output too; a run keeps at most `LOG_MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from types import TracebackType
from typing import Any, TextIO

from provgraph.events.artifacts import ArtifactStore
from provgraph.events.errors import ProvgraphError
from provgraph.events.facets import LogChunk, LogsRunFacet

log = logging.getLogger(__name__)

LOG_MAX_BYTES = 16 << 20
"""Output one run keeps (16 MiB); past it a line says so and the rest is not stored."""
LOG_FLUSH_S = 5.0
"""How often pending output is sent while the run goes (one RUNNING event, only when there is some)."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Tee:
    """A text stream that writes through to `target` and copies what it writes into the capture."""

    def __init__(self, target: TextIO, capture: LogCapture) -> None:
        self._target = target
        self._capture = capture

    def write(self, text: str) -> int:
        written = self._target.write(text)  # first: what the stream refuses raises as it would have
        self._capture.add(text)
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer …
        return getattr(self._target, name)


class _RecordHandler(logging.Handler):
    """Copies logger records into the capture. A record no other handler takes is what Python's
    last-resort handler would print on stderr: it is printed there (through the tee) instead."""

    def __init__(self, capture: LogCapture) -> None:
        super().__init__(logging.NOTSET)
        self._capture = capture
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._others_take(record):
                self._capture.add(self.format(record) + "\n")
            elif logging.lastResort is not None and record.levelno >= logging.lastResort.level:
                sys.stderr.write(record.getMessage() + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the handler that logged
            self.handleError(record)

    def _others_take(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False


class LogCapture:
    """Use as a context manager around the handler; `take` (called as each event is built) stores
    what arrived since the previous call and returns the facet naming it, or None."""

    def __init__(self, artifacts: ArtifactStore, max_bytes: int = LOG_MAX_BYTES) -> None:
        self._artifacts = artifacts
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._kept = 0
        """Bytes accepted into the stream (stored or pending)."""
        self._stored = 0
        """Offset of the first byte not yet stored."""
        self._truncated = False
        self._handler = _RecordHandler(self)
        self._saved: tuple[TextIO, TextIO] | None = None
        self._tees: tuple[_Tee, _Tee] | None = None

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def add(self, text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")
        with self._lock:
            room = self._max_bytes - self._kept
            if len(data) > room:
                if not self._truncated:
                    self._truncated = True
                    note = f"\n[provgraph: output truncated at {self._max_bytes} bytes]\n".encode()
                    data = data[: max(0, room)] + note
                else:
                    return
            self._pending.append(data)
            self._kept += len(data)

    def take(self) -> LogsRunFacet | None:
        """Store the output since the previous call; None when there is nothing new to say."""
        with self._lock:
            data, offset = b"".join(self._pending), self._stored
            self._pending.clear()
            self._stored += len(data)
        if not data:
            return None
        try:
            digest, size = self._artifacts.put_bytes(data)
        except (OSError, ProvgraphError) as exc:  # the run's events matter more than its output: a gap
            log.warning("storing %d bytes of the run's output failed: %s", len(data), exc)
            return None
        return LogsRunFacet(chunks=[LogChunk(offset=offset, size=size, digest=digest)])

    def __enter__(self) -> LogCapture:
        self._saved = (sys.stdout, sys.stderr)
        self._tees = (_Tee(sys.stdout, self), _Tee(sys.stderr, self))
        sys.stdout, sys.stderr = self._tees
        logging.getLogger().addHandler(self._handler)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        logging.getLogger().removeHandler(self._handler)
        assert self._saved is not None and self._tees is not None
        # Put back only what is still ours: code that replaced a stream meanwhile keeps its choice.
        if sys.stdout is self._tees[0]:
            sys.stdout = self._saved[0]
        if sys.stderr is self._tees[1]:
            sys.stderr = self._saved[1]
        for stream in self._saved:
            with contextlib.suppress(OSError, ValueError):  # closed or broken by the handler
                stream.flush()
