"""Run labels and annotations (facet `provgraph_labels`): projected onto the run in every store, the
latest report winning in any arrival order, any text storable, and `labels.<key>` queries answered
from an index on both stores."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from provgraph.events.facets import EventRunFacet, LabelsRunFacet
from provgraph.events.model import EventType, Job, Run, RunEvent, RunFacets
from provgraph.events.synthetic import EPOCH
from provgraph.graph.contract import LineageStore, RunFilter
from provgraph.graph.run_query import parse

ODD = "é 🎉 ' \" \\ {x} $v0 \n\t" + "x" * 3000
"""Text a label may hold: quotes, braces, what looks like a query parameter, newlines, long values."""
HUGE = "é" * 20_000
"""Beyond what a Neo4j index holds: stored, shown and queried all the same."""


def _event(run_id: str, seq: int, kind: EventType, labels: dict[str, str] | None, **notes: str) -> RunEvent:
    facet = None if labels is None else LabelsRunFacet(labels=labels, annotations=notes)
    return RunEvent(
        event_type=kind,
        event_time=EPOCH + timedelta(minutes=seq, seconds=len(run_id)),
        run=Run(
            run_id=run_id, facets=RunFacets(event=EventRunFacet(event_id=f"{run_id}:{seq}", seq=seq), labels=facet)
        ),
        job=Job(namespace="demo", name="train"),
    )


def _events() -> list[RunEvent]:
    return [
        _event("a1", 0, EventType.START, {"team": "vision", "app.kubernetes.io/name": "trainer"}),
        # a later report (commit, then the end of the run) replaces the whole set, annotations with it
        _event("a1", 1, EventType.RUNNING, {"team": "nlp", "stage": "2"}, message="first"),
        _event("a1", 2, EventType.COMPLETE, None),
        _event("a2", 0, EventType.START, {"team": "vision", "odd": ODD, "": "empty key", "v": ""}, why=ODD),
        _event("a2", 1, EventType.COMPLETE, None),
        _event("a3", 0, EventType.START, {"stage": "10", "huge": HUGE}),
    ]


QUERIES = {
    "labels.team = nlp": ["a1"],
    "labels.team = vision": ["a2"],  # a1's first labels were replaced
    "labels.team != nlp": ["a2"],  # runs without the label match no comparison
    "labels.stage = 2": ["a1"],  # text, as written
    "labels.stage > 1": ["a3", "a1"],  # text order: "10" and "2" both follow "1"
    "labels.app.kubernetes.io/name = trainer": [],
    "labels.v = ''": ["a2"],
    "labels.team = vision and labels.v = ''": ["a2"],
    "labels.team = nlp and job = train and state = COMPLETE": ["a1"],
    "labels.huge > 'é'": ["a3"],
}


def _ids(store: LineageStore, text: str) -> list[str]:
    base, conditions = parse(text)
    return [r.run_id for r in store.runs(RunFilter(**{**base.__dict__, "conditions": conditions}), first=50)]


def test_labels_are_projected_in_any_order(store: LineageStore) -> None:
    for seed in (1, 2, 3):
        events = _events()
        random.Random(seed).shuffle(events)
        store.reset()
        for event in events:
            store.apply([event])
        store.apply(events[:2])  # duplicates change nothing
        a1, a2 = store.run("a1"), store.run("a2")
        assert a1 is not None and a2 is not None
        assert (a1.labels, a1.annotations) == ({"team": "nlp", "stage": "2"}, {"message": "first"})
        assert (a2.labels, a2.annotations) == ({"team": "vision", "odd": ODD, "": "empty key", "v": ""}, {"why": ODD})
        assert {text: _ids(store, text) for text in QUERIES} == QUERIES
        listed = {r.run_id: r.labels for r in store.runs(RunFilter(), first=10)}
        assert listed == {"a1": a1.labels, "a2": a2.labels, "a3": {"stage": "10", "huge": HUGE}}


def _plan(store: Any, text: str) -> str:
    conditions = parse(text)[1]
    query, params = store.runs_query(RunFilter(conditions=conditions), None, 50, None)
    if type(store).__name__ == "SqliteLineageStore":
        return " | ".join(r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + query, params))
    with store._session() as s:
        plan = s.run("EXPLAIN " + query, params).consume().plan

    def walk(p: dict[str, Any]) -> list[str]:
        return [f"{p['operatorType']} {p.get('args', {}).get('Details', '')}"] + [
            x for c in p.get("children", []) for x in walk(c)
        ]

    return " | ".join(walk(plan))


def test_label_queries_are_answered_from_an_index(store: LineageStore) -> None:
    store.apply(_events())
    plan = _plan(store, "labels.team = nlp")
    if type(store).__name__ == "SqliteLineageStore":
        assert "INDEX run_label_value (key=? AND value=?)" in plan, plan
    else:
        index = "RANGE INDEX l:RunLabel(key, value) WHERE key = $k0 AND value = $v0"
        assert f"NodeIndexSeek@neo4j {index}" in plan, plan
