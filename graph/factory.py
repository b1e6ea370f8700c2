"""Which lineage store to open: decided here, from settings, and nowhere else.

    handle = open_store(settings)          # Neo4j, or the embedded SQLite projection of the event log
    handle.fresh().runs()                  # embedded: first projects what the log gained since last time
    handle.close()

Embedded, the SDK writes only to the event log; the graph is its projection, so every reader goes
through `fresh()` (or calls `sync()` itself) to see events appended by other processes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from provgraph.graph.contract import LineageBounds, LineageStore
from provgraph.graph.tombstones import LiveStore

if TYPE_CHECKING:
    from provgraph.events.settings import Settings
    from provgraph.events.transport.sqlite import SqliteEventLog
    from provgraph.graph.embedded import EmbeddedProjector


class StoreHandle:
    """The configured store and, when embedded, the projector that keeps it caught up (thread-safe)."""

    def __init__(self, store: LineageStore, projector: EmbeddedProjector | None = None, *, owned: bool = True) -> None:
        self.store = store
        self.projector = projector
        self._owned = owned
        self._sync_lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        """True when reads come from the embedded projection, which `sync` keeps up to date."""
        return self.projector is not None

    @property
    def event_log(self) -> SqliteEventLog | None:
        """Embedded: the connection to the event log this handle reads; a server writes through it too,
        so a process holds one connection to events.db."""
        return self.projector.log if self.projector is not None else None

    def sync(self) -> int:
        """Embedded: project the events appended to the log since the last call (no-op for Neo4j)."""
        if self.projector is None:
            return 0
        with self._sync_lock:
            return self.projector.sync()

    def fresh(self, *, include_deleted: bool = False) -> LineageStore:
        """The store, caught up with the event log; without what tombstones delete (`graph/tombstones.py`)
        unless `include_deleted`."""
        self.sync()
        return self.store if include_deleted else LiveStore(self.store)

    def close(self) -> None:
        if self._owned:
            self.store.close()
        if self.projector is not None:
            self.projector.log.close()


def open_store(settings: Settings, *, bounds: LineageBounds | None = None, warm: bool = False) -> StoreHandle:
    """The store `settings.store` names: Neo4j, or the embedded SQLite graph with its projector.
    `warm` (a server's store): Neo4j plans the lineage walk's statements in the background."""
    if settings.store == "neo4j":
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        return StoreHandle(Neo4jLineageStore.from_settings(settings, bounds, warm=warm))
    projector = embedded_projector(settings, bounds)
    return StoreHandle(projector.store, projector)


def embedded_projector(settings: Settings, bounds: LineageBounds | None = None) -> EmbeddedProjector:
    """The embedded projector alone (replay, benchmarks): the SQLite log and the SQLite graph."""
    from provgraph.events.transport.sqlite import SqliteEventLog
    from provgraph.graph.completeness import CompletenessRules
    from provgraph.graph.embedded import EmbeddedProjector
    from provgraph.graph.liveness import Liveness
    from provgraph.graph.sqlite_store import SqliteLineageStore

    store = SqliteLineageStore(
        settings.graph_db,
        bounds,
        Liveness(settings.heartbeat_timeout_s),
        CompletenessRules(settings.completeness_timeout_s),
    )
    return EmbeddedProjector(SqliteEventLog(settings.events_db), store)
