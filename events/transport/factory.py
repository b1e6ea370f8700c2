"""Picks the transport named by settings (`PROVGRAPH_TRANSPORT`)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from provgraph.events.errors import ConfigError
from provgraph.events.transport.base import Transport


class TransportSettings(Protocol):
    @property
    def transport(self) -> str: ...
    @property
    def events_db(self) -> Path: ...


def create_transport(settings: TransportSettings) -> Transport:
    if settings.transport == "sqlite":
        from provgraph.events.transport.sqlite import SqliteEventLog, SqliteTransport

        return SqliteTransport(SqliteEventLog(settings.events_db))
    if settings.transport == "memory":
        from provgraph.events.transport.memory import MemoryTransport

        return MemoryTransport()
    raise ConfigError(f"unknown transport {settings.transport!r}")
