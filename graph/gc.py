"""`provgraph gc`: which artifact-store objects nothing live references, and removing them.

Referenced is read from the event log itself (every event ever admitted), so nothing the graph
dropped or never projected is forgotten: a `store://` version (input or output) counts unless a
tombstone deletes that version, its artifact or its project; every other digest an event names
(code snapshots, logs, input snapshots, reproductions) counts unless the event's run is deleted.
Tag and deletion runs own no bytes. Objects younger than `min_age` are kept: their run may still be
uploading before it reports them (outputs are stored before the event that names them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from provgraph.events.admission import store_project
from provgraph.events.artifacts import ArtifactStore, StoredObject
from provgraph.events.facets.tag_run import TAG_JOB
from provgraph.events.facets.tombstone_run import DELETE_JOB
from provgraph.events.model import RunEvent
from provgraph.graph.tombstones import Deleted

DIGEST_TEXT = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass
class GcReport:
    removed: list[StoredObject] = field(default_factory=list)
    kept: int = 0
    """Objects still referenced (or too young to judge)."""
    debris: int = 0
    """Temporary files of uploads that never finished, removed (older than the minimum age)."""

    @property
    def freed(self) -> int:
        return sum(o.size for o in self.removed)


def referenced(events: Iterable[RunEvent], gone: Deleted) -> set[str]:
    """The digests live objects reference (see the module docstring)."""
    found: set[str] = set()
    for e in events:
        if e.job.name in (TAG_JOB, DELETE_JOB):
            continue
        at = e.event_time  # what a deletion covers is what existed before it: later events are live
        for d in (*e.inputs, *e.outputs):
            if store_project(d.namespace) is None or not gone.version(d.namespace, d.name, d.version, at):
                found.add(d.version)
        if not gone.run(e.run.run_id, e.job.namespace, at):
            body = e.model_dump(mode="json", by_alias=True, exclude={"inputs", "outputs"})
            found.update(DIGEST_TEXT.findall(json.dumps(body)))
    return found


def collect(
    store: ArtifactStore,
    live: set[str],
    *,
    dry_run: bool = False,
    min_age: timedelta = timedelta(hours=1),
    now: datetime | None = None,
) -> GcReport:
    """Remove (or with `dry_run` only list) the objects not in `live` and older than `min_age`."""
    cutoff = (now or datetime.now(UTC)) - min_age
    report = GcReport()
    for obj in store.objects():
        young = obj.modified is None or obj.modified > cutoff
        if obj.digest in live or young:
            report.kept += 1
            continue
        if not dry_run:
            # asked again just before: a run that stored these bytes since the listing touched them
            # (`ArtifactStore._holds`), and its event may be newer than the `live` set
            again = store.modified(obj.digest)
            if again is None:  # removed meanwhile (another gc)
                continue
            if again > cutoff:
                report.kept += 1
                continue
            store.remove(obj.digest)
        report.removed.append(obj)
    for tmp in store.stale_uploads(cutoff):  # a copy a killed process left half done
        if not dry_run:
            tmp.unlink(missing_ok=True)
        report.debris += 1
    return report
