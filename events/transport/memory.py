"""In-memory transport: product code for tests and for embedding provgraph in another process."""

from __future__ import annotations

from provgraph.events.model import RunEvent
from provgraph.events.transport.base import Transport


class MemoryTransport(Transport):
    kind = "memory"

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def emit(self, event: RunEvent) -> None:
        self.events.append(event)
