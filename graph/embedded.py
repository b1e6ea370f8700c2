"""The embedded projector: keeps the SQLite lineage store caught up with the SQLite event log.

The log is the only thing the SDK writes. Readers call `sync()` first; it projects the events
appended since the stored offset, in batches, saving the offset in the same transaction as the
graph rows, so a crash never loses or double-applies a batch. `replay()` rebuilds from offset 0.
"""

from __future__ import annotations

from collections.abc import Callable

from provgraph.events.serde import loads
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.sqlite_store import SqliteLineageStore

Progress = Callable[[int, int], None]


class EmbeddedProjector:
    def __init__(self, log: SqliteEventLog, store: SqliteLineageStore, batch: int = 5000) -> None:
        self.log = log
        self.store = store
        self.batch = batch

    def sync(self, progress: Progress | None = None) -> int:
        """Project every event not yet in the graph; returns how many were applied."""
        applied = 0
        offset = self.store.projected_offset()
        total = self.log.last_offset() - offset
        while records := self.log.read(offset, self.batch):
            self.store.apply([loads(r.body) for r in records], offset=records[-1].offset)
            offset = records[-1].offset
            applied += len(records)
            if progress:
                progress(applied, total)
        return applied

    def replay(self, progress: Progress | None = None) -> int:
        """Drop the projection and rebuild it from the first event."""
        self.store.reset()
        return self.sync(progress)
