"""Wires settings to the parts a run needs: the event transport, the artifact store, the graph.

Heavy clients (Kafka, Neo4j) are created on first use only, so `import provgraph` stays fast and
an embedded user never loads them.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

from provgraph.events.artifacts import ArtifactStore
from provgraph.events.settings import Settings, load_settings
from provgraph.events.transport.base import Transport

if TYPE_CHECKING:
    from provgraph._dataitem import ProtectedFiles
    from provgraph.graph.contract import LineageStore
    from provgraph.graph.factory import StoreHandle


class Backend:
    def __init__(
        self, settings: Settings, transport: Transport | None = None, graph: LineageStore | None = None
    ) -> None:
        """`transport` and `graph` replace the ones settings would choose (embedding, tests)."""
        self.settings = settings
        self._transport = transport
        self._graph = graph
        self._handle: StoreHandle | None = None
        self._opening = threading.Lock()  # a pipeline's or hyperparameter run's threads share one store

    @functools.cached_property
    def transport(self) -> Transport:
        if self._transport is None:
            from provgraph.events.transport.factory import create_transport

            self._transport = create_transport(self.settings)
        return self._transport

    @functools.cached_property
    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.settings.artifact_url, self.settings.s3_endpoint_url)

    @functools.cached_property
    def protected(self) -> ProtectedFiles:
        """The files no input may name (`ProtectedFiles.of(settings)`, ~9 us to look up: asked twice a run)."""
        from provgraph._dataitem import ProtectedFiles  # lazy: `import provgraph` does not load it

        return ProtectedFiles.of(self.settings)

    def graph(self) -> LineageStore:
        """The configured lineage store (opened once), caught up with the event log when embedded."""
        if self._graph is not None:
            return self._graph
        with self._opening:
            if self._handle is None:
                from provgraph.graph.factory import open_store

                self._handle = open_store(self.settings)
        return self._handle.fresh()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._handle is not None:
            self._handle.close()
            self._handle = None


_default: Backend | None = None


def default_backend() -> Backend:
    """The process-wide backend built from the environment (created on first use)."""
    global _default
    if _default is None:
        _default = Backend(load_settings())
    return _default
