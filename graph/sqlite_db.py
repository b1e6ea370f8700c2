"""The graph file's SQLite binding: `apsw`, for every connection to a lineage graph (`graph.db`).

`apsw` hands a row's values to Python without releasing the GIL per value as the stdlib `sqlite3`
module does, and with `SQLITE_OPEN_NOMUTEX` without SQLite's per-call mutex: a lineage walk's
instructions -20% (docs/BENCHMARKS.md, rounds 12 and 13). It links its own SQLite, and two SQLite
library copies with one file open in one process break each other's POSIX locks (closing either
copy's descriptor drops the process's locks on the file: sqlite.org, "How To Corrupt An SQLite
Database File", 2.2.1). So a graph file is opened only through this module, never with `sqlite3`;
the event log and the token store are other files and stay on the stdlib module.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from provgraph.events.transport.sqlite import BUSY_TIMEOUT_S, use_wal

Connection = apsw.Connection
NoRows = apsw.ExecutionCompleteError
"""A statement's columns asked after it returned no row (`apsw.Cursor.get_description`)."""
DAMAGED: tuple[type[apsw.Error], ...] = (apsw.NotADBError, apsw.CorruptError)
"""The file's content is not a database, or a damaged one (not a lock, I/O or a full disk)."""
REFUSED: tuple[type[BaseException], ...] = (apsw.ConstraintError, apsw.MismatchError, apsw.TooBigError, TypeError)
"""What a stored value can make SQLite refuse: a constraint (or a trigger's `RAISE`), a type, a size,
a Python type the binding cannot store."""


def connect(path: Path | str, *, readonly: bool = False) -> apsw.Connection:
    """A connection to a graph file, in WAL mode with the event log's busy wait (readers and writers
    may be in several processes). Without SQLite's own mutex (`NOMUTEX`): its owner must never use it
    from two threads at once (the store holds its lock around every use): two threads in it at once
    crash the process."""
    if readonly:
        flags = apsw.SQLITE_OPEN_READONLY
    else:
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(path), flags=flags | apsw.SQLITE_OPEN_NOMUTEX)
    conn.set_busy_timeout(int(BUSY_TIMEOUT_S * 1000))
    if not readonly:
        use_wal(conn, apsw.BusyError)
        conn.execute("PRAGMA synchronous=NORMAL")
    return conn
