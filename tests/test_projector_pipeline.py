"""The projector's pipeline against a real Kafka broker and a real Neo4j server: batches land and
publish their progress in order (never ahead of the data), and a batch the store could not take is
written once it is back.

The projector runs in a thread with a Neo4j store whose writes the test can hold or fail once.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from faststream import FastStream
from faststream.kafka import KafkaBroker

from provgraph.events import serde
from provgraph.events.errors import StoreUnavailable
from provgraph.events.settings import Settings
from provgraph.events.synthetic import run_events, workload
from provgraph.graph import progress
from provgraph.graph.neo4j_config import Neo4jConfig
from provgraph.graph.neo4j_store import Neo4jLineageStore
from provgraph.services.projector.handlers import BatchProjector, projector_router
from provgraph.services.records import Record
from tests import test_projector
from tests.helpers import wait_for
from tests.test_consistency_kafka import kafka_settings
from tests.test_projector import caught_up, comparable, produce, produce_events, sqlite_dump

pytestmark = [pytest.mark.kafka, pytest.mark.neo4j]


@pytest.fixture
def settings(kafka: str, neo4j: str, tmp_path: Path) -> Settings:
    return kafka_settings(kafka, neo4j, tmp_path / "home")


graph = test_projector.graph  # an empty Neo4j graph for `settings`


class HeldStore(Neo4jLineageStore):
    """Neo4j whose first batch write waits for `release` (or, with `fail_first`, fails as if the
    server were away); every write is noted with the progress it carries."""

    def __init__(self, *args: object, fail_first: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fail_first = fail_first
        self.held = threading.Event()
        self.release = threading.Event()
        self.writes: list[progress.Offsets | None] = []
        self.runs_written: list[set[str]] = []

    def apply_prepared(self, batch: dict[str, list[object]], *, offsets: progress.Offsets | None = None) -> None:  # type: ignore[override]
        first = not self.writes
        self.writes.append(offsets)
        self.runs_written.append({str(r["run_id"]) for r in batch["runs"]})  # type: ignore[index]
        if first and self.fail_first:
            raise StoreUnavailable("the graph store is away (test)")
        if first:
            self.held.set()
            assert self.release.wait(120), "the test never released the write"
        super().apply_prepared(batch, offsets=offsets)  # type: ignore[arg-type]


@contextmanager
def projecting(settings: Settings, store: HeldStore) -> Iterator[list[list[Record]]]:
    """The projector's subscriber and pipeline over `store` in a thread; yields the batches of
    records the consumer handed over (in order), stopped gracefully at exit."""
    handed: list[list[Record]] = []
    broker = KafkaBroker(str(settings.kafka_bootstrap_servers))
    router, pipeline = projector_router(settings, BatchProjector.for_settings(store, settings))
    handle = pipeline.handle

    async def spy(records: list[Record], consumer: object) -> None:
        handed.append(list(records))
        await handle(records, consumer)

    pipeline.handle = spy  # type: ignore[method-assign]
    broker.include_router(router)
    app = FastStream(broker, on_shutdown=[pipeline.close])
    stop = threading.Event()

    async def serve() -> None:
        async with app:
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="projector", daemon=True)
    thread.start()
    try:
        yield handed
    finally:
        store.release.set()
        stop.set()
        thread.join(90)
    assert not thread.is_alive(), "the projector did not stop"


def store_for(settings: Settings, **kwargs: bool) -> HeldStore:
    return HeldStore(Neo4jConfig.from_settings(settings), **kwargs)


def handed_over(handed: list[list[Record]], offsets: list[tuple[int, int]]) -> bool:
    seen = {(r.partition, r.offset) for batch in handed for r in batch}
    return all(o in seen for o in offsets)


def test_batches_land_in_order_and_the_progress_never_passes_data_not_in(
    settings: Settings, graph: Neo4jLineageStore
) -> None:
    """Runs 2 and 3 arrive one after the other while batch 1's write is held: both are handed over
    during the hold and written together, in the one batch after it (a batch sealed as the write
    began held run 2 only and left run 3 for a third write: a write cycle more of latency). Once
    released, every read of the progress finds the runs before it in the graph, and each write
    carries a progress past the one before."""
    store = store_for(settings)
    first, second, third = run_events("first"), run_events("second"), run_events("third")
    try:
        with projecting(settings, store) as handed:
            produce_events(settings, first)
            wait_for("batch 1's write to be held", store.held.is_set, 60)
            sent2 = produce(settings, [(e.root_run_id.encode(), serde.dumps(e)) for e in second])
            wait_for("run 2 handed over", lambda: handed_over(handed, sent2), 60)
            sent3 = produce(settings, [(e.root_run_id.encode(), serde.dumps(e)) for e in third])
            wait_for("run 3 handed over while batch 1 is held", lambda: handed_over(handed, sent3), 30)
            assert graph.kafka_progress() == {}
            assert graph.run("first") is None and graph.run("second") is None

            store.release.set()
            complete = {run: max(sent, key=lambda ps: ps[1]) for run, sent in (("second", sent2), ("third", sent3))}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # every progress read finds the runs it has passed in the graph
                at = graph.kafka_progress()
                for run, (partition, offset) in complete.items():
                    if any(p == partition and nxt > offset for (_, p), nxt in at.items()):
                        assert graph.run(run) is not None, f"progress {at} passed run {run} before its data"
                if graph.run("third") is not None and all(
                    any(p == partition and nxt > offset for (_, p), nxt in at.items())
                    for partition, offset in complete.values()
                ):
                    break
                time.sleep(0.005)
            caught_up(settings)
    finally:
        store.close()
    # each write carries the progress past its batch, in order: a partition's progress only grows
    carried = [w for w in store.writes if w]
    for earlier, later in itertools.pairwise(carried):
        assert all(later[tp] > nxt for tp, nxt in earlier.items() if tp in later)
    assert len(store.runs_written) == 2, store.runs_written
    assert {"second", "third"} <= store.runs_written[1]
    assert comparable(graph.dump()) == sqlite_dump([*first, *second, *third])


def test_a_batch_the_store_could_not_take_on_an_idle_projector_lands_once_it_is_back(
    settings: Settings, graph: Neo4jLineageStore
) -> None:
    """The first write fails as if Neo4j were away and nothing else arrives: the batch is written
    again after the pause, its progress with it, and committed. (The old pipeline rewound the
    partitions while idle, dropped the records fetched again as 'consumed after the failed batch'
    without rewinding them, and never projected them.)"""
    store = store_for(settings, fail_first=True)
    events = list(workload(3, namespace="retried"))
    try:
        with projecting(settings, store):
            produce_events(settings, events)
            wait_for("the run written after the store came back", lambda: graph.run(events[-1].run.run_id), 60)
            caught_up(settings, timeout=60)
            later = run_events("later")
            produce_events(settings, later)
            caught_up(settings, timeout=60)
    finally:
        store.close()
    assert comparable(graph.dump()) == sqlite_dump([*events, *later])
    assert sum(graph.kafka_progress().values()) == len(events) + len(later)
