"""The embedded log's durability promise (docs/DESIGN.md): an append that returned survives its
writer being SIGKILLed at any point, and a killed writer leaves the log neither locked nor damaged.

Real processes, real SIGKILL: each writer appends one event per transaction and prints the event's
id only after `append` returned (the acknowledgement); the test kills it mid-stream.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from provgraph.events.serde import dumps, event_id
from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog

WRITER = """
import sys
from provgraph.events.serde import dumps, event_id
from provgraph.events.synthetic import workload
from provgraph.events.transport.sqlite import SqliteEventLog

log = SqliteEventLog(sys.argv[1])
for event in workload(100_000, namespace=sys.argv[2]):
    log.append([event])
    print(event_id(event, dumps(event)), flush=True)
"""


def writer(db: Path, namespace: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), namespace], stdout=subprocess.PIPE, text=True, bufsize=1
    )


def acknowledged(proc: subprocess.Popen[str], count: int) -> list[str]:
    assert proc.stdout is not None
    return [proc.stdout.readline().strip() for _ in range(count)]


def stored_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT event_id FROM events")}
    finally:
        conn.close()


def test_killed_writers_lose_no_acknowledged_event_and_block_nobody(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    acked: list[str] = []
    survivor = writer(db, "survivor")
    for round_ in range(3):  # killed at a different point of its stream each time
        victim = writer(db, f"victim{round_}")
        acked += acknowledged(victim, 50 + 40 * round_)
        acked += acknowledged(survivor, 20)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        assert victim.stdout is not None
        acked += [line.strip() for line in victim.stdout]  # acknowledged before the kill landed
        victim.stdout.close()
    acked += acknowledged(survivor, 20)  # the other writer went on through every kill
    survivor.kill()
    survivor.wait()
    assert survivor.stdout is not None
    acked += [line.strip() for line in survivor.stdout]
    survivor.stdout.close()

    assert set(acked) - stored_ids(db) == set()
    log = SqliteEventLog(db)  # not locked: a new writer appends at once, the run's owner is known
    [event] = list(workload(1, namespace="after"))[:1]
    assert log.append([event]) == 1 and event_id(event, dumps(event)) in stored_ids(db)
    assert log.owners([event.run.run_id]) == {event.run.run_id: "after"}
    log.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
