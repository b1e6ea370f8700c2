"""The transport interface: how an event leaves the process that made it.

To add a transport: subclass `Transport` in `<kind>.py`, set `kind` (the `PROVGRAPH_TRANSPORT`
value that selects it), implement `emit`; override `flush`/`close` when delivery is asynchronous.
Register it in `factory.py`. A transport never raises into user code for a delivery failure: it
keeps the event (see `spool.py`) and reports through `flush()`'s return value.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from provgraph.events.consistency import Position

if TYPE_CHECKING:
    from provgraph.events.model import RunEvent


class Transport(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def emit(self, event: RunEvent) -> None:
        """Hand one event over for delivery."""

    def emit_many(self, events: Sequence[RunEvent]) -> None:
        """Hand several events over at once, in order: one delivery where the transport has one (the
        embedded log: one transaction, all or none). By default one `emit` each."""
        for event in events:
            self.emit(event)

    def position(self, key: str) -> Position | None:
        """Where the last event emitted under `key` (its root run id) landed, when known: what a read
        can wait for (`events/consistency.py`). None: not known (not delivered yet, e.g. spooled, or
        a transport that cannot say)."""
        return None

    def flush(self, timeout: float | None = None) -> bool:
        """Try to deliver everything handed over so far; True when nothing is left pending."""
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush and release resources; True when all events were delivered."""
        return self.flush(timeout)
