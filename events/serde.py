"""The one serialiser: stable bytes for every event, so a replay can be byte-identical.

`None`s are dropped, keys sorted, no whitespace (orjson: the bytes `json.dumps` gives with sorted keys
and compact separators, five times faster on the SDK's hot path). `loads` is the only way bytes
become a `RunEvent`; it raises `ContractError` with the validation message.

Validating a batch allocates several hundred objects an event and keeps them alive until the batch
is written: with Python's default GC thresholds the collector scans the growing batch again and
again (2-4x the validation itself), though validated events form no reference cycles. A projector
validates under `few_collections`.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from provgraph.events.errors import ContractError
from provgraph.events.facets.values import json_is_storable

if TYPE_CHECKING:
    from provgraph.events.model import RunEvent

BATCH_GC_THRESHOLDS = (1_000_000, 10, 10)
"""The cyclic GC's thresholds while batches are validated: a young collection every 10^6 allocations."""

_gc_lock = threading.Lock()
_gc_users = 0
_gc_before: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def few_collections() -> Iterator[None]:
    """`BATCH_GC_THRESHOLDS` inside, the process's own thresholds restored after the last of any
    overlapping users (threads) leaves. Scoped, since it runs in users' processes (a CLI read, a
    notebook's `replay`); a service that only projects sets them for good (`services/projector`)."""
    global _gc_users, _gc_before
    with _gc_lock:
        if _gc_users == 0:
            _gc_before = gc.get_threshold()
            gc.set_threshold(*BATCH_GC_THRESHOLDS)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_before)


def to_dict(event: RunEvent) -> dict[str, Any]:
    # `model_dump(mode="json", by_alias=True, exclude_none=True)` without its Python wrapper (hot path)
    return event.__pydantic_serializer__.to_python(event, mode="json", by_alias=True, exclude_none=True)  # type: ignore[no-any-return]


def dumps(event: RunEvent) -> bytes:
    return orjson.dumps(to_dict(event), option=orjson.OPT_SORT_KEYS)


def dumps_timed(event: RunEvent) -> tuple[bytes, str]:
    """`dumps(event)` and `event.event_time.isoformat()` from one model walk (the log's hot path).

    A validated event's time is in UTC, whose wire form is the ISO form with "Z" for "+00:00";
    `isoformat` costs as much as serialising a small facet. Other offsets (an event built without
    validation) take `isoformat`: the wire form rounds sub-minute offsets, even to "Z"."""
    wire = to_dict(event)
    at = wire["eventTime"]
    iso = at[:-1] + "+00:00" if event.event_time.tzinfo is UTC and at[-1] == "Z" else event.event_time.isoformat()
    return orjson.dumps(wire, option=orjson.OPT_SORT_KEYS), iso


@functools.cache
def _wire() -> tuple[type[RunEvent], dict[str, bool]]:
    """The event model and the context of a screened event, imported on the first `loads` (the log's
    and graph's readers load no wire model) and not again on each call of the projection's hot path."""
    from provgraph.events.model import SCREENED, RunEvent

    return RunEvent, {SCREENED: True}


def loads(data: bytes | str | dict[str, Any]) -> RunEvent:
    event, screened = _wire()
    try:
        if isinstance(data, dict):
            return event.model_validate(data)
        if isinstance(data, bytes) and json_is_storable(data):
            return event.model_validate_json(data, context=screened)  # the storable-value walk proven needless
        return event.model_validate_json(data)
    except ValidationError as exc:
        raise refusal(exc) from exc


def refusal(exc: ValidationError, what: str = "OpenLineage RunEvent") -> ContractError:
    """The `ContractError` for a validation failure, naming the first fields at fault."""
    return ContractError(f"not a valid {what}: {_first_errors(exc)}")


def event_id(event: RunEvent, raw: bytes | None = None) -> str:
    """The event's id: `provgraph_event.eventId`, else a hash of its stable bytes (other producers)."""
    if event.run.facets.event is not None:
        return event.run.facets.event.event_id
    return "sha256:" + hashlib.sha256(raw if raw is not None else dumps(event)).hexdigest()


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        if not err["loc"] and err["type"] == "value_error":
            parts.append(str(err["ctx"]["error"]))  # a whole-event check: its message names the path
            continue
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
