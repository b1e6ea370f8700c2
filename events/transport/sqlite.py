"""The embedded event log: an append-only SQLite table, the source of truth with no servers.

Each event keeps the time it was appended (`ingested_at`, what the graph's as-of reads call
`knownAt`), so replaying the log gives the graph the same ingestion times. Offsets are dense and
increase with every new event; a redelivered event (same event id, same
bytes) is ignored, so appending is idempotent, while the same event id with different content is
refused (`EventConflict`, naming both digests): an id stands for one event. Projections read forward
from an offset they remember.

The log also enforces the write rules of `events/admission.py`: `run_owner` records the project
(job namespace) of each run's first event, written in the same transaction as the append, so no
writer (the SDK, or the API forwarding here) can add an event to another project's run. A log
from before this table is backfilled once when opened (`PRAGMA user_version` 0 -> 1): each run's
owner is the job namespace of its lowest-offset event, the same event the projection applies first.
A run's owner row is written once and never changed or deleted, so each log object caches the
owners it has seen committed: a run's second and later events need no owner lookup, and one such
event is appended by a single autocommit INSERT (no BEGIN/COMMIT round trips): its admission reads
nothing from the file, and a stored event's bytes never change, so a known id is compared after.

Durability (docs/DESIGN.md): WAL with `synchronous=NORMAL`. An append that returned is committed: it
survives the writer process being killed at any point (SIGKILL included), and a killed writer never
leaves the log locked or torn. An OS crash or power loss can lose the appends committed since the
last checkpoint (never reorder or corrupt them); the WAL is checkpointed, with an fsync, every
`CHECKPOINT_PAGES` pages.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from provgraph.events.admission import admit, owner_ids
from provgraph.events.consistency import Position
from provgraph.events.errors import EventConflict
from provgraph.events.serde import dumps_timed, event_id
from provgraph.events.transport.base import Transport

if TYPE_CHECKING:
    from provgraph.events.model import RunEvent

_SCHEMA = """
-- A new log's offset is a plain rowid (the greatest + 1): events are never deleted and an offset is
-- handed out only after its commit, so offsets only grow; a commit then does not rewrite
-- sqlite_sequence (one of the 3-4 pages a one-event transaction wrote with it). A log created with
-- AUTOINCREMENT keeps it; both behave the same.
CREATE TABLE IF NOT EXISTS events (
    offset      INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    run_id      TEXT NOT NULL,
    root_run_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    event_time  TEXT NOT NULL,
    body        BLOB NOT NULL,
    ingested_at TEXT
);
CREATE TABLE IF NOT EXISTS run_owner (
    run_id      TEXT PRIMARY KEY,
    namespace   TEXT NOT NULL
) WITHOUT ROWID;
"""

POSITIONS_KEPT = 10_000
"""Keys whose last event `SqliteTransport.position` can find."""

_OWNERS_VERSION = 1
"""`PRAGMA user_version` once `run_owner` holds the owner of every run in the log."""


_INSERT = (
    "INSERT OR IGNORE INTO events(event_id, run_id, root_run_id, event_type, event_time, body, ingested_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


_Row = tuple[str, str, str, str, str, bytes, str]
"""event_id, run_id, root_run_id, event_type, event_time, body, ingested_at: the columns `_INSERT` fills."""

BUSY_TIMEOUT_S = 30
"""How long a connection waits for another process's write (SQLite's busy timeout)."""
CHECKPOINT_PAGES = 4000
"""WAL pages between automatic checkpoints (SQLite's default is 1000): each checkpoint fsyncs, and a
page written by many small transactions is copied back once per checkpoint, so fewer, larger
checkpoints keep one-event appends fast. Bounds what a power loss can take (about 16 MB of WAL)."""

OWNERS_CACHED = 100_000
"""Run owners a log object remembers (then it forgets them all and asks the table again)."""


def _row(event: RunEvent, ingested_at: str) -> _Row:
    body, event_time = dumps_timed(event)
    return (
        event_id(event, body),
        event.run.run_id,
        event.root_run_id,
        event.event_type._value_,  # `.value` is a Python-level property, 3x slower
        event_time,
        body,
        ingested_at,
    )


_second: tuple[int, str] = (-1, "")
"""The last second `ingested_now` formatted, and its text up to the seconds."""


def ingested_now() -> str:
    """`datetime.now(UTC).isoformat()` at a third of its cost: the text up to the seconds is formatted
    once a second (`isoformat` of an aware time costs ~4 us, as much as an event's admission)."""
    global _second
    micros = time.time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    cached, text = _second
    if cached != second:
        text = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        _second = (second, text)
    return f"{text}.{fraction:06d}+00:00" if fraction else f"{text}+00:00"


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class LogRecord(NamedTuple):
    offset: int
    body: bytes
    ingested_at: datetime | None = None
    """When the event was appended; None in a log written before this was recorded."""


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection tuned for an append-heavy log shared by several processes (WAL, busy wait)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    use_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def use_wal(conn: Any, locked: type[Exception] = sqlite3.OperationalError) -> None:
    """Put the file in WAL mode (persistent: once per file). Switching needs an exclusive lock, and
    SQLite may answer "database is locked" at once, without its busy wait, while another process
    opens or switches the same new file: retry that for the busy timeout. `conn` is a `sqlite3` or
    an `apsw` connection (the graph's), `locked` the binding's error for it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except locked as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class SqliteEventLog:
    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn = connect(path)
        self._conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._owner_of: dict[str, str] = {}
        """Committed run owners seen by this object (rows never change, so this never goes stale)."""
        self._add_ingested_at()
        self._backfill_owners()

    def _add_ingested_at(self) -> None:
        """A log from before `ingested_at` gets the column (NULL for its old events)."""
        if "ingested_at" in {row[1] for row in self._conn.execute("PRAGMA table_info(events)")}:
            return
        try:
            self._conn.execute("ALTER TABLE events ADD COLUMN ingested_at TEXT")
        except sqlite3.OperationalError as exc:  # another process added it meanwhile
            if "duplicate column" not in str(exc):
                raise

    def _backfill_owners(self) -> None:
        if self._conn.execute("PRAGMA user_version").fetchone()[0] >= _OWNERS_VERSION:
            return
        with self._lock, self._tx():
            if self._conn.execute("PRAGMA user_version").fetchone()[0] >= _OWNERS_VERSION:
                return  # another process did it meanwhile
            self._conn.execute(
                "INSERT OR IGNORE INTO run_owner(run_id, namespace)"
                " SELECT run_id, json_extract(CAST(body AS TEXT), '$.job.namespace') FROM events ORDER BY offset"
            )
            self._conn.execute(f"PRAGMA user_version = {_OWNERS_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def append(self, events: Iterable[RunEvent]) -> int:
        """Append events in one transaction; returns how many were new.

        Raises `Forbidden` (nothing appended) when an event's run belongs to another project or it
        writes another project's artifact, and `ContractError` for a malformed `store://` version.
        """
        events = list(events)
        now = ingested_now()
        rows = [_row(e, now) for e in events]
        with self._lock:
            if len(rows) == 1 and (cached := self._cached_owners(events)) is not None:
                return self._append_one(events, cached, rows[0])
            with self._tx():
                owners = self._owners(owner_ids(events))
                claimed = admit(events, owners)
                if claimed:
                    self._conn.executemany("INSERT INTO run_owner(run_id, namespace) VALUES (?, ?)", claimed.items())
                before = self._conn.total_changes
                self._conn.executemany(_INSERT, rows)
                added = self._conn.total_changes - before
                if added < len(rows):  # some ids were known: fine only for the very same bytes (else rolled back)
                    self._refuse_conflicts(rows)
            self._remember({**owners, **claimed})  # committed
            return added

    def _cached_owners(self, events: list[RunEvent]) -> dict[str, str] | None:
        """The owners `admit` needs for these events when this object has them all cached, else None."""
        owners = {}
        for run_id in owner_ids(events):
            owner = self._owner_of.get(run_id)
            if owner is None:
                return None
            owners[run_id] = owner
        return owners

    def _append_one(self, events: list[RunEvent], owners: dict[str, str], row: _Row) -> int:
        """One event of runs whose owners are committed and cached: the admission decision reads
        nothing from the file (owner rows never change), so the event goes in by one autocommit
        statement, without BEGIN/COMMIT round trips or an owner lookup. A known event id is then
        compared with the stored bytes, which never change either."""
        admit(events, owners)  # claims nothing: every owner it needs is known
        before = self._conn.total_changes
        self._conn.execute(_INSERT, row)
        added = self._conn.total_changes - before
        if not added:
            self._refuse_conflicts([row])
        return added

    def owners(self, run_ids: Iterable[str]) -> dict[str, str]:
        """The project owning each of these runs that the log knows."""
        with self._lock:
            owners = self._owners(run_ids)
            self._remember(owners)
            return owners

    def _owners(self, run_ids: Iterable[str]) -> dict[str, str]:
        wanted = set(run_ids)
        known = {r: self._owner_of[r] for r in wanted if r in self._owner_of}
        missing = wanted - known.keys()
        if len(missing) == 1:  # one new run, the usual case: a plain indexed lookup
            (run_id,) = missing
            row = self._conn.execute("SELECT namespace FROM run_owner WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None:
                known[run_id] = str(row[0])
        elif missing:
            rows = self._conn.execute(
                "SELECT run_id, namespace FROM run_owner WHERE run_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(missing)),),
            ).fetchall()
            known.update((str(r), str(ns)) for r, ns in rows)
        return known

    def _remember(self, owners: dict[str, str]) -> None:
        if len(self._owner_of) + len(owners) > OWNERS_CACHED:
            self._owner_of.clear()
        self._owner_of.update(owners)

    def _refuse_conflicts(self, rows: list[_Row]) -> None:
        """`EventConflict` when a row's event id is already stored (or repeated) with other bytes."""
        seen = {
            eid: bytes(b)
            for eid, b in self._conn.execute(
                "SELECT event_id, body FROM events WHERE event_id IN (SELECT value FROM json_each(?))",
                (json.dumps([r[0] for r in rows]),),
            )
        }
        for eid, *_, body, _at in rows:
            stored = seen.setdefault(eid, body)
            if stored != body:
                raise EventConflict(
                    f"event id {eid!r} is already recorded with different content (stored {_digest(stored)},"
                    f" new {_digest(body)}); a different event needs its own event id"
                )

    def read(self, after: int = 0, limit: int = 10_000) -> list[LogRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT offset, body, ingested_at FROM events WHERE offset > ? ORDER BY offset LIMIT ?", (after, limit)
            ).fetchall()
        return [LogRecord(int(o), bytes(b), None if t is None else datetime.fromisoformat(t)) for o, b, t in rows]

    def scan(self, after: int = 0, batch: int = 10_000) -> Iterator[LogRecord]:
        while records := self.read(after, batch):
            yield from records
            after = records[-1].offset

    def last_offset(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(MAX(offset), 0) FROM events").fetchone()
        return int(row[0])

    def offset_of(self, event_id: str) -> int | None:
        """The offset of the event with this id, if the log holds it."""
        with self._lock:
            row = self._conn.execute("SELECT offset FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else int(row[0])

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


class SqliteTransport(Transport):
    """Writes each event straight into the embedded log (synchronous, durable on commit)."""

    kind = "sqlite"

    def __init__(self, log: SqliteEventLog) -> None:
        self.log = log
        self._last: dict[str, str] = {}
        """Root run id -> id of the last event emitted under it (looked up in the log by `position`)."""
        self._last_lock = threading.Lock()

    def emit(self, event: RunEvent) -> None:
        self.log.append([event])
        self._emitted(event)

    def emit_many(self, events: Sequence[RunEvent]) -> None:
        """The events in one transaction: all committed when this returns, or none (the error raised)."""
        self.log.append(events)
        for event in events:
            self._emitted(event)

    def _emitted(self, event: RunEvent) -> None:
        key, facet = event.root_run_id, event.run.facets.event
        with self._last_lock:
            self._last.pop(key, None)
            if facet is not None:  # provgraph's own events: the id is at hand, no hashing
                self._last[key] = facet.event_id
                if len(self._last) > POSITIONS_KEPT:
                    del self._last[next(iter(self._last))]

    def position(self, key: str) -> Position | None:
        """The log offset of the last event emitted here under `key` (None for events from elsewhere)."""
        with self._last_lock:
            eid = self._last.get(key)
        offset = None if eid is None else self.log.offset_of(eid)
        return None if offset is None else Position.sqlite(offset)
