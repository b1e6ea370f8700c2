"""The embedded log's row for an event is what it always was: the body `serde.dumps` writes, byte for
byte, and the time columns as `datetime.isoformat` writes them, for every kind of event the contract
accepts (the synthetic workload, every facet, unicode, 64-bit integers, nested params, non-finite
metrics, unknown facets, times at the ends of the range and in other offsets).

The append path builds its row faster (`serde.dumps_timed`, `ingested_now`); the reference here is the
row as it was built before, from `dumps` and `isoformat`.
"""

from __future__ import annotations

import math
import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from provgraph.events import serde
from provgraph.events.errors import EventConflict
from provgraph.events.facets import MetricPoint, MetricsRunFacet, ParamsRunFacet
from provgraph.events.facets.values import INT64_MAX, INT64_MIN
from provgraph.events.model import RunEvent
from provgraph.events.synthetic import run_events, workload
from provgraph.events.transport import sqlite as log_module
from provgraph.events.transport.sqlite import SqliteEventLog
from tests.mixed_events import mixed_events


def with_facets(e: RunEvent, **facets: object) -> RunEvent:
    run = e.run.model_copy(update={"facets": e.run.facets.model_copy(update=facets)})
    return e.model_copy(update={"run": run})


def edge_cases() -> list[RunEvent]:
    base = run_events("edge", namespace="édge-π", job="jöb-✓")
    start = base[0]
    params = {
        "unicode": 'naïve ☃ 𝄞 中文 \u2028 "quoted" \\ back',
        "big": INT64_MAX,
        "small": INT64_MIN,
        "nested": {"z": [1, {"b": [None, True, 1.5e300, -0.0]}, "x"], "a": {"é": {"deep": [[[]]]}}},
        "float": 0.1 + 0.2,
    }
    events = [with_facets(start, params=ParamsRunFacet(params=params))]
    metrics = MetricsRunFacet(
        metrics=[
            MetricPoint(key=k, value=v, step=s)
            for s, (k, v) in enumerate(
                [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("tiny", 5e-324), ("big", 1.7e308)]
            )
        ]
    )
    events.append(with_facets(base[1], metrics=metrics))
    # an OpenLineage producer's unknown facets and fields, kept as plain JSON (extras)
    events.append(serde.loads({**serde.to_dict(base[-1]), "zExtra": {"b": 1, "a": ["ü", 2]}, "aExtra": 3}))
    times = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(999, 5, 5, 1, 2, 3, 40, tzinfo=UTC),
    ]
    for t in times:
        events.append(serde.loads({**serde.to_dict(start), "eventTime": t.isoformat()}))  # validated: UTC
    offsets = [timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(0)), timezone(-timedelta(hours=11))]
    offsets += [timezone(timedelta(seconds=30)), timezone(timedelta(microseconds=5))]  # "+00:00", "Z" on the wire
    for tz in offsets:  # not normalised (built without validation): the row still follows `isoformat`
        events.append(start.model_copy(update={"event_time": datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=tz)}))
    return events


def before(e: RunEvent) -> bytes:
    """The body as `serde.dumps` wrote it until round 10."""
    return orjson.dumps(e.model_dump(mode="json", by_alias=True, exclude_none=True), option=orjson.OPT_SORT_KEYS)


def every_kind() -> list[RunEvent]:
    mixed, _ = mixed_events(30, seed=7)
    return list(workload(40)) + mixed + edge_cases()


def test_the_body_and_time_are_as_before() -> None:
    for e in every_kind():
        assert serde.dumps(e) == before(e)
        assert serde.dumps_timed(e) == (before(e), e.event_time.isoformat())


def test_stored_rows_are_the_rows_built_before(tmp_path: Path) -> None:
    events = every_kind()
    log = SqliteEventLog(tmp_path / "log.db")
    first: dict[str, RunEvent] = {}
    for e in events:  # mostly one per call (the one-statement path), a run's first event in a transaction
        try:
            log.append([e])
        except EventConflict:  # the mix reuses some event ids for other content: the first one stays
            continue
        first.setdefault(serde.event_id(e), e)
    assert log.append(list(first.values())[:50]) == 0  # redelivered as a batch: ignored, same bytes
    stored = {
        r[0]: r[1:]
        for r in sqlite3.connect(tmp_path / "log.db").execute(
            "SELECT event_id, run_id, root_run_id, event_type, event_time, body FROM events"
        )
    }
    assert len(stored) == len(first)
    for e in first.values():
        body = before(e)
        row = (e.run.run_id, e.root_run_id, e.event_type.value, e.event_time.isoformat(), body)
        assert stored[serde.event_id(e, body)] == row


@pytest.mark.parametrize(
    "ns",
    [
        1_764_740_000 * 10**9,  # a whole second: no fraction, as `isoformat` writes it
        1_764_740_000 * 10**9 + 1_000,
        1_764_740_000 * 10**9 + 999_999_999,  # nanoseconds are cut, not rounded (as `datetime.now`)
        1_764_740_001 * 10**9 + 123_456_789,  # the next second: the cached text is replaced
        0,
    ],
)
def test_ingested_now_is_isoformat_of_now(monkeypatch: pytest.MonkeyPatch, ns: int) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: ns)
    seconds, nanos = divmod(ns, 10**9)
    expected = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000).isoformat()
    assert log_module.ingested_now() == expected


def test_ingested_now_follows_the_clock() -> None:
    before = datetime.now(UTC)
    now = datetime.fromisoformat(log_module.ingested_now())
    assert before <= now <= datetime.now(UTC)
