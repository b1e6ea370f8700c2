"""From one RunEvent to the facts a store writes, shared by every store so they cannot drift.

Order independence: each run-level property remembers the `order_key` of the event it came from
and is replaced only by an event with a greater key; the run's state uses a key in which terminal
events (COMPLETE/FAIL/ABORT) beat any START/RUNNING. Sets (edges, versions, metrics) are unions.
Any arrival order, and any number of duplicates, yields the same graph. `started_at` is the
earliest event time of a run, `last_event_at` the latest (what the heartbeat check reads, see
`liveness.py`).

Truth of writes: an output a run declares is *written* only once the run COMPLETEs; until then, and
for a run that ends FAIL/ABORT, it is *attempted* (kept, but never a producer). That is decided when
reading (`written` in the stores' queries), from the run's state, so it cannot depend on arrival order.

A version per write: an output the producer sends without a dataset version facet gets the version
`minted_version(run_id)` (`run-` + 32 hex digits of the run id's SHA-256), the same for every event
of that run, so each writing run makes its own dataset version and replays mint the same ones.

Times: every fact remembers the event time it happened (`event_time`) and when provgraph learnt it
(`known_at`: the ingestion time of its event, given by the log, see `LineageStore.apply`); a fact
declared by several events keeps the earliest of each, which is what the as-of reads compare.

Admission (`admit`): a store refuses a batch holding an event the write rules of
`events/admission.py` forbid (a run changing project, another project's artifact, a malformed
`store://` version) with `Inadmissible`, before writing anything, so a run's namespace never changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from provgraph.events import admission
from provgraph.events.errors import ContractError, Forbidden, Inadmissible
from provgraph.events.states import UNVERSIONED, EventType, RunState, order_key
from provgraph.graph.ids import dataset_node_id

if TYPE_CHECKING:
    from provgraph.events.facets import CodeJobFacet
    from provgraph.events.model import Dataset, RunEvent


def minted_version(run_id: str) -> str:
    """The dataset version of an unversioned output of run `run_id` (deterministic, `/`-free)."""
    return "run-" + hashlib.sha256(run_id.encode()).hexdigest()[:32]


def time_text(value: datetime) -> str:
    """How both stores keep a time: ISO text in UTC, so text order is time order."""
    return value.astimezone(UTC).isoformat()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
"""What `json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)` builds on every call."""


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


@dataclass(slots=True)  # not frozen, as `RunFacts`
class DatasetFacts:
    namespace: str
    name: str
    version: str
    binding: str
    kind: str | None
    size: int | None
    uri: str | None
    format: str | None
    framework: str | None
    meta: str | None
    """The artifact's metadata (`provgraph_artifact.meta`) as canonical JSON, at most `MAX_META_BYTES`."""

    @property
    def node_id(self) -> str:
        return dataset_node_id(self.namespace, self.name, self.version)

    @staticmethod
    def of(dataset: Dataset, minted: str | None = None) -> DatasetFacts:
        """`minted`: the version to use when the producer sent none (outputs only)."""
        art = dataset.facets.artifact
        version = dataset.version
        return DatasetFacts(
            namespace=dataset.namespace,
            name=dataset.name,
            version=minted if minted is not None and version == UNVERSIONED else version,
            binding=dataset.binding,
            kind=art.kind if art else None,
            size=art.size if art else None,
            uri=art.uri if art else None,
            format=art.format if art else None,
            framework=art.framework if art else None,
            meta=bounded_meta(art.meta) if art and art.meta is not None else None,
        )


MAX_META_BYTES = 64 * 1024
"""Stored metadata of one dataset version (canonical JSON): schema and stats fit; a long preview may not."""
TRUNCATED = "$truncated"
"""The key a cut metadata object gains: how big it was and how many of its keys were dropped."""


def bounded_meta(meta: Mapping[str, Any]) -> str:
    """`meta` as canonical JSON; over `MAX_META_BYTES`, its smallest values are kept (smallest first, then
    by key, so every store and every replay keeps the same ones) and the rest are counted under `TRUNCATED`."""
    whole = canonical_json(meta)
    if len(whole.encode()) <= MAX_META_BYTES:
        return whole
    sized = sorted((len(canonical_json({k: v}).encode()), k) for k, v in meta.items())
    budget, kept = MAX_META_BYTES - 100, {}  # room for the marker (two 64-bit counts)
    for size, key in sized:
        if size + 1 > budget:
            break
        kept[key] = meta[key]
        budget -= size + 1
    kept.pop(TRUNCATED, None)  # a producer's own key of that name gives way to the marker
    kept[TRUNCATED] = {"bytes": len(whole.encode()), "dropped": len(meta) - len(kept)}
    return canonical_json(kept)


