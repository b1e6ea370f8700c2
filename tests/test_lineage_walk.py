"""The SQLite lineage walk answers exactly as the walk it replaced, on randomised graphs.

The walk was restructured for speed (node rows read with the edges that reach them, fan-out capped
in Python, the answer's objects built once; docs/BENCHMARKS.md "Walk restructured"). A faster walk
that answers differently must fail here: every answer is compared, whole (nodes, hops, edges, cut
reasons in order), with the round-4 walk kept in `tests/lineage_oracle.py`, over starts of every
kind, both directions, depths 0-7, fan-out caps that cut, a node cap that cuts, failed runs with
and without `include_failed`, unversioned reads that resolve (or not) as of the query's times, and
`asOf`/`knownAt` points of view. The answer's nodes and edges are built without validation (round 7):
each answer is also validated again and must come out equal, and serialise as the oracle's does.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from provgraph.events.errors import NotFound
from provgraph.events.model import UNVERSIONED, EventType, RunEvent
from provgraph.events.synthetic import EPOCH, content_hash, dataset, run_events
from provgraph.graph import walk
from provgraph.graph.contract import NOW, AsOf, LineageBounds
from provgraph.graph.ids import NodeId
from provgraph.graph.sqlite_store import SqliteLineageStore
from provgraph.graph.views import Direction, LineageGraph
from tests.lineage_oracle import oracle_lineage

RUNS = 70
NAMES = [f"/d/{k}.parquet" for k in range(6)]


def _events(seed: int) -> list[RunEvent]:
    """Runs reading 0-3 of the versions so far (some by name only, some the same one twice under
    two bindings) and writing 1-2 new ones; one in five fails. A few names hold most versions, so
    unversioned reads have several candidates, and one version's own text ends in `@unversioned`."""
    rng = random.Random(seed)
    versions = [(n, content_hash(f"{seed}-{n}")) for n in NAMES[:3]] + [(NAMES[3], f"v1@{UNVERSIONED}")]
    events: list[RunEvent] = []
    for i in range(RUNS):
        inputs = []
        for k in range(rng.choice((0, 1, 2, 2, 3))):
            if rng.random() < 0.2:
                inputs.append(dataset("file", rng.choice([*NAMES, "/d/never-written.csv"]), UNVERSIONED, "any"))
            else:
                inputs.append(dataset("file", *rng.choice(versions), f"in{k % 2}"))
        outputs = [
            dataset("file", rng.choice(NAMES), content_hash(f"{seed}-{i}-{k}"), f"out{k}", output=True)
            for k in range(rng.choice((1, 1, 2)))
        ]
        events += run_events(
            f"r{i:03d}",
            job=f"job{i % 4}",
            params={"i": i},
            inputs=inputs,
            outputs=outputs,
            final=EventType.FAIL if rng.random() < 0.2 else EventType.COMPLETE,
            start=EPOCH + timedelta(seconds=10 * i),
        )
        versions += [(d.name, d.version) for d in outputs]
    return events


def _store(path: Path, seed: int) -> SqliteLineageStore:
    store = SqliteLineageStore(path)
    events = _events(seed)
    rng = random.Random(seed)
    # received up to a minute after they happened: `knownAt` sees a different graph from `asOf`
    store.apply(events, known_at=[e.event_time + timedelta(seconds=rng.randrange(60)) for e in events])
    return store


def _starts(rng: random.Random, seed: int) -> list[NodeId]:
    return [
        NodeId.run(f"r{rng.randrange(RUNS):03d}"),
        NodeId.job("synthetic", f"job{rng.randrange(4)}"),
        NodeId.dataset("file", rng.choice(NAMES)),
        NodeId.dataset("file", NAMES[0], content_hash(f"{seed}-{NAMES[0]}")),
        NodeId.dataset("file", NAMES[3], f"v1@{UNVERSIONED}"),
        NodeId.dataset("file", rng.choice(NAMES), content_hash(f"{seed}-{rng.randrange(RUNS)}-0")),
    ]


@pytest.mark.parametrize(("seed", "probe_first"), [(1, walk.PROBE_FIRST), (2, walk.PROBE_FIRST), (3, 1), (4, 2)])
def test_the_walk_answers_as_the_round4_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, probe_first: int
) -> None:
    # small first slices: the depth probe asks several slices of a frontier before it answers
    monkeypatch.setattr(walk, "PROBE_FIRST", probe_first)
    store = _store(tmp_path / "g.db", seed)
    capped = SqliteLineageStore(tmp_path / "g.db", bounds=LineageBounds(max_nodes=9))
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    for _ in range(60):
        at = rng.choice(
            (NOW, AsOf(as_of=EPOCH + timedelta(seconds=rng.randrange(10 * RUNS)))),
        )
        if rng.random() < 0.3:
            at = AsOf(as_of=at.as_of, known_at=EPOCH + timedelta(seconds=rng.randrange(10 * RUNS)))
        for start in _starts(rng, seed):
            for graph in (store, capped):
                args = (start, rng.choice(list(Direction)), rng.randrange(8), rng.choice((1, 2, 3, 100)))
                failed = rng.random() < 0.5
                try:
                    want = oracle_lineage(graph, *args, include_failed=failed, at=at)
                except NotFound:
                    with pytest.raises(NotFound, match="no such node"):
                        graph.lineage(*args, include_failed=failed, at=at)
                    seen["not found"] += 1
                    continue
                got = graph.lineage(*args, include_failed=failed, at=at)
                assert got.model_dump() == want.model_dump(), (args, failed, at)
                # its nodes and edges are built unvalidated (plain dataclasses): they must be what validation makes
                assert got == LineageGraph.model_validate(got.model_dump()), (args, failed, at)
                assert got.model_dump_json() == want.model_dump_json(), (args, failed, at)
                seen.update(got.cut_codes)
                seen.update(_traits(got))
    # the comparisons covered what can go wrong, not only the plain case
    for what in ("fanOut", "nodes", "depth", "ATTEMPTED", "resolved", "unresolved", "not found", "deep"):
        assert seen[what] > 0, (what, seen)


def _traits(g: LineageGraph) -> list[str]:
    ids = {n.id for n in g.nodes}
    out = [e.kind for e in g.edges if e.kind == "ATTEMPTED"]
    out += ["deep"] if len(g.nodes) > 20 else []
    # an unversioned read (bound as "any") reaches the version it resolved to, or stays `@unversioned`
    reads = [e.target for e in g.edges if e.binding == "any"]
    out += ["unresolved" if t.endswith(f"@{UNVERSIONED}") else "resolved" for t in reads if t in ids]
    return out
