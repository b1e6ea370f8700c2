"""The durable spool: order, acknowledgement, torn writes, segment clean-up, several processes."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provgraph.events.transport.spool import Spool, SpoolPos, encode


def _values(spool: Spool) -> list[bytes]:
    return [r.value for r in spool.pending()]


def _segment_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.seg"))


def test_pending_is_fifo_with_keys(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(50):
        spool.append(f"k{i % 3}".encode(), f"v{i}".encode())
    records = list(spool.pending())
    assert [r.value for r in records] == [f"v{i}".encode() for i in range(50)]
    assert [r.key for r in records] == [f"k{i % 3}".encode() for i in range(50)]
    assert [r.pos for r in records] == sorted(r.pos for r in records)
    assert len(spool) == 50
    assert not spool.is_empty()


def test_empty_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "new" / "dir")
    assert spool.is_empty()
    assert len(spool) == 0
    assert list(spool.pending()) == []
    assert spool.stats() == (0, 0, 0)


def test_ack_is_durable_monotonic_and_atomic(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    positions = [spool.append(b"k", f"v{i}".encode()) for i in range(10)]
    spool.ack(positions[3])
    assert _values(spool) == [f"v{i}".encode() for i in range(4, 10)]
    spool.ack(positions[1])  # older: ignored
    assert len(spool) == 6
    spool.close()

    reopened = Spool(tmp_path)
    assert _values(reopened) == [f"v{i}".encode() for i in range(4, 10)]
    assert not list(tmp_path.glob("*.tmp")), "the temp file is renamed over `acked`"
    reopened.ack(positions[-1])
    assert reopened.is_empty()
    assert list(reopened.pending()) == []


def test_appends_after_full_ack_continue_in_a_new_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.ack(spool.append(b"k", b"one"))
    assert _segment_files(tmp_path) == [], "a fully acknowledged segment is deleted"
    spool.append(b"k", b"two")
    assert _values(Spool(tmp_path)) == [b"two"]


@pytest.mark.parametrize("cut", [1, 5, 13, 14, 15, 20, -1])
def test_torn_last_write_is_skipped_and_repaired(tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    for i in range(3):
        spool.append(b"key", f"value-{i}".encode())
    spool.close()
    torn = encode(b"key", b"value-torn")[:cut]
    with open(_segment_files(tmp_path)[-1], "ab") as f:  # a crash in the middle of the 4th write
        f.write(torn)

    caplog.set_level(logging.WARNING)
    reopened = Spool(tmp_path)  # repairs the tail under the lock
    assert _values(reopened) == [b"value-0", b"value-1", b"value-2"]
    assert "torn write" in caplog.text
    reopened.append(b"key", b"value-3")
    assert _values(Spool(tmp_path)) == [b"value-0", b"value-1", b"value-2", b"value-3"]


def test_torn_write_by_another_process_while_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"k", b"a")
    with open(_segment_files(tmp_path)[-1], "ab") as f:
        f.write(encode(b"k", b"crashed")[:-3])
    assert _values(spool) == [b"a"], "the reader stops at a torn tail and does not raise"
    assert len(spool) == 1
    spool.append(b"k", b"b")  # the writer notices the file changed and truncates the torn bytes
    assert _values(spool) == [b"a", b"b"]


def test_damaged_record_in_an_older_segment_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    for i in range(12):
        spool.append(b"k", f"value-{i:02d}".encode())
    segments = _segment_files(tmp_path)
    assert len(segments) > 2
    data = bytearray(segments[0].read_bytes())
    data[-2] ^= 0xFF  # flip a byte of the first segment's last record
    segments[0].write_bytes(bytes(data))

    caplog.set_level(logging.WARNING)
    values = _values(spool)
    assert "damaged" in caplog.text
    assert values[-1] == b"value-11"
    assert len(values) == 11, "only the damaged record is lost; later segments are still read"


def test_damage_in_the_middle_is_skipped_not_truncated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Invalid bytes with valid records after them are damage, not a torn write: only they are lost."""
    spool = Spool(tmp_path)
    positions = [spool.append(b"k", f"value-{i}".encode()) for i in range(10)]
    spool.close()
    segment = _segment_files(tmp_path)[0]
    data = bytearray(segment.read_bytes())
    data[positions[4].offset - 1] ^= 0xFF  # last byte of record 4
    segment.write_bytes(bytes(data))

    caplog.set_level(logging.WARNING)
    reopened = Spool(tmp_path)
    expected = [f"value-{i}".encode() for i in range(10) if i != 4]
    assert _values(reopened) == expected
    assert "damaged" in caplog.text
    reopened.append(b"k", b"value-10")
    assert _values(Spool(tmp_path)) == [*expected, b"value-10"]
    assert segment.stat().st_size == len(data) + len(encode(b"k", b"value-10")), "nothing truncated"


