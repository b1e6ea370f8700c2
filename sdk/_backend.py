"""Wires settings to the parts a run needs: the event transport, the artifact store, the graph.

Heavy clients (Kafka, Neo4j) are created on first use only, so `import provgraph` stays fast and
an embedded user never loads them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from provgraph._artifacts import ArtifactStore
from provgraph.config import Settings, load_settings
from provgraph.events.transport.base import Transport

if TYPE_CHECKING:
    from provgraph.graph.contract import LineageBounds, LineageStore
    from provgraph.graph.embedded import EmbeddedProjector


class Backend:
    def __init__(
        self, settings: Settings, transport: Transport | None = None, graph: LineageStore | None = None
    ) -> None:
        """`transport` and `graph` replace the ones settings would choose (embedding, tests)."""
        self.settings = settings
        self._transport = transport
        self._graph: LineageStore | None = graph
        self._owns_graph = graph is None
        self._projector: EmbeddedProjector | None = None

    @functools.cached_property
    def transport(self) -> Transport:
        if self._transport is None:
            from provgraph.events.transport.factory import create_transport

            self._transport = create_transport(self.settings)
        return self._transport

    @functools.cached_property
    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.settings.artifact_url, self.settings.s3_endpoint_url)

    def graph(self) -> LineageStore:
        """The configured lineage store (opened once), caught up with the event log when embedded."""
        if self._graph is None:
            if self.settings.store == "neo4j":
                self._graph = open_graph(self.settings)
            else:
                self._projector = embedded_projector(self.settings)
                self._graph = self._projector.store
        if self._projector is not None:
            self._projector.sync()
        return self._graph

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._graph is not None and self._owns_graph:
            self._graph.close()
            self._graph = None
        if self._projector is not None:
            self._projector.log.close()
            self._projector = None


def open_graph(settings: Settings, *, sync: bool = True, bounds: LineageBounds | None = None) -> LineageStore:
    """The configured store; the embedded one first projects any events not yet in the graph."""
    if settings.store == "neo4j":
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        return Neo4jLineageStore.from_settings(settings, bounds)
    projector = embedded_projector(settings, bounds)
    if sync:
        projector.sync()
    return projector.store


def embedded_projector(settings: Settings, bounds: LineageBounds | None = None) -> EmbeddedProjector:
    from provgraph.events.transport.sqlite import SqliteEventLog
    from provgraph.graph.embedded import EmbeddedProjector
    from provgraph.graph.liveness import Liveness
    from provgraph.graph.sqlite_store import SqliteLineageStore

    store = SqliteLineageStore(settings.graph_db, bounds, Liveness(settings.heartbeat_timeout_s))
    return EmbeddedProjector(SqliteEventLog(settings.events_db), store)


_default: Backend | None = None


def default_backend() -> Backend:
    """The process-wide backend built from the environment (created on first use)."""
    global _default
    if _default is None:
        _default = Backend(load_settings())
    return _default
