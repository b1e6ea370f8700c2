"""What a run records after its handler returned goes to the log with its terminal event in one
transaction (issue 15, round 10): the same events, bodies and order, fewer commits."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph._emitter import RunEmitter
from provgraph.events.consistency import Position
from provgraph.events.errors import ContractError, Forbidden, TransportError
from provgraph.events.model import RunEvent, RunState
from provgraph.events.serde import dumps, loads
from provgraph.events.transport.base import Transport
from provgraph.events.transport.memory import MemoryTransport
from provgraph.events.transport.spool import Record, Spool
from provgraph.events.transport.spooled import SpooledTransport
from provgraph.events.transport.sqlite import SqliteEventLog, SqliteTransport
from tests.test_run_overhead_record import CODE, _output, _runtime


@pg.handler(outputs=["model", "rows"], labels={"team": "a"})
def returns_outputs(ctx: pg.Context, data: pg.DataItem) -> tuple[bytes, int]:
    """Leaves its input unread and returns an artifact and a result: after it returns, the run
    records the output, the untouched input and the labels, then COMPLETE."""
    print("hello")
    ctx.log_metric("m", 1.0)
    return b"model bytes", 3


def reads_and_writes(ctx: pg.Context, data: pg.DataItem) -> dict[str, int]:
    ctx.log_artifact("copy", body=data.get())
    return {"n": 1}


def fails_after_logging(ctx: pg.Context, data: pg.DataItem) -> None:
    ctx.log_artifact("partial", body=b"x")
    ctx.set_label("stage", "2")
    ctx.log_metric("loss", math.nan)
    raise ValueError("boom")


@pg.handler(outputs=["good", "bad"])
def returns_a_refused_output(ctx: pg.Context) -> tuple[bytes, bytes]:
    return b"good", b"bad"


JOBS: list[Callable[..., Any]] = [returns_outputs, reads_and_writes, fails_after_logging]


def _commits(log: SqliteEventLog, run: Callable[[], object]) -> int:
    """Transactions `run` committed on the log's connection: COMMITs and autocommit statements."""
    commits = 0

    def seen(sql: str) -> None:
        nonlocal commits
        if sql == "COMMIT" or (sql.startswith("INSERT") and not log._conn.in_transaction):
            commits += 1

    log._conn.set_trace_callback(seen)
    try:
        run()
    finally:
        log._conn.set_trace_callback(None)
    return commits


def _backend(home: Path, transport: Transport | None = None) -> pg.Backend:
    return pg.Backend(pg.load_settings(home=home), transport=transport)


def _log(backend: pg.Backend) -> SqliteEventLog:
    transport = backend.transport
    assert isinstance(transport, SqliteTransport)
    return transport.log


def _bodies(backend: pg.Backend, root: Path) -> list[str]:
    """The log's bodies, with what differs between two runs of the same job replaced."""
    rows = _log(backend)._conn.execute("SELECT run_id, body FROM events ORDER BY offset").fetchall()
    out = []
    for run_id, body in rows:
        text = bytes(body).decode().replace(run_id, "RUN").replace(str(root), "ROOT")
        out.append(re.sub(r'"eventTime":"[^"]+"', '"eventTime":"T"', text))
    return out


def _run_all(root: Path) -> list[str]:
    root.mkdir()
    (root / "in.txt").write_text("input")
    backend = _backend(root / "home")
    for job in JOBS:
        pg.run(job, inputs={"data": str(root / "in.txt")}, backend=backend)
    pg.run(returns_outputs, inputs={"data": str(root / "in.txt")}, backend=backend)
    bodies = _bodies(backend, root)
    backend.close()
    return bodies


def test_what_a_run_records_after_its_handler_returned_is_one_commit(tmp_path: Path) -> None:
    """START, then the output, the untouched input, the labels and COMPLETE together: 2 commits (5 before)."""
    (tmp_path / "in.txt").write_text("input")
    backend = _backend(tmp_path / "home")
    pg.run(returns_outputs, inputs={"data": str(tmp_path / "in.txt")}, backend=backend)  # warm: owners, tables
    log = _log(backend)
    before = log.last_offset()
    commits = _commits(log, lambda: pg.run(returns_outputs, inputs={"data": str(tmp_path / "in.txt")}, backend=backend))
    events = [loads(r.body) for r in log.read(before)]
    assert [(e.event_type.value, e.run.facets.event.seq if e.run.facets.event else None) for e in events] == [
        ("START", 1),
        ("RUNNING", 2),
        ("RUNNING", 3),
        ("RUNNING", 4),
        ("COMPLETE", 5),
    ]
    terminal = events[-1].run.facets.event
    assert terminal is not None and terminal.total == 5
    assert commits == 2


