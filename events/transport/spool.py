"""A durable local spool: records that could not be delivered yet, kept on disk in order (FIFO).

The Kafka transport writes here when the broker is unreachable and re-sends from here when it is
back; any other transport that needs "keep it until delivered" can use it the same way::

    spool = Spool(settings.spool_dir)
    pos = spool.append(key, value)             # durable (fsync) when it returns
    for pos, key, value in spool.pending():    # oldest first, from the acknowledged position
        deliver(key, value)
        spool.ack(pos)                         # everything up to and including `pos` is delivered

Layout of the directory::

    00000000000000000001.seg   append-only segments; a new one starts past `segment_bytes`
    acked                      "<segment> <offset>": everything before this position was delivered;
                               replaced atomically (temp file + fsync + rename + fsync of the dir)
    .lock                      flock: serialises append / ack / repair across threads and processes
    .drain.lock                flock: at most one process re-sends at a time (`draining()`)

A record is a 14-byte header ``magic "PS" | crc32 | key length | value length`` (big-endian), then
the key and value bytes; the CRC covers both lengths, the key and the value. A write torn by a crash
shows up as invalid bytes at the very end of the last segment: readers stop there and never raise,
and the next writer (or the next `Spool(...)`) truncates them, under the lock. Invalid bytes with
valid records after them can only be damage (fsync per append means a torn record is always the
last): readers log a warning and resynchronise on the next valid record.

Guarantees: `append` returns only after the record and (for a new segment) its directory entry are
fsynced. `pending()` yields each unacknowledged record once per call, oldest first. `ack` never
moves the position backwards and deletes segments that are fully acknowledged. Delivery is
at-least-once: a crash between delivering and `ack` re-sends those records, so consumers must be
idempotent (provgraph projections de-duplicate by event id).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO, NamedTuple

from provgraph.events.atomic import write_atomic
from provgraph.events.errors import TransportError

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">2sIII")
_LENGTHS = struct.Struct(">II")
_MAGIC = b"PS"
_SEGMENT = re.compile(r"^(\d{20})\.seg$")
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
REJECTED_DIR = "rejected"
"""Sub-directory (a spool of its own) for records the destination will never accept (`http.py`)."""


class SpoolPos(NamedTuple):
    """A position in the spool: the segment number and the byte offset just past a record."""

    segment: int
    offset: int


class Record(NamedTuple):
    pos: SpoolPos
    key: bytes
    value: bytes


class SpoolStats(NamedTuple):
    records: int
    bytes: int
    segments: int


def encode(key: bytes, value: bytes) -> bytes:
    """One record as stored on disk (header + key + value)."""
    return _HEADER.pack(_MAGIC, _crc(key, value), len(key), len(value)) + key + value


def _crc(key: bytes, value: bytes) -> int:
    return zlib.crc32(value, zlib.crc32(key, zlib.crc32(_LENGTHS.pack(len(key), len(value)))))


def _decode(buf: bytes, i: int) -> tuple[bytes, bytes, int] | None:
    """The record starting at `buf[i]` as (key, value, end index); None if no valid record starts there."""
    if len(buf) - i < _HEADER.size:
        return None
    magic, crc, klen, vlen = _HEADER.unpack_from(buf, i)
    body = i + _HEADER.size
    end = body + klen + vlen
    if magic != _MAGIC or end > len(buf):
        return None
    key, value = buf[body : body + klen], buf[body + klen : end]
    return (key, value, end) if _crc(key, value) == crc else None


def _resync(buf: bytes, i: int) -> int | None:
    """The index of the first valid record after the invalid bytes at `buf[i]`; None if none follows.

    None means the invalid bytes run to the end: a write torn by a crash (fsync per append makes a
    torn record always the last one). A valid record after them means damage in the middle.
    """
    j = buf.find(_MAGIC, i + 1)
    while j != -1:
        if _decode(buf, j) is not None:
            return j
        j = buf.find(_MAGIC, j + 1)
    return None


def _read_record(f: IO[bytes], offset: int, size: int) -> tuple[bytes, bytes, int] | None:
    """The record at `offset` of a segment `size` bytes long, as (key, value, end); None if not valid."""
    if size - offset < _HEADER.size:
        return None
    f.seek(offset)
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    magic, crc, klen, vlen = _HEADER.unpack(header)
    end = offset + _HEADER.size + klen + vlen
    if magic != _MAGIC or end > size:
        return None
    body = f.read(klen + vlen)
    if len(body) < klen + vlen:
        return None
    key, value = body[:klen], body[klen:]
    return (key, value, end) if _crc(key, value) == crc else None


def _valid_end(path: Path, start: int = 0) -> tuple[int, int]:
    """(end of the last valid record at or after `start`, file size) for one segment.

    Damaged bytes followed by valid records are stepped over (readers skip them too); only invalid
    bytes at the very end (a torn write) lie beyond the returned end.
    """
    try:
        with open(path, "rb") as f:
            f.seek(start)
            buf = f.read()
    except FileNotFoundError:
        return 0, 0
    i = end = 0
    while i < len(buf):
        rec = _decode(buf, i)
        if rec is not None:
            i = end = rec[2]
            continue
        nxt = _resync(buf, i)
        if nxt is None:
            break
        i = nxt
    return start + end, start + len(buf)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """An append-only, fsynced, FIFO spool of (key, value) records under `directory`.

    Safe for several threads and several processes on the same directory (flock). Not for network
    file systems whose flock is advisory-only across hosts.
    """

    def __init__(self, directory: Path | str, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES, fsync: bool = True):
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(f"cannot create the spool directory {self.directory}: {exc}") from exc
        self._thread_lock = threading.Lock()
        self._drain_thread_lock = threading.Lock()
        self._fd_lock = threading.Lock()
        self._pid = -1
        self._lock_fd = -1
        self._drain_fd = -1
        # The tail this writer last left behind; when the file differs, another writer (or a crash) did it.
        self._tail = SpoolPos(-1, -1)
        with self._locked():
            self._repair_tail()

    # -- locking ---------------------------------------------------------------------------------

    def _fds(self) -> tuple[int, int]:
        """Lock file descriptors, reopened after a fork (a flock on an inherited fd is shared)."""
        with self._fd_lock:
            if self._pid != os.getpid() or self._lock_fd < 0:
                self._pid = os.getpid()
                self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
                self._drain_fd = os.open(self.directory / ".drain.lock", os.O_RDWR | os.O_CREAT, 0o644)
            return self._lock_fd, self._drain_fd

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fd, _ = self._fds()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @contextmanager
    def draining(self, *, wait: bool = False) -> Iterator[bool]:
        """The exclusive right to re-send and ack; yields False when another thread or process has it.

        Two processes re-sending the same records would only produce duplicates (harmless but
        wasteful), so callers take this around their `pending()` / `ack()` loop.
        """
        if not self._drain_thread_lock.acquire(blocking=wait):
            yield False
            return
        try:
            _, fd = self._fds()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
                mine = True
            except BlockingIOError:
                mine = False
            try:
                yield mine
            finally:
                if mine:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._drain_thread_lock.release()

    # -- files -----------------------------------------------------------------------------------

    def _segment_path(self, n: int) -> Path:
        return self.directory / f"{n:020d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(m.group(1)) for name in os.listdir(self.directory) if (m := _SEGMENT.match(name)))

    def _size(self, n: int) -> int:
        try:
            return self._segment_path(n).stat().st_size
        except FileNotFoundError:
            return 0

    def acked(self) -> SpoolPos:
        """The acknowledged position (everything before it was delivered); (0, 0) for a new spool."""
        try:
            text = (self.directory / "acked").read_text()
        except FileNotFoundError:
            return SpoolPos(0, 0)
        try:
            segment, offset = (int(part) for part in text.split())
            return SpoolPos(segment, offset)
        except ValueError:
            # Only a damaged disk gets here (the file is replaced atomically). Re-sending everything
            # is safe: delivery is at-least-once and consumers de-duplicate.
            log.warning("spool %s: unreadable acked position %r; re-sending from the start", self.directory, text)
            return SpoolPos(0, 0)

    def _write_acked(self, pos: SpoolPos) -> None:
        write_atomic(self.directory / "acked", f"{pos.segment} {pos.offset}\n".encode(), fsync=self.fsync)
        if self.fsync:
            _fsync_dir(self.directory)

    def _repair_tail(self) -> None:
        """Truncate a torn last write (held under the lock: no writer is mid-record)."""
        segments = self._segments()
        if not segments:
            self._tail = SpoolPos(-1, -1)
            return
        last = segments[-1]
        t = self._tail
        end, size = _valid_end(
            self._segment_path(last), t.offset if t.segment == last and t.offset <= self._size(last) else 0
        )
        if end < size:
            log.warning(
                "spool %s: discarding %d bytes of a torn write at the end of segment %d",
                self.directory,
                size - end,
                last,
            )
            with open(self._segment_path(last), "r+b") as f:
                f.truncate(end)
                if self.fsync:
                    os.fsync(f.fileno())
        self._tail = SpoolPos(last, end)

    # -- writing ---------------------------------------------------------------------------------

    def append(self, key: bytes, value: bytes) -> SpoolPos:
        """Append one record; it is on disk (fsynced) when this returns. Raises `TransportError`."""
        record = encode(key, value)
        try:
            with self._locked():
                segments = self._segments()
                if segments and (self._tail.segment != segments[-1] or self._tail.offset != self._size(segments[-1])):
                    self._repair_tail()  # another process appended, or a crash left a torn write
                if segments and self._tail.offset < self.segment_bytes:
                    segment, offset = self._tail
                else:
                    segment = max([*segments, self.acked().segment, self._tail.segment]) + 1
                    offset = 0
                path = self._segment_path(segment)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    try:
                        written = os.pwrite(fd, record, offset)
                        if written != len(record):
                            raise OSError(f"short write ({written} of {len(record)} bytes)")
                        if self.fsync:
                            os.fsync(fd)
                    except OSError:
                        os.ftruncate(fd, offset)  # never leave a partial record behind us
                        raise
                finally:
                    os.close(fd)
                if offset == 0 and self.fsync:
                    _fsync_dir(self.directory)
                self._tail = SpoolPos(segment, offset + len(record))
                return self._tail
        except OSError as exc:
            raise TransportError(f"cannot append to the spool {self.directory}: {exc}") from exc

    # -- reading ---------------------------------------------------------------------------------

    def pending(self) -> Generator[Record, None, None]:
        """Unacknowledged records, oldest first, as (position to `ack`, key, value).

        Reads without the lock; records appended while iterating are included. A record that does
        not validate is re-checked under the lock (a concurrent append may have been in progress).
        """
        start = self.acked()
        segment, offset = start.segment, start.offset
        while True:
            later = [s for s in self._segments() if s >= segment]
            if not later:
                return
            if later[0] != segment:
                segment, offset = later[0], 0
            offset, damaged = yield from self._read_segment(segment, offset)
            later = [s for s in self._segments() if s > segment]
            if not later:
                return  # the segment still being written: we are at its end
            if not damaged and self._size(segment) > offset:
                continue  # it grew before the next segment started: read the rest
            segment, offset = later[0], 0

    def _read_segment(self, segment: int, offset: int) -> Generator[Record, None, tuple[int, bool]]:
        """Yields the segment's records from `offset`; returns (offset reached, rest of it damaged)."""
        path = self._segment_path(segment)
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed by the `with f` below; open may race a delete)
        except FileNotFoundError:
            return offset, False
        with f:
            while True:
                size = os.fstat(f.fileno()).st_size
                if offset >= size:
                    return offset, False
                rec = _read_record(f, offset, size)
                if rec is None:
                    with self._locked():  # no append in progress now: decide torn/damaged for real
                        size = os.fstat(f.fileno()).st_size
                        rec = _read_record(f, offset, size)
                        is_last = self._segments()[-1:] == [segment]
                    if rec is None:
                        f.seek(offset)
                        nxt = _resync(f.read(size - offset), 0)
                        if nxt is None and is_last:
                            return offset, False  # a torn tail; the next append truncates it
                        skipped = (size - offset) if nxt is None else nxt
                        log.warning(
                            "spool %s: segment %d is damaged at byte %d; skipping %d bytes",
                            self.directory,
                            segment,
                            offset,
                            skipped,
                        )
                        if nxt is None:
                            return offset, True
                        offset += nxt
                        continue
                key, value, offset = rec
                yield Record(SpoolPos(segment, offset), key, value)

    def is_empty(self) -> bool:
        """True when nothing is pending. Cheap (file sizes, at most one record read): call it per emit."""
        acked = self.acked()
        if all(
            s < acked.segment or self._size(s) <= (acked.offset if s == acked.segment else 0) for s in self._segments()
        ):
            return True
        with closing(self.pending()) as records:  # bytes beyond the ack may be only a torn write
            return next(records, None) is None

    def __bool__(self) -> bool:
        return not self.is_empty()

    def __len__(self) -> int:
        """Number of pending records (reads them all: O(spool size))."""
        return sum(1 for _ in self.pending())

    def stats(self) -> SpoolStats:
        records = size = 0
        for _, key, value in self.pending():
            records += 1
            size += len(key) + len(value)
        return SpoolStats(records, size, len(self._segments()))

    # -- acknowledging ---------------------------------------------------------------------------

    def ack(self, pos: SpoolPos) -> None:
        """Everything up to and including the record ending at `pos` is delivered. Never moves back."""
        try:
            with self._locked():
                if pos <= self.acked():
                    return
                self._write_acked(pos)
                segments = self._segments()
                for s in segments:
                    if s < pos.segment or (s == pos.segment and self._size(s) <= pos.offset):
                        self._segment_path(s).unlink(missing_ok=True)
                if self.fsync and segments and segments[0] <= pos.segment:
                    _fsync_dir(self.directory)
        except OSError as exc:
            raise TransportError(
                f"cannot record the acknowledged position in the spool {self.directory}: {exc}"
            ) from exc

    def close(self) -> None:
        """Release the lock files (they are reopened if the spool is used again)."""
        with self._thread_lock, self._fd_lock:
            for fd in (self._lock_fd, self._drain_fd):
                if fd >= 0 and self._pid == os.getpid():
                    os.close(fd)
            self._lock_fd = self._drain_fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
