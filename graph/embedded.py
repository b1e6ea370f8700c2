"""The embedded projector: keeps the SQLite lineage store caught up with the SQLite event log.

The log is the only thing the SDK writes. Readers call `sync()` first; it projects the events
appended since the stored offset, in batches, saving the offset in the same transaction as the
graph rows, so a crash never loses or double-applies a batch.

One bad event never stops the graph: an event that no longer validates, or that the store
refuses (any `ProvgraphError`, or SQLite refusing the value), becomes a dead letter in the graph
database (`provgraph dlq list`) and the offset moves past it. A refused batch is bisected so only
the bad events are dead-lettered, as the Kafka projector does. A failure of the database itself
(locked, I/O error, disk full) is not the event's fault: it is raised and nothing advances.

`rebuild()` (what `provgraph replay` runs) projects the whole log into a new file beside the graph
and only then copies it over the live graph in one transaction; see its docstring.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from provgraph.events.errors import ContractError, ProjectionError, ProvgraphError
from provgraph.events.serde import few_collections, loads
from provgraph.events.transport.sqlite import LogRecord, SqliteEventLog
from provgraph.graph import sqlite_db
from provgraph.graph.sqlite_store import DeadLetter, SqliteLineageStore

if TYPE_CHECKING:
    from provgraph.events.model import RunEvent

Progress = Callable[[int, int], None]

REFUSALS: tuple[type[BaseException], ...] = (
    ProvgraphError,
    *sqlite_db.REFUSED,
    ValueError,
    OverflowError,
    UnicodeError,
)
"""What an event's content can cause while it is projected. SQLite's other errors (locked, I/O,
disk full, a damaged file) are not here: they stop the sync."""


class EmbeddedProjector:
    def __init__(self, log: SqliteEventLog, store: SqliteLineageStore, batch: int = 5000) -> None:
        self.log = log
        self.store = store
        self.batch = batch

    def sync(self, progress: Progress | None = None) -> int:
        """Project every event not yet in the graph; returns how many were read (dead letters included)."""
        applied = 0
        offset = self.store.projected_offset()
        end = self.log.last_offset()
        if offset > end:
            raise ProjectionError(
                f"the event log {self.log.path} ends at offset {end} but the graph {self.store.path} already"
                f" holds events up to offset {offset}: the log was replaced or truncated, so new events would"
                " not show. Rebuild the graph from this log with `provgraph replay`"
            )
        total = end - offset
        with few_collections():
            while records := self.log.read(offset, self.batch):
                self._project(records)
                offset = records[-1].offset
                applied += len(records)
                if progress:
                    progress(applied, total)
        return applied

    def _project(self, records: Sequence[LogRecord]) -> None:
        valid: list[tuple[LogRecord, RunEvent]] = []
        dead: list[DeadLetter] = []
        for r in records:
            try:
                valid.append((r, loads(r.body)))
            except ContractError as exc:
                dead.append(_letter(r, "validate", exc))
        last = records[-1].offset
        try:
            self.store.apply([e for _, e in valid], known_at=_known_at(valid), offset=last, dead=dead)
            return
        except REFUSALS:
            pass
        dead += self._bisect(valid)
        self.store.apply([], offset=last, dead=dead)

    def _bisect(self, items: list[tuple[LogRecord, RunEvent]]) -> list[DeadLetter]:
        """Apply what the store accepts (each half in its own transaction); the refused events' letters."""
        if not items:
            return []
        try:
            self.store.apply([e for _, e in items], known_at=_known_at(items))
            return []
        except REFUSALS as exc:
            if len(items) == 1:
                return [_letter(items[0][0], "project", exc)]
        mid = len(items) // 2
        return self._bisect(items[:mid]) + self._bisect(items[mid:])

    def replay(self, progress: Progress | None = None) -> int:
        """Rebuild the graph from the first event, atomically (see `rebuild`); this store sees the result."""
        return rebuild(self.log, Path(self.store.path), progress, batch=self.batch)


def _known_at(items: Sequence[tuple[LogRecord, RunEvent]]) -> list[datetime]:
    """Each event's ingestion time: when the log took it (its event time in a log too old to say)."""
    return [r.ingested_at or e.event_time for r, e in items]


def _letter(record: LogRecord, stage: str, exc: BaseException) -> DeadLetter:
    error = str(exc) if isinstance(exc, ProvgraphError) else f"{type(exc).__name__}: {exc}"
    return DeadLetter(record.offset, stage, error, record.body, datetime.now(UTC).isoformat())


def rebuild(log: SqliteEventLog, graph: Path, progress: Progress | None = None, *, batch: int = 5000) -> int:
    """Project the whole log into `<graph>.rebuild`, then put it in place of `graph`; returns events read.

    Until the new graph is complete nothing touches `graph`: a failed or interrupted replay leaves
    it as it was (the aside file is removed). The swap is not a file rename, because SQLite names
    a database's `-wal` and `-shm` files after its path: a reader in another process still holding
    the old file would share its WAL index with readers of the renamed-in one, and a stale `-wal`
    would be replayed into the new file. Instead the finished graph is copied into the live file
    with SQLite's online backup, in one write transaction: readers see the old graph until it
    commits and the new one after, never a mix. Only a `graph` that is not a database at all
    (nobody can be reading it) is moved aside to `<graph>.damaged-<time>` and the new file renamed in.
    """
    aside = graph.with_name(graph.name + ".rebuild")
    _remove(aside)
    try:
        store = SqliteLineageStore(aside)
        try:
            count = EmbeddedProjector(log, store, batch).sync(progress)
        finally:
            store.close()
        _put_in_place(aside, graph)
    finally:
        _remove(aside)
    return count


def _put_in_place(aside: Path, graph: Path) -> None:
    try:
        live = SqliteLineageStore(graph)
    except ProjectionError:  # not a database: move it (and its sidecars) aside, rename the new one in
        stamp = time.strftime("%Y%m%dT%H%M%S")
        os.replace(graph, graph.with_name(f"{graph.name}.damaged-{stamp}"))
        _remove(graph, only_sidecars=True)
        _checkpoint(aside)
        os.replace(aside, graph)
        return
    live.close()
    source = sqlite_db.connect(aside)
    target = sqlite_db.connect(graph)
    try:
        # one write transaction on the live file; waits for a writer to finish (the busy timeout)
        with target.backup("main", source, "main") as backup:
            backup.step()
    finally:
        source.close()
        target.close()


def _checkpoint(path: Path) -> None:
    """Fold the file's WAL into it, so it can be renamed without its sidecars."""
    conn = sqlite_db.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
    finally:
        conn.close()


def _remove(path: Path, *, only_sidecars: bool = False) -> None:
    for suffix in ("-wal", "-shm") if only_sidecars else ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()