def test_the_log_bodies_are_those_of_one_event_per_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Byte for byte (but for run ids, times and paths) what the runs wrote with every event on its own."""
    batched = _run_all(tmp_path / "a")
    monkeypatch.setattr(RunEmitter, "hold", lambda self: None)
    one_by_one = _run_all(tmp_path / "b")
    assert len(batched) == 5 + 4 + 5 + 5
    assert batched == one_by_one


def test_a_refused_event_sends_what_was_held_before_raising() -> None:
    """An event refused by the contract (NaN, NUL) is raised from its own call as before; the valid
    events held before it are sent first, and the sequence numbers stay those of one event at a time."""
    transport = MemoryTransport()
    emitter = RunEmitter(transport, run_id="r-1", namespace="demo", job_name="job", code=CODE)
    emitter.start({}, runtime=_runtime())
    emitter.hold()
    emitter.running(outputs=[_output("o")])
    assert len(transport.events) == 1  # held
    with pytest.raises(ContractError, match=r"outputs\.0\.name: string contains a NUL"):
        emitter.running(outputs=[_output("bad\x00name")])
    assert [e.outputs[0].name for e in transport.events[1:]] == ["o"]
    emitter.fail("it failed")
    assert [e.run.facets.event.seq for e in transport.events if e.run.facets.event] == [1, 2, 4]


class RefusingLog(Transport):
    """The embedded log, refusing any event with an output named "bad" (the whole batch with it)."""

    kind = "refusing"

    def __init__(self, inner: SqliteTransport) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def _check(self, events: Sequence[RunEvent]) -> None:
        if any(d.name == "bad" for e in events for d in e.outputs):
            raise Forbidden("no bad outputs here")

    def emit(self, event: RunEvent) -> None:
        self._check([event])
        self.inner.emit(event)

    def emit_many(self, events: Sequence[RunEvent]) -> None:
        self.batches.append(len(events))
        self._check(events)
        self.inner.emit_many(events)


def test_a_held_event_the_log_refuses_fails_the_run_with_its_own_error(tmp_path: Path) -> None:
    """The batch is refused as a whole; its events are then sent one at a time: the valid one before
    the refused one is committed, the run ends FAIL with the refusal (as when each event was sent at
    once), and no COMPLETE is recorded."""
    inner = SqliteTransport(SqliteEventLog(tmp_path / "log.db"))
    transport = RefusingLog(inner)
    result = pg.run(returns_a_refused_output, backend=_backend(tmp_path / "home", transport))
    assert result.state == RunState.FAIL
    assert result.error == "Forbidden: no bad outputs here"
    events = [loads(r.body) for r in inner.log.read()]
    assert [(e.event_type.value, [d.name for d in e.outputs]) for e in events] == [
        ("START", []),
        ("RUNNING", ["good"]),
        ("FAIL", []),
    ]
    assert events[-1].run.facets.error_message is not None
    assert events[-1].run.facets.error_message.message == "Forbidden: no bad outputs here"


def test_a_batch_is_appended_whole_or_not_at_all(tmp_path: Path) -> None:
    """`emit_many` on the embedded log: one transaction; a refused event leaves none of the batch."""
    transport = MemoryTransport()
    emitter = RunEmitter(transport, run_id="r-1", namespace="demo", job_name="job", code=CODE)
    emitter.start({}, runtime=_runtime())
    emitter.running(outputs=[_output("o")])
    emitter.complete({})
    first, ok, done = transport.events
    log = SqliteEventLog(tmp_path / "log.db")
    sqlite = SqliteTransport(log)
    sqlite.emit(first)
    other = ok.model_copy(update={"job": ok.job.model_copy(update={"namespace": "other"})})
    with pytest.raises(Forbidden):
        sqlite.emit_many([ok, other])
    assert log.count() == 1
    assert _commits(log, lambda: sqlite.emit_many([ok, done])) == 1
    assert log.count() == 3
    position = sqlite.position(first.root_run_id)
    assert position is not None and str(position) == str(Position.sqlite(3))


class FlakyDestination(SpooledTransport):
    """Accepts `accept` records, then fails until `accept` is raised again; records what it received."""

    destination = "a test destination"
    kind = "flaky"

    def __init__(self, spool: Spool, accept: int) -> None:
        super().__init__(spool, delivery_timeout_s=1.0, retry_interval_s=0.0, retry_max_s=0.0)
        self.accept = accept
        self.received: list[bytes] = []

    def _take(self, value: bytes) -> None:
        if len(self.received) >= self.accept:
            raise TransportError("down")
        self.received.append(value)

    def _send_now(self, key: bytes, value: bytes, deadline: float) -> None:
        self._take(value)

    def _send_batch(self, batch: list[Record], deadline: float | None) -> tuple[int, TransportError | None]:
        for done, rec in enumerate(batch):
            try:
                self._take(rec.value)
            except TransportError as exc:
                return done, exc
        return len(batch), None

    def _drop_client(self, timeout: float) -> None:
        pass


def test_a_spooled_transport_keeps_what_a_batch_could_not_deliver_in_order(tmp_path: Path) -> None:
    """`emit_many` on Kafka/HTTP: what was acknowledged is delivered once, the rest spooled behind
    it, in order, and re-sent in order (also behind what an earlier outage left in the spool)."""
    transport = MemoryTransport()
    emitter = RunEmitter(transport, run_id="r-1", namespace="demo", job_name="job", code=CODE)
    emitter.start({}, runtime=_runtime())
    for name in "abcd":
        emitter.running(outputs=[_output(name)])
    emitter.complete({})
    events = transport.events
    values = [dumps(e) for e in events]
    flaky = FlakyDestination(Spool(tmp_path / "spool"), accept=2)
    flaky.emit_many(events[:4])
    assert flaky.received == values[:2]
    assert flaky.pending == 2
    flaky.emit_many(events[4:])  # still down: queued behind the spool
    assert flaky.received == values[:2]
    assert flaky.pending == 4
    flaky.accept = 100
    assert flaky.flush()
    assert flaky.received == values
    flaky.emit_many(events[:2])  # up again, spool empty: the direct path, both delivered
    assert flaky.received == values + values[:2]
    assert flaky.pending == 0
