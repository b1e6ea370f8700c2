"""The delivery contract shared by the network transports (Kafka, HTTP): send now, or keep in the
durable spool (`spool.py`) and re-send in order once the destination is back.

Delivery contract: when `emit` returns, the event is either acknowledged by the destination or
fsynced in the spool; `emit` never raises into user code.

- Direct path: while the spool is empty and the destination healthy, each event is sent
  synchronously and waited for, at most `delivery_timeout_s`.
- Fallback: a failed or timed-out send puts the event in the spool, drops the client (its state is
  unreliable after a failure), logs one warning for the outage, and marks the destination down.
  While down, `emit` goes straight to the spool without touching the network; after a backoff
  (`retry_interval_s`, doubling up to `retry_max_s`) the next `emit` tries again.
- Order: once anything is in the spool, new events are appended behind it until it is drained, so
  a run's events arrive in emit order. Re-sending happens automatically at the next `emit` / `flush`
  that finds the destination reachable (a bounded slice per `emit`), or explicitly via `flush()` /
  `provgraph spool flush` (`factory.spool_flush`).
- At-least-once: a send that timed out may still have arrived, and a crash between a re-send and
  its `ack` re-sends those records. Projections de-duplicate by event id and are order-independent,
  so a duplicate changes nothing in the graph.

A subclass says how to send: `_send_now` (one event, direct path), `_send_batch` (spooled records,
in order: how many were delivered before the first failure), `_drop_client`, and `destination`;
`_send_direct` (the events of one `emit_many`, direct path) sends one at a time unless overridden.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from itertools import islice

from provgraph.events.consistency import Position
from provgraph.events.errors import TransportError
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps, event_id
from provgraph.events.transport.base import Transport
from provgraph.events.transport.spool import Record, Spool

RESEND_BATCH = 500
"""Records read from the spool per `_send_batch` call."""
POSITIONS_KEPT = 10_000
"""Keys whose last delivered position `position` remembers (the most recently delivered ones)."""


class DeliveryRefused(TransportError):
    """The destination answered but refuses the events until someone changes its configuration or
    ours (a bad or expired token, a token without the project): logged as an error, events kept."""


class SpooledTransport(Transport):
    """Direct sends while the destination answers; the spool, in order, while it does not."""

    destination: str
    """Names the destination in log messages ("Kafka at host:9092", "the HTTP endpoint https://…")."""

    def __init__(self, spool: Spool, *, delivery_timeout_s: float, retry_interval_s: float, retry_max_s: float) -> None:
        self.spool = spool
        self.delivery_timeout_s = delivery_timeout_s
        self.retry_interval_s = retry_interval_s
        self.retry_max_s = retry_max_s
        self.log = logging.getLogger(type(self).__module__)
        self._lock = threading.RLock()
        self._down = False
        self._failures = 0
        self._retry_at = 0.0
        self.last_error: TransportError | None = None
        """Why the destination was last found unreachable or refusing (None once it worked again)."""
        self._positions: dict[bytes, Position] = {}
        self._unsent: dict[bytes, int] = {}
        """Per key, records this transport spooled and has not seen delivered: its position waits for the last."""

    # -- what a subclass provides ----------------------------------------------------------------

    @abstractmethod
    def _send_now(self, key: bytes, value: bytes, deadline: float) -> None:
        """Deliver one record before `deadline` or raise `TransportError`."""

    @abstractmethod
    def _send_batch(self, batch: list[Record], deadline: float | None) -> tuple[int, TransportError | None]:
        """Deliver `batch` in order: (how many leading records were delivered, the failure that stopped it)."""

    def _send_direct(self, records: list[tuple[bytes, bytes]], deadline: float) -> tuple[int, TransportError | None]:
        """Deliver (key, value) records of one `emit`/`emit_many` in order before `deadline`: (how many
        leading records were delivered, the failure that stopped it). By default one `_send_now` each."""
        for done, (key, value) in enumerate(records):
            try:
                self._send_now(key, value, deadline)
            except TransportError as exc:
                return done, exc
        return len(records), None

    @abstractmethod
    def _drop_client(self, timeout: float) -> None:
        """Release the connection; after a failure (timeout=0) without waiting for buffered sends."""

    # -- public API ------------------------------------------------------------------------------

    def emit(self, event: RunEvent) -> None:
        """Deliver or keep in the spool; never raises, waits at most ~`delivery_timeout_s`."""
        self.emit_many([event])

    def emit_many(self, events: Sequence[RunEvent]) -> None:
        """Deliver the events in order, or keep in the spool (in order, behind what was delivered) what
        was not; never raises, waits at most ~`delivery_timeout_s`, once for all where the destination
        allows it (`_send_direct`)."""
        records: list[tuple[bytes, bytes]] = []
        for event in events:
            try:
                records.append((event.root_run_id.encode(), dumps(event)))
            except Exception:
                self.log.exception("provgraph: cannot serialise event of run %s; it is NOT recorded", event.run.run_id)
        if not records:
            return
        try:
            with self._lock:
                self._emit(records)
        except Exception:
            # Last resort (the spool itself failed: disk full, permissions …): say loudly what is lost.
            self.log.exception(
                "provgraph: events %s could not be sent to %s nor spooled in %s; they are NOT recorded"
                " (those already delivered are)",
                ", ".join(event_id(e) for e in events),
                self.destination,
                self.spool.directory,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Re-send the spool now (ignoring the backoff); True when nothing is pending.

        `timeout` bounds the whole call; None = as long as the destination keeps accepting, each
        step bounded by `delivery_timeout_s`. Never raises for a delivery failure (see `last_error`).
        """
        with self._lock:
            self._drain(timeout)
            return self.spool.is_empty()

    def drain(self, timeout: float | None = None) -> tuple[int, int]:
        """Like `flush`, with counts: (records re-sent now, records still pending; O(spool size))."""
        with self._lock:
            return self._drain(timeout), len(self.spool)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then release the client and the spool's locks; True when nothing is pending."""
        with self._lock:
            done = self.flush(timeout)
            self._drop_client(timeout=0 if not done else 1.0)
            self.spool.close()
            return done

    def position(self, key: str) -> Position | None:
        """The position of the last event under `key` this transport delivered; None while the key's
        latest event waits in the spool (known once a flush delivers it) or if never delivered here."""
        with self._lock:
            return self._positions.get(key.encode())

    @property
    def pending(self) -> int:
        """Events waiting in the spool (reads the spool: O(its size))."""
        return len(self.spool)

    # -- internals -------------------------------------------------------------------------------

    def _emit(self, records: list[tuple[bytes, bytes]]) -> None:
        now = time.monotonic()
        may_try = not self._down or now >= self._retry_at
        if self.spool.is_empty():
            if may_try:
                try:
                    done, error = self._send_direct(records, now + self.delivery_timeout_s)
                except TransportError as exc:  # connecting
                    done, error = 0, exc
                if error is None:
                    self._mark_up(0)
                    return
                self._mark_down(error)
                records = records[done:]
            for key, value in records:
                self._spool(key, value)
            return
        # Something is already spooled: queue behind it, then try to catch up within the budget.
        for key, value in records:
            self._spool(key, value)
        if may_try:
            self._record(self._resend(now + self.delivery_timeout_s))

    def _drain(self, timeout: float | None) -> int:
        if self.spool.is_empty():
            return 0
        return self._record(self._resend(None if timeout is None else time.monotonic() + timeout))

    def _record(self, outcome: tuple[int, TransportError | None]) -> int:
        sent, error = outcome
        if error is not None:
            self._mark_down(error)
        elif sent:
            self._mark_up(sent)
        return sent

    def _resend(self, deadline: float | None) -> tuple[int, TransportError | None]:
        """Send the spool in order, acking what was delivered: (how many were sent, the failure).

        Stops at the first failure (what was delivered before it stays acked), at `deadline`, or at
        once when another thread or process is already re-sending this spool.
        """
        sent = 0
        if deadline is not None and time.monotonic() >= deadline:
            return 0, None  # no time to try (e.g. `close(timeout=0)`): not a sign of an outage
        with self.spool.draining() as mine:
            if not mine:
                return 0, None
            try:
                while deadline is None or time.monotonic() < deadline:
                    batch = list(islice(self.spool.pending(), RESEND_BATCH))
                    if not batch:
                        break
                    done, error = self._send_batch(batch, deadline)
                    if done:
                        self.spool.ack(batch[done - 1].pos)
                    sent += done
                    if error is not None:
                        return sent, error
            except TransportError as exc:  # connecting, or recording the acknowledged position
                return sent, exc
        return sent, None

    def _spool(self, key: bytes, value: bytes) -> None:
        self.spool.append(key, value)
        self._positions.pop(key, None)
        self._unsent[key] = self._unsent.get(key, 0) + 1

    def _delivered(self, key: bytes, position: Position | None, *, resent: bool) -> None:
        """A subclass reports where a record landed (None: the destination does not say). A re-sent
        record is the key's latest only when no later one of it is still in the spool."""
        if resent and (left := self._unsent.get(key, 0) - 1) > 0:
            self._unsent[key] = left
            return
        self._unsent.pop(key, None)
        self._positions.pop(key, None)
        if position is None:
            return
        self._positions[key] = position
        if len(self._positions) > POSITIONS_KEPT:
            del self._positions[next(iter(self._positions))]

    def _remaining(self, deadline: float | None) -> float:
        if deadline is None:
            return self.delivery_timeout_s
        return max(0.0, min(deadline - time.monotonic(), self.delivery_timeout_s))

    def _mark_down(self, exc: TransportError) -> None:
        self._drop_client(timeout=0)
        self._failures += 1
        backoff = min(self.retry_max_s, self.retry_interval_s * 2 ** min(self._failures - 1, 30))
        self._retry_at = time.monotonic() + backoff
        self.last_error = exc
        if not self._down:
            self._down = True
            self.log.log(
                logging.ERROR if isinstance(exc, DeliveryRefused) else logging.WARNING,
                "provgraph: cannot deliver to %s (%s); events are kept in the spool %s and re-sent in order"
                " when it accepts them again (or run `provgraph spool flush`)",
                self.destination,
                exc,
                self.spool.directory,
            )

    def _mark_up(self, resent: int) -> None:
        if self._down:
            self.log.info("provgraph: %s accepts events again", self.destination)
        if resent:
            self.log.info("provgraph: re-sent %d spooled events to %s", resent, self.destination)
        self._down = False
        self._failures = 0
        self.last_error = None
