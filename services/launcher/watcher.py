"""Follows the launcher's Jobs and reports the runs whose pod could not: FAIL when the Job failed,
ABORT when it was deleted before it finished. A Job that completes is left alone: its pod reported.

One thread per watched namespace (or one for all): list the Jobs (reconciling each), then watch from
the list's resourceVersion; a watch that ends is resumed from the last resourceVersion seen, a
`410 Gone` (history compacted) or a broken stream leads to a fresh list. Every `RESYNC_S` the list
is redone anyway, so a report that failed once is retried.

No state outside Kubernetes and Kafka: what has been reported is an annotation on the Job
(`provgraph.dev/reported`), and the launcher's finalizer (`provgraph.dev/launcher`, see
`settings.k8s_job_finalizer`) keeps a deleted Job visible until its ABORT is sent, so a deletion
while the launcher is down is reported when it is back. Reports are idempotent anyway (stable
event ids and times, see `reports.py`), so two launchers, or a crash between the event and the
annotation, only repeat an event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from provgraph.events.model import EventType
from provgraph.events.transport.base import Transport
from provgraph.services.launcher.jobs import ANNOTATION_REPORTED, FINALIZER, RunIdentity
from provgraph.services.launcher.kube import Gone, JobRefused, Kube, KubeUnavailable
from provgraph.services.launcher.reports import (
    abort_message,
    condition,
    failure_message,
    finished,
    launcher_event,
    parse_time,
)

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 240
"""Server-side duration of one watch request; it is then resumed from its last resourceVersion."""
RESYNC_S = 600.0
"""Full re-list at least this often."""
RETRY_PAUSE_S = 2.0
"""Pause after the API server failed, before listing again (doubling up to `RETRY_MAX_S`)."""
RETRY_MAX_S = 30.0
SENT_MEMORY = 10_000
"""Recent reports remembered to skip repeats (see `JobReconciler`)."""


def _escape(key: str) -> str:
    """A JSON-pointer path segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


class JobReconciler:
    """Decides, for one observed state of a Job, what to report and to patch. Thread-safe.

    Events already queued in a watch stream still show a Job as unreported after its report was
    sent (the annotation arrives with a later event); `_sent` remembers recent reports so those
    do not repeat them. It is only an optimisation: losing it (a restart) at worst repeats an event.
    """

    def __init__(self, kube: Kube, transport: Transport) -> None:
        self.kube = kube
        self.transport = transport
        self._sent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def _already_sent(self, uid: str, report: str) -> bool:
        with self._lock:
            return (uid, report) in self._sent

    def _sent_now(self, uid: str, report: str) -> None:
        with self._lock:
            self._sent[(uid, report)] = None
            while len(self._sent) > SENT_MEMORY:
                self._sent.popitem(last=False)

    def reconcile(self, job: dict[str, Any], *, deleted: bool = False) -> None:
        identity = RunIdentity.from_job(job)
        if identity is None:
            return
        meta = job["metadata"]
        annotations = meta.get("annotations") or {}
        reported = annotations.get(ANNOTATION_REPORTED)
        deleting = deleted or bool(meta.get("deletionTimestamp"))
        ours = FINALIZER in (meta.get("finalizers") or [])
        report: str | None = None

        uid = str(meta.get("uid"))
        failed = condition(job, "Failed")
        if reported is None and failed is not None:
            report = "FAIL"
            if not self._already_sent(uid, report):
                message = failure_message(job, self.kube.pods_of(job))
                when = parse_time(failed.get("lastTransitionTime"))
                self.transport.emit(launcher_event(identity, EventType.FAIL, "fail", message, when))
                self._sent_now(uid, report)
                log.info("run %s failed: %s", identity.run_id, message)
        elif reported is None and deleting and not finished(job):
            report = "ABORT"
            if not self._already_sent(uid, report):
                message = abort_message(job)
                when = parse_time(meta.get("deletionTimestamp"))
                self.transport.emit(launcher_event(identity, EventType.ABORT, "abort", message, when))
                self._sent_now(uid, report)
                log.info("run %s aborted: %s", identity.run_id, message)
        if deleted or (report is None and not (deleting and ours)):
            return
        ops: list[dict[str, Any]] = []
        if report is not None:
            if not annotations:
                ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
            ops.append({"op": "add", "path": f"/metadata/annotations/{_escape(ANNOTATION_REPORTED)}", "value": report})
        if deleting and ours:
            index = meta["finalizers"].index(FINALIZER)
            path = f"/metadata/finalizers/{index}"
            ops += [{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]
        try:
            self.kube.patch_job(meta["namespace"], meta["name"], ops)
        except JobRefused as exc:  # gone meanwhile, or the finalizers moved: the next event brings the new state
            log.debug("could not patch Job %s/%s: %s", meta["namespace"], meta["name"], exc)


class JobWatcher:
    """A thread following the launcher's Jobs in one namespace (`None`: all namespaces)."""

    def __init__(self, kube: Kube, reconciler: JobReconciler, namespace: str | None, label_selector: str) -> None:
        self.kube = kube
        self.reconciler = reconciler
        self.namespace = namespace
        self.selector = label_selector
        self._stopping = threading.Event()
        self._watch: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"provgraph-launcher-watch-{namespace or 'all'}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            watch = self._watch  # (re-read: the thread may have opened a new watch meanwhile)
            if watch is not None:
                watch.stop()  # shuts the socket down: the blocked read returns at once
            self._thread.join(0.2)

    @property
    def where(self) -> str:
        return self.namespace or "all namespaces"

    def _run(self) -> None:
        from kubernetes.watch import watch as k8s_watch

        new_watch: Any = k8s_watch.Watch  # untyped

        pause = RETRY_PAUSE_S
        while not self._stopping.is_set():
            try:
                version = self._list()
                listed = time.monotonic()
                while not self._stopping.is_set() and time.monotonic() - listed < RESYNC_S:
                    self._watch = new_watch(return_type=object)  # events keep the Job as a dict
                    version = self._follow(version)
                pause = RETRY_PAUSE_S
            except Gone:
                log.info("watch of Jobs in %s expired (410 Gone); listing again", self.where)
            except Exception as exc:  # noqa: BLE001 - the watch thread logs, pauses and retries, never dies
                if self._stopping.is_set():
                    break
                level = logging.WARNING if isinstance(exc, KubeUnavailable) else logging.ERROR
                log.log(level, "following Jobs in %s failed, retrying in %.0fs: %s", self.where, pause, exc)
                self._stopping.wait(pause)
                pause = min(pause * 2, RETRY_MAX_S)
            finally:
                self._watch = None

    def _list(self) -> str:
        jobs, version = self.kube.list_jobs(self.namespace, self.selector)
        for job in jobs:
            self._reconcile(job, deleted=False)
        return version

    def _follow(self, version: str) -> str:
        """Watch from `version` until the server ends the request; the last resourceVersion seen."""
        for event in self.kube.watch_jobs(self._watch, self.namespace, self.selector, version, WATCH_TIMEOUT_S):
            obj = event.get("raw_object") or {}
            version = (obj.get("metadata") or {}).get("resourceVersion") or version
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                self._reconcile(obj, deleted=event["type"] == "DELETED")
            if self._stopping.is_set():
                break
        return version

    def _reconcile(self, job: dict[str, Any], *, deleted: bool) -> None:
        try:
            self.reconciler.reconcile(job, deleted=deleted)
        except KubeUnavailable:
            raise
        except Exception:  # one odd Job must not stop the watch; the next resync tries it again
            meta = job.get("metadata") or {}
            log.exception("could not reconcile Job %s/%s", meta.get("namespace"), meta.get("name"))