@dataclass(slots=True)  # not frozen: a frozen init is one object.__setattr__ per field, ~10% of the fold
class RunFacts:
    """What one event says about its run; built per event and read-only by convention (the folds only read it)."""

    run_id: str
    namespace: str
    job_name: str
    event_time: str
    known_at: str
    """When provgraph learnt of the event (its ingestion time), as `time_text`."""
    order_key: str
    state: RunState
    state_key: str
    ended_at: str | None
    seq: int
    has_start: bool
    declared_events: int | None
    code: CodeJobFacet | None
    params: str | None
    results: str | None
    runtime: str | None
    error: str | None
    traceback: str | None
    reproduces: str | None
    parent_run_id: str | None
    cached_from: str | None
    labels: str | None
    """The run's labels (canonical JSON of a str -> str map, `provgraph_labels`); `annotations` move with them."""
    annotations: str | None
    metrics: list[tuple[str, int, float]] = field(default_factory=list)
    logs: list[tuple[int, int, str]] = field(default_factory=list)
    """Log chunks: (offset, size, digest)."""
    reads: list[DatasetFacts] = field(default_factory=list)
    writes: list[DatasetFacts] = field(default_factory=list)

    @property
    def code_hash(self) -> str | None:
        return self.code.code_hash if self.code else None

    @property
    def entrypoint(self) -> str | None:
        """The function the run called in its code snapshot: one file holds many, and its job
        version (keyed by the file's hash) may have run several of them under one job name."""
        return self.code.entrypoint if self.code else None


def admit(events: Sequence[RunEvent], owners: Mapping[str, str]) -> None:
    """`admission.admit` for a store: `owners` are the stored namespaces of the batch's runs."""
    try:
        admission.admit(events, owners)
    except (Forbidden, ContractError) as exc:
        raise Inadmissible(f"event refused by the graph: {exc}") from exc


_STATE = {t: RunState(t.value) for t in EventType}
_TERMINAL = {t: t.is_terminal for t in EventType}
"""The state and terminality of each event type, computed once, not per event."""
_NOT_FACT = {"producer", "schema_url"}
"""What a facet dumped as a run property leaves out."""


def _keyed(value: Any) -> str | None:
    return None if value is None else canonical_json(value)


def written(event: RunEvent) -> list[Dataset]:
    """The event's outputs that are writes: all but those whose `lifecycleStateChange` is DROP
    (openlineage-sql sends one for `DROP TABLE`): a dropped table has no new version to read or to
    show as the latest, and its run is not what produced the data it held."""
    outputs = event.outputs
    if not outputs:
        return outputs
    return [d for d in outputs if not _dropped(d)]


def _dropped(d: Dataset) -> bool:
    change = (d.facets.model_extra or {}).get("lifecycleStateChange")
    return isinstance(change, dict) and change.get("lifecycleStateChange") == "DROP"


def facts(event: RunEvent, known_at: datetime | None = None) -> RunFacts:
    """The event's facts; `known_at` defaults to the event time (an event applied without a log)."""
    run, job, event_type = event.run, event.job, event.event_type
    rf = run.facets
    seq = event.seq
    at = event.event_time.isoformat(timespec="microseconds")  # one formatting for the order key and `when`
    key = order_key(seq, at)
    terminal = _TERMINAL[event_type]
    when = at if event.event_time.microsecond else at[:19] + at[26:]  # as isoformat(): no zero microseconds
    minted = minted_version(run.run_id) if event.outputs else None
    params, results, runtime, reproduces, labels, error = (
        rf.params,
        rf.results,
        rf.runtime,
        rf.reproduces,
        rf.labels,
        rf.error_message,
    )
    return RunFacts(
        run_id=run.run_id,
        namespace=job.namespace,
        job_name=job.name,
        event_time=when,
        known_at=time_text(known_at) if known_at is not None else when,
        order_key=key,
        state=RunState.REQUESTED if event_type == EventType.OTHER and rf.requested else _STATE[event_type],
        # the state last: two end events of one time (a second-precision producer's FAIL and COMPLETE)
        # leave the same state whichever arrived first
        state_key=f"{int(terminal)}|{key}|{event_type.value}",
        ended_at=when if terminal else None,
        seq=seq,
        has_start=event_type == EventType.START,
        declared_events=rf.event.total if rf.event else None,
        code=job.facets.code,
        params=None if params is None else _keyed(params.params),
        results=None if results is None else _keyed(results.results),
        runtime=None if runtime is None else canonical_json(runtime.model_dump(mode="json", exclude=_NOT_FACT)),
        error=None if error is None else error.message,
        traceback=None if error is None else error.stack_trace,
        reproduces=None
        if reproduces is None
        else canonical_json(reproduces.model_dump(mode="json", exclude=_NOT_FACT)),
        parent_run_id=rf.parent.run.run_id if rf.parent else None,
        cached_from=rf.cached_from.run_id if rf.cached_from else None,
        labels=None if labels is None else _keyed(labels.labels),
        annotations=None if labels is None else _keyed(labels.annotations),
        # one point per (key, step), the event's last: a loop logging `loss` without `step=` sends
        # several at step 0 in one event, under one order key, and the run's value is the last one
        metrics=list({(m.key, m.step): (m.key, m.step, m.value) for m in rf.metrics.metrics}.values())
        if rf.metrics
        else [],
        logs=[(c.offset, c.size, c.digest) for c in rf.logs.chunks] if rf.logs else [],
        reads=[DatasetFacts.of(d) for d in event.inputs],
        writes=[DatasetFacts.of(d, minted) for d in written(event)],
    )