def test_segments_roll_and_fully_acked_ones_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    positions = [spool.append(b"key", b"x" * 40) for _ in range(20)]
    segments = {p.segment for p in positions}
    assert len(segments) >= 5
    assert len(_segment_files(tmp_path)) == len(segments)

    middle = positions[9]
    spool.ack(middle)
    remaining = {p.segment for p in positions[10:]}
    assert {int(p.stem) for p in _segment_files(tmp_path)} == remaining | ({middle.segment} & remaining)
    assert len(spool) == 10
    spool.ack(positions[-1])
    assert _segment_files(tmp_path) == []
    assert spool.is_empty()


def test_stats(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"ab", b"cde")
    spool.append(b"", b"f")
    assert spool.stats() == (2, 6, 1)


# -- several processes --------------------------------------------------------------------------


def _writer(directory: str, name: str, count: int) -> None:
    spool = Spool(directory, segment_bytes=4096)
    for i in range(count):
        spool.append(name.encode(), f"{name}:{i}".encode())


def _hold_drain_lock(directory: str, ready: mp.synchronize.Event, release: mp.synchronize.Event) -> None:
    spool = Spool(directory)
    with spool.draining() as mine:
        assert mine
        ready.set()
        release.wait(30)


@pytest.mark.slow
def test_concurrent_writers_and_a_drainer_lose_nothing(tmp_path: Path) -> None:
    """Four processes append while this one drains and acks: every record once, each writer in order."""
    ctx = mp.get_context("spawn")
    writers, per_writer = 4, 200
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), f"w{n}", per_writer)) for n in range(writers)]
    for p in procs:
        p.start()
    spool = Spool(tmp_path, segment_bytes=4096)
    delivered: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        alive = any(p.is_alive() for p in procs)
        with spool.draining() as mine:
            assert mine
            batch = list(spool.pending())
            delivered += [r.value for r in batch]
            if batch:
                spool.ack(batch[-1].pos)
        if not alive and spool.is_empty():
            break
    for p in procs:
        p.join(10)
        assert p.exitcode == 0

    assert len(delivered) == writers * per_writer, "each record exactly once (one drainer, no crash)"
    for n in range(writers):
        from_writer = [v for v in delivered if v.startswith(f"w{n}:".encode())]
        assert from_writer == [f"w{n}:{i}".encode() for i in range(per_writer)]
    assert _segment_files(tmp_path) == []


def test_draining_is_exclusive_across_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_drain_lock, args=(str(tmp_path), ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        spool = Spool(tmp_path)
        with spool.draining() as mine:
            assert not mine
    finally:
        release.set()
        proc.join(30)
    assert proc.exitcode == 0
    with spool.draining() as mine:
        assert mine


def test_spool_survives_fork(tmp_path: Path) -> None:
    """A child of a process that opened the spool takes its own locks (flock on a shared fd would not)."""
    spool = Spool(tmp_path)
    spool.append(b"k", b"parent")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            spool.append(b"k", b"child")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    spool.append(b"k", b"parent-again")
    assert _values(spool) == [b"parent", b"child", b"parent-again"]


# -- model-based --------------------------------------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=60)),
        st.tuples(st.just("ack"), st.integers(min_value=0, max_value=8)),
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("tear"), st.integers(min_value=1, max_value=25)),  # < the 26-byte record
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops)
def test_matches_a_queue_model(tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, object]]) -> None:
    """Appends, acks, torn writes and reopenings behave like a FIFO queue; nothing leaks on disk."""
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, segment_bytes=128, fsync=False)
    model: list[bytes] = []
    for op, arg in ops:
        if op == "append":
            assert isinstance(arg, bytes)
            spool.append(b"k", arg)
            model.append(arg)
        elif op == "ack":
            assert isinstance(arg, int)
            pending = list(spool.pending())
            if pending:
                k = min(arg, len(pending) - 1)
                spool.ack(pending[k].pos)
                del model[: k + 1]
        elif op == "tear":  # a crash in the middle of an append (by this or another process)
            assert isinstance(arg, int)
            segments = _segment_files(directory)
            if segments:
                with open(segments[-1], "ab") as f:
                    f.write(encode(b"k", b"torn-record")[:arg])
        else:
            spool.close()
            spool = Spool(directory, segment_bytes=128, fsync=False)
        assert _values(spool) == model
        assert spool.is_empty() == (not model)
    if not model and not any(op == "tear" for op, _ in ops):
        assert _segment_files(directory) == []
    assert all(isinstance(p, SpoolPos) for p, _, _ in spool.pending())
