"""Builds a run's events in order (START, RUNNING…, COMPLETE/FAIL/ABORT) and hands them to a transport.

Every event carries `provgraph_event` {eventId = "<runId>:<seq>", seq}: the id is stable, so a
re-sent event is recognised as a duplicate; the sequence orders the run's events anywhere.
Metric points are buffered and sent with the next event (or every `METRIC_BATCH` points), so a
training loop logging thousands of steps does not send thousands of events.

Events emitted back to back with no user code running between them (what a run records after its
handler returned, up to its terminal event) can be held (`hold`) and go to the transport with the
terminal event in one `emit_many` (the embedded log: one transaction), so they are committed before
`provgraph.run` returns, like every event, with one commit instead of one each.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from provgraph.events.errors import ContractError
from provgraph.events.facets import (
    CachedFromRunFacet,
    CodeJobFacet,
    ErrorMessageRunFacet,
    EventRunFacet,
    JobRef,
    LabelsRunFacet,
    LogsRunFacet,
    MetricPoint,
    MetricsRunFacet,
    ParamsRunFacet,
    ParentRunFacet,
    ReproducesRunFacet,
    RequestedRunFacet,
    ResultsRunFacet,
    RunRef,
    RuntimeRunFacet,
)
from provgraph.events.facets.standard import RootRef
from provgraph.events.facets.values import storable_at
from provgraph.events.model import CHECKED, KNOWN_JOB, Dataset, EventType, Job, JobFacets, Run, RunEvent, RunFacets
from provgraph.events.serde import refusal
from provgraph.events.transport.base import Transport

METRIC_BATCH = 500


def format_traceback(error: BaseException) -> str:
    """The traceback a run records for `error`, as Python would print it, without provgraph's own
    frames above the handler (all of them when the handler is provgraph's too)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None and _ours(tb.tb_frame.f_globals.get("__name__")):
        tb = tb.tb_next
    if tb is not None and _ours(tb.tb_frame.f_globals.get("__name__")):
        tb = error.__traceback__
    return "".join(traceback.format_exception(type(error), error, tb))


def _ours(module: object) -> bool:
    return isinstance(module, str) and (module == "provgraph" or module.startswith("provgraph."))


class HeldEventFailed(Exception):
    """A held event was refused when sent: its own failure (`error`), not the terminal event's, which
    was not sent. Not retried as the terminal's failure: the run fails with `error`, as it would have
    failed at that event without holding."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _walked(facets: RunFacets, own: EventRunFacet, parent: ParentRunFacet | None, datasets: Sequence[Dataset]) -> bool:
    """True when the parts of an event the emitter was given pass the storable walk at their depth
    in the event, so the whole-event walk would pass too: what it would add is the job (known by
    then), the run id and parent (`_own_ok`), `own` (the run id, a colon and validated integers),
    the event type, time and defaults (constants). Datasets the validation would copy are not
    known to be these objects: False, and the whole event is walked."""
    if facets.__pydantic_extra__:
        return False
    for value in facets.__dict__.values():
        if value is not None and value is not own and value is not parent and not storable_at(value, 3):
            return False
    return all(isinstance(d, Dataset) and storable_at(d, 2) for d in datasets)


class RunEmitter:
    def __init__(
        self,
        transport: Transport,
        *,
        run_id: str,
        namespace: str,
        job_name: str,
        code: CodeJobFacet | None,
        parent: tuple[str, str, str] | None = None,
        root: tuple[str, str, str] | None = None,
        sent: int = 0,
    ) -> None:
        """`sent`: events of this run other processes sent already (a KFP pipeline run's tasks)."""
        self.transport = transport
        self.run_id = run_id
        self._job = Job(namespace=namespace, name=job_name, facets=JobFacets(code=code))
        self._job_known = {KNOWN_JOB: self._job} if code is None or not code.model_extra else None
        self._context: dict[str, Job] | None = None
        """The validation context of the next event: `_job_known` once an event with the job was accepted."""
        self._checked: dict[str, Any] | None = None if self._job_known is None else {**self._job_known, CHECKED: True}
        """`_context` for an event whose parts `_walked` passed: no whole-event walk."""
        self._parent = None
        if parent is not None:
            p_run, p_ns, p_job = parent
            r_run, r_ns, r_job = root or parent
            self._parent = ParentRunFacet(
                run=RunRef(run_id=p_run),
                job=JobRef(namespace=p_ns, name=p_job),
                root=RootRef(run=RunRef(run_id=r_run), job=JobRef(namespace=r_ns, name=r_job)),
            )
        self._own_ok = storable_at(run_id, 0) and (self._parent is None or storable_at(self._parent, 3))
        """The run id (in every event, and in each event's own facet) and the parent facet pass the
        storable walk: checked once, both immutable."""
        self._seq = sent
        self._metrics: list[MetricPoint] = []
        self._lock = threading.Lock()
        self.finished: EventType | None = None
        self._key: str | None = None
        """The root run id the events are keyed by (known from the first event)."""
        self.logs: Callable[[], LogsRunFacet | None] | None = None
        """The run's output capture (`_logs.LogCapture.take`): each event carries the output since the last."""
        self._held: list[RunEvent] | None = None
        """Events held for the terminal event (`hold`); None when not holding."""

    def hold(self) -> None:
        """Hold the events emitted from now on until the terminal event, and send them with it in one
        `emit_many`. Only for events no user code runs between: the caller must end with `complete` or
        `fail` (or a refused event, which sends what was held at once)."""
        with self._lock:
            if self._held is None:
                self._held = []

    def _emit(
        self,
        kind: EventType,
        facets: dict[str, Any],
        inputs: Sequence[Dataset] = (),
        outputs: Sequence[Dataset] = (),
        *,
        seq: int | None = None,
    ) -> RunEvent:
        with self._lock:
            own = seq is None
            if seq is None:
                self._seq += 1
                seq = self._seq
            if self._metrics:
                facets["metrics"] = MetricsRunFacet(metrics=self._metrics)
                self._metrics = []
            # The run's own last event says how many it sent (a supervisor reporting for it cannot know).
            total = seq if own and kind.is_terminal else None
            if self.logs is not None and (logs := self.logs()) is not None:
                facets["logs"] = logs
            facets["event"] = mine = EventRunFacet(event_id=f"{self.run_id}:{seq}", seq=seq, total=total)
            if self._parent is not None:
                facets["parent"] = self._parent
            context: dict[str, Any] | None = self._context
            try:
                run_facets = RunFacets(**facets)
                if (
                    context is not None
                    and self._own_ok
                    and _walked(run_facets, mine, self._parent, (*inputs, *outputs))
                ):
                    context = self._checked
                event = RunEvent.model_validate(
                    {
                        "event_type": kind,
                        "event_time": datetime.now(UTC),
                        "run": Run(run_id=self.run_id, facets=run_facets),
                        "job": self._job,
                        "inputs": list(inputs),
                        "outputs": list(outputs),
                    },
                    context=context,
                )
            except ValidationError as exc:  # e.g. NaN in params: refused here, before any transport sees it
                held, self._held = self._held, None
                refused: ContractError | None = refusal(exc, f"{kind.value} event")
                cause: ValidationError | None = exc
            else:
                refused, cause, held = None, None, self._held
                if held is not None:
                    if kind.is_terminal:
                        self._held = None
                    else:
                        held.append(event)  # sent with the terminal event
        if refused is not None:
            if held:  # what was held is sent before the refusal is raised
                self._send(held, None)
            raise refused from cause
        self._context = self._job_known  # the job was walked once; frozen, holding only strings, it cannot change
        self._key = event.root_run_id
        if held is None:
            self.transport.emit(event)
        elif kind.is_terminal:
            self._send(held, event)
        return event

    def _send(self, held: list[RunEvent], last: RunEvent | None) -> None:
        """Held events (and the terminal one, `last`) in one `emit_many`. If the transport refuses them
        together, they are sent one at a time, as without holding: a held event refused on its own
        raises `HeldEventFailed` (and what follows it is not sent); the terminal event's own refusal
        is raised as it is."""
        if not held and last is not None:
            self.transport.emit(last)
            return
        try:
            self.transport.emit_many([*held, last] if last is not None else held)
            return
        except Exception:  # noqa: BLE001 - sent one at a time below, each raising its own error
            pass
        for event in held:
            try:
                self.transport.emit(event)
            except Exception as exc:
                raise HeldEventFailed(exc) from exc
        if last is not None:
            self.transport.emit(last)

    def position(self) -> str | None:
        """The consistency token of the run's last event (`events/consistency.py`), None when unknown:
        nothing sent yet, or the event waits in the spool."""
        position = None if self._key is None else self.transport.position(self._key)
        return None if position is None else str(position)

    def requested(self, params: dict[str, Any], runtime: RuntimeRunFacet, requested: RequestedRunFacet) -> RunEvent:
        """The OTHER event a remote submission emits at once; sequence 0, so the run's own START wins."""
        facets = {"params": ParamsRunFacet(params=params), "runtime": runtime, "requested": requested}
        return self._emit(EventType.OTHER, facets, seq=0)

    def start(
        self,
        params: dict[str, Any],
        runtime: RuntimeRunFacet,
        reproduces: ReproducesRunFacet | None = None,
        cached_from: CachedFromRunFacet | None = None,
    ) -> RunEvent:
        facets: dict[str, Any] = {"params": ParamsRunFacet(params=params), "runtime": runtime}
        if reproduces is not None:
            facets["reproduces"] = reproduces
        if cached_from is not None:
            facets["cached_from"] = cached_from
        return self._emit(EventType.START, facets)

    def running(
        self, inputs: Sequence[Dataset] = (), outputs: Sequence[Dataset] = (), results: dict[str, Any] | None = None
    ) -> RunEvent:
        """A RUNNING event; with `results`, the results logged so far (a later event's replace them)."""
        facets: dict[str, Any] = {"results": ResultsRunFacet(results=results)} if results else {}
        return self._emit(EventType.RUNNING, facets, inputs, outputs)

    def labels(self, labels: dict[str, str], annotations: dict[str, str]) -> RunEvent:
        """The run's labels and annotations as they are now (the latest event's win)."""
        return self._emit(EventType.RUNNING, {"labels": LabelsRunFacet(labels=labels, annotations=annotations)})

    def metric(self, key: str, value: float, step: int) -> None:
        try:
            point = MetricPoint(key=key, value=value, step=step)
        except ValidationError as exc:
            raise refusal(exc, f"metric point {key!r}") from exc
        with self._lock:
            self._metrics.append(point)
            full = len(self._metrics) >= METRIC_BATCH
        if full:
            self._emit(EventType.RUNNING, {})

    def complete(self, results: dict[str, Any], reproduces: ReproducesRunFacet | None = None) -> RunEvent:
        facets: dict[str, Any] = {"results": ResultsRunFacet(results=results)}
        if reproduces is not None:
            facets["reproduces"] = reproduces
        self.finished = EventType.COMPLETE
        return self._emit(EventType.COMPLETE, facets)

    def fail(
        self,
        error: BaseException | str,
        kind: EventType = EventType.FAIL,
        reproduces: ReproducesRunFacet | None = None,
        *,
        message: str | None = None,
        seq: int | None = None,
        results: dict[str, Any] | None = None,
    ) -> RunEvent:
        """FAIL/ABORT with `error`'s text, or `message` when given, and its traceback; `seq` overrides
        the sequence (a supervisor reporting a run whose process died). `results` logged before the
        failure are kept with it."""
        if isinstance(error, BaseException):
            message = message or f"{type(error).__name__}: {error}"
            trace: str | None = format_traceback(error)
        else:
            message, trace = message or error, None
        facets: dict[str, Any] = {"error_message": ErrorMessageRunFacet(message=message, stack_trace=trace)}
        if results:  # what the run logged before it failed (a pipeline run: its steps' states)
            facets["results"] = ResultsRunFacet(results=results)
        if reproduces is not None:
            facets["reproduces"] = reproduces
        self.finished = kind
        return self._emit(kind, facets, seq=seq)
