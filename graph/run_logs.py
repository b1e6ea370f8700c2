"""A run's captured output, put back together from its chunks (`LogChunkView`, in offset order).

Shared by the CLI (`provgraph logs`) and the API (`Run.logs`), which fetch chunk bytes from the
artifact store (verified against their names). A gap between chunks is output the run could not
store, or whose event has not arrived yet, or a chunk whose bytes the store does not hold: it is
shown as a marker line, never silently joined.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provgraph.graph.views import LogChunkView


@dataclass(frozen=True)
class LogText:
    text: str
    start: int
    """Offset of the first byte shown (> 0 when only the tail was asked for)."""
    end: int
    """Offset just past the last byte known: where a follower continues."""


def gap_marker(size: int) -> str:
    return f"[provgraph: {size} bytes of output missing]\n"


def read_log(
    chunks: Sequence[LogChunkView],
    fetch: Callable[[str, int], bytes],
    *,
    start: int = 0,
    tail: int | None = None,
    limit: int | None = None,
) -> LogText:
    """The output from offset `start` (or only its last `tail` bytes), at most `limit` bytes of
    it, decoded as UTF-8. Only the chunks in that window are fetched, each by `fetch(digest, size)`
    (`ArtifactStore.get_chunk`: FileNotFoundError unless an object of that name has that size, so a
    forged chunk naming a large object costs a stat, not a read). Bytes of another size are a gap."""
    end = max((c.offset + c.size for c in chunks), default=0)
    if tail is not None:
        start = max(start, end - max(0, tail))
    stop = end if limit is None else min(end, start + max(0, limit))
    parts: list[str] = []
    data = bytearray()
    missing = 0
    """Bytes missing since the last ones shown: adjacent gaps are one marker."""

    def flush() -> None:
        nonlocal missing
        if missing:
            parts.append(gap_marker(missing))
            missing = 0

    at = start
    for c in sorted(chunks, key=lambda c: c.offset):
        if c.offset + c.size <= at:
            continue
        if c.offset >= stop:
            break
        if c.offset > at:
            missing += c.offset - at
            at = c.offset
        try:
            body = fetch(c.digest, c.size)
            if len(body) != c.size:
                raise FileNotFoundError(c.digest)
        except FileNotFoundError:  # an event named bytes the artifact store does not hold: a gap too
            missing += min(c.offset + c.size, stop) - at
        else:
            if missing:
                parts.append(data.decode("utf-8", "replace"))
                data.clear()
                flush()
            data += body[at - c.offset : stop - c.offset]
        at = min(c.offset + c.size, stop)
    parts.append(data.decode("utf-8", "replace"))
    flush()
    return LogText(text="".join(parts), start=start, end=max(stop, start))