KEYED_RUN_PROPS = ("params", "results", "runtime", "error", "reproduces", "labels")
"""Run properties replaced only by an event with a greater order key (stored beside `<prop>_key`)."""
CARRIED_RUN_PROPS: dict[str, tuple[str, ...]] = {"error": ("traceback",), "labels": ("annotations",)}
"""Properties that move with a keyed one (a failure's traceback with its message, the annotations with
the labels: one facet sends the whole of both), never alone."""


_KEYED_COLUMNS = tuple((col, f"{col}_key", CARRIED_RUN_PROPS.get(col, ())) for col in KEYED_RUN_PROPS)
"""Each keyed property, the name of its key, the properties it carries: built once, not per event."""


def run_row(f: RunFacts) -> dict[str, Any]:
    """The run's columns/properties as both stores write them."""
    row: dict[str, Any] = {
        "run_id": f.run_id,
        "namespace": f.namespace,
        "job_name": f.job_name,
        "code_hash": f.code_hash,
        "entrypoint": f.entrypoint,
        "state": f.state.value,
        "state_key": f.state_key,
        "started_at": f.event_time,
        "last_event_at": f.event_time,
        "ended_at": f.ended_at,
        "known_at": f.known_at,
        "ended_known_at": f.known_at if f.ended_at is not None else None,
        "has_start": int(f.has_start),
        "declared_events": f.declared_events,
        "parent_run_id": f.parent_run_id,
        "cached_from": f.cached_from,
    }
    for col, key, carried in _KEYED_COLUMNS:
        value = getattr(f, col)
        row[col] = value
        row[key] = None if value is None else f.order_key
        for c in carried:
            row[c] = getattr(f, c)
    return row


def max_nn(a: Any, b: Any) -> Any:
    """The greater of two values, NULL (None) losing to any value (the stores' MAX of non-NULL)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def min_nn(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def fold_run(old: dict[str, Any], f: RunFacts) -> None:
    """`old` (a `run_row` of the same run) absorbs one more event's facts with the rules both stores
    apply against what they hold, so a batch can send one row per run: read from `f` directly, not
    from a row built per event."""
    state_key, known_at, when = f.state_key, f.known_at, f.event_time
    ended_known_at = known_at if f.ended_at is not None else None
    if state_key > old["state_key"]:
        old["state"], old["ended_at"], old["state_key"] = f.state.value, f.ended_at, state_key
        old["ended_known_at"] = ended_known_at
    elif state_key == old["state_key"]:
        old["ended_known_at"] = min_nn(old["ended_known_at"], ended_known_at)
    if known_at < old["known_at"]:
        old["known_at"] = known_at
    if f.has_start:
        old["has_start"] = 1
    old["declared_events"] = max_nn(old["declared_events"], f.declared_events)
    if when < old["started_at"] or (when == old["started_at"] and f.job_name < old["job_name"]):
        old["job_name"] = f.job_name  # the job of the run's earliest event, whatever arrived first
    if when < old["started_at"]:
        old["started_at"] = when
    if when > old["last_event_at"]:
        old["last_event_at"] = when
    old["code_hash"] = max_nn(old["code_hash"], f.code_hash)
    old["entrypoint"] = max_nn(old["entrypoint"], f.entrypoint)
    old["parent_run_id"] = max_nn(old["parent_run_id"], f.parent_run_id)
    old["cached_from"] = max_nn(old["cached_from"], f.cached_from)
    order_key = f.order_key
    for prop, key, carried in _KEYED_COLUMNS:
        value = getattr(f, prop)
        if value is not None and order_key > (old[key] or ""):
            old[prop], old[key] = value, order_key
            for p in carried:
                old[p] = getattr(f, p)
