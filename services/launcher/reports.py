"""The launcher's own events: a run's FAIL or ABORT when its pod could not report it.

Each is an ordinary RunEvent with `provgraph_event` {eventId = "<runId>:launcher:<what>", seq 0}:

- seq 0 sorts before every event the pod emits (its START is seq 1), and the projection lets the
  greatest terminal event win, so a terminal event the pod did send (its own FAIL with a traceback,
  or COMPLETE) beats the launcher's; the launcher's FAIL still beats the pod's START/RUNNING.
- `<what>` is `rejected` (the request never became a Job), `fail` (the Job failed) or `abort` (the
  Job was deleted before it finished). The id is stable and the event time is taken from
  Kubernetes (the condition's or the deletion's timestamp), so reporting the same fact twice, e.g.
  after a restart, sends the same event again and changes nothing in the graph.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from provgraph.events.facets import ErrorMessageRunFacet, EventRunFacet
from provgraph.events.model import EventType, Job, Run, RunEvent, RunFacets
from provgraph.services.launcher.jobs import CONTAINER, RunIdentity

MAX_POD_DETAILS = 3


def launcher_event(
    identity: RunIdentity, kind: EventType, what: str, message: str, when: datetime | None = None
) -> RunEvent:
    """A FAIL/ABORT for `identity`'s run, from the launcher (see the module docstring)."""
    facets = RunFacets(
        event=EventRunFacet(event_id=f"{identity.run_id}:launcher:{what}", seq=0),
        error_message=ErrorMessageRunFacet(message=message),
    )
    return RunEvent(
        event_type=kind,
        event_time=when or datetime.now(UTC),
        run=Run(run_id=identity.run_id, facets=facets),
        job=Job(namespace=identity.project, name=identity.job),
    )


def parse_time(value: str | None) -> datetime | None:
    """A Kubernetes timestamp (RFC 3339, `Z`) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The Job's condition of type `kind` when its status is True."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def finished(job: dict[str, Any]) -> bool:
    """Complete or Failed, or sure to complete (SuccessCriteriaMet).

    Not `FailureTarget`: the Job controller sets it when it decides to fail the Job, then `Failed`
    once the pods are gone, but a Job deleted meanwhile (its namespace deleted, say: the pods go
    first) never gets `Failed`; the run was aborted, and is reported so.
    """
    return any(condition(job, k) for k in ("Complete", "Failed", "SuccessCriteriaMet"))


def _pod_details(pod: dict[str, Any]) -> list[str]:
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    details = []
    if status.get("reason"):  # Evicted, DeadlineExceeded, …
        details.append(f"pod {name}: {status['reason']}" + (f": {status['message']}" if status.get("message") else ""))
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state = cs.get("state") or {}
        who = f"pod {name} container {cs.get('name', CONTAINER)}"
        if "terminated" in state:
            t = state["terminated"]
            if t.get("exitCode", 0) == 0 and t.get("reason") in (None, "Completed"):
                continue
            text = f"{who} terminated: {t.get('reason') or 'Error'} (exit code {t.get('exitCode')})"
            details.append(text + (f": {t['message']}" if t.get("message") else ""))
        elif "waiting" in state and state["waiting"].get("reason") not in (None, "ContainerCreating"):
            w = state["waiting"]
            details.append(f"{who} waiting: {w['reason']}" + (f": {w['message']}" if w.get("message") else ""))
    return details


def failure_message(job: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    """Why the Job failed, in one line: the Job's condition, then what its pods say (OOMKilled, ImagePullBackOff …)."""
    meta = job["metadata"]
    cond = condition(job, "Failed") or condition(job, "FailureTarget") or {}
    reason = cond.get("reason") or "Failed"
    text = f"Kubernetes Job {meta['namespace']}/{meta['name']} failed: {reason}"
    if cond.get("message"):
        text += f" ({cond['message']})"
    details = [d for pod in reversed(pods) for d in _pod_details(pod)][:MAX_POD_DETAILS]
    return text + ("; " + "; ".join(details) if details else "")


def abort_message(job: dict[str, Any]) -> str:
    meta = job["metadata"]
    return f"Kubernetes Job {meta['namespace']}/{meta['name']} was deleted before it finished"
