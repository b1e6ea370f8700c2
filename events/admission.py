"""Who may write what: the rules every layer that accepts events applies, written once.

- **A run belongs to one project**: the job namespace of its first accepted event. An event for
  that run id with another job namespace is `Forbidden` (it would overwrite another project's run).
- **A dataset's id names it alone**: no dataset's `<namespace>:<name>` may read as one in a project's
  artifact store that it is not (`ContractError`; `check_ids`).
- **A logged artifact is written only by its own project**: an output in `store://<p>` needs job
  namespace `p` (`Forbidden`). External datasets (any other namespace) are shared by every project.
- **A `store://` version is a content hash**, `sha256:` + 64 lowercase hex, for inputs and outputs
  alike (`ContractError`); and an output's object exists in the artifact store (`ContractError`,
  checked by `KnownObjects` where the store is reachable: the API and the Kafka projector).
- **Only an artifact's project may tag it**: a run carrying the `provgraph_tag` facet is a run of
  `TAG_JOB` (and every `TAG_JOB` run carries one) in the project of the tagged `store://` namespace
  (`Forbidden`); its version is a content hash, its alias matches `ALIAS` and is not `latest`, it
  names no inputs or outputs, and its `provgraph_params` are the facet's `as_params()` (the form both
  stores project) (`ContractError`); the version's object exists (`KnownObjects`).
- **Only an object's project may delete it**: a run carrying the `provgraph_tombstone` facet is a run
  of `DELETE_JOB` (and every `DELETE_JOB` run carries one) in the project of what it deletes: the
  project itself, the `store://` namespace of an artifact, the owner of a run (`Forbidden`, checked
  against the known owners passed to `admit`, so callers pass `owner_ids(events)`); it names no
  inputs or outputs and its `provgraph_params` are the facet's `as_params()` (`ContractError`).
  `graph/tombstones.py` applies the same rule when reading, so a tombstone admitted before its
  target run was known still cannot hide another project's run.

Callers: the embedded event log (`events/transport/sqlite.py`, atomically with its run-owner
table), the API (`api/ingest.py`, which adds the token's projects), both graph stores (through
`graph.projection.admit`) and the Kafka projector (`services/projector/handlers.py`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from provgraph.events.errors import ContractError, Forbidden
from provgraph.events.id_text import split_namespace
from provgraph.events.states import ALIAS, ARTIFACT_TARGET, DELETE_JOB, TAG_JOB

if TYPE_CHECKING:
    from provgraph.events.model import Dataset, RunEvent

STORE_PREFIX = "store://"
CONTENT_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def store_project(namespace: str) -> str | None:
    """The project of a logged-artifact namespace (`store://<project>`), None for external data."""
    return namespace[len(STORE_PREFIX) :] if namespace.startswith(STORE_PREFIX) else None


def store_datasets(event: RunEvent) -> Iterator[tuple[str, Dataset, str]]:
    """("input" | "output", dataset, project) for every logged artifact the event names."""
    for role, datasets in (("input", event.inputs), ("output", event.outputs)):
        for d in datasets:
            project = store_project(d.namespace)
            if project is not None:
                yield role, d, project


def owner_conflict(run_id: str, owner: str, namespace: str) -> str:
    return f"run {run_id!r} belongs to project {owner!r}; an event with job namespace {namespace!r} may not write to it"


def check_datasets(event: RunEvent) -> None:
    """The rules that need nothing but the event: ids that read back, well-formed versions, outputs in
    the run's own project, tags."""
    check_ids(event)
    namespace = event.job.namespace
    for role, d, project in store_datasets(event):
        if not CONTENT_HASH.fullmatch(d.version):
            raise ContractError(
                f"{role} {d.namespace}/{d.name}: version {d.version!r} is not a content hash"
                " (sha256: followed by 64 lowercase hex digits)"
            )
        if role == "output" and project != namespace:
            raise Forbidden(
                f"run {event.run.run_id!r} of project {namespace!r} may not write {d.namespace}/{d.name}:"
                f" a run writes logged artifacts only in its own project ({STORE_PREFIX}{namespace})"
            )
    check_tag(event)
    check_tombstone(event)


def check_ids(event: RunEvent) -> None:
    """No dataset may take the id of one in a project's artifact store: `<namespace>:<name>` that
    starts `store://` must read back as its own namespace (`events.id_text`), else namespace `store`
    with name `//p:model` would be project p's artifact `model` to both stores (`ContractError`)."""
    for role, datasets in (("input", event.inputs), ("output", event.outputs)):
        for d in datasets:
            if not d.namespace.startswith("store"):  # `<ns>:<name>` can start `store://` only then
                continue
            text = f"{d.namespace}:{d.name}"
            if text.startswith(STORE_PREFIX) and (read := split_namespace(text)) and read[0] != d.namespace:
                raise ContractError(
                    f"{role} {d.namespace}/{d.name}: its id would read as {read[0]}/{read[1]}, a dataset of a"
                    f" project's artifact store ({STORE_PREFIX}<project>); name it without that prefix"
                )


def check_tag(event: RunEvent) -> None:
    """The tag rules that need nothing but the event (see the module docstring)."""
    tag, namespace = event.run.facets.tag, event.job.namespace
    if tag is None:
        if event.job.name == TAG_JOB:
            raise ContractError(f"a run of job {TAG_JOB!r} carries the provgraph_tag facet")
        return
    if event.job.name != TAG_JOB:
        raise ContractError(f"the provgraph_tag facet belongs to runs of job {TAG_JOB!r}, not {event.job.name!r}")
    if store_project(tag.namespace) != namespace:
        raise Forbidden(
            f"run {event.run.run_id!r} of project {namespace!r} may not tag {tag.namespace}/{tag.name}:"
            f" only the artifact's project ({STORE_PREFIX}{namespace}) tags it"
        )
    if not CONTENT_HASH.fullmatch(tag.version):
        raise ContractError(f"tag of {tag.namespace}/{tag.name}: version {tag.version!r} is not a content hash")
    if not ALIAS.fullmatch(tag.alias) or tag.alias == "latest":
        raise ContractError(
            f"alias {tag.alias!r}: lower-case letters, digits, '_', '.', '-', starting with a letter, at most"
            " 63 characters, and not 'latest'"
        )
    if event.inputs or event.outputs:
        raise ContractError("a tag run reads and writes no datasets")
    params = event.run.facets.params
    if params is None or params.params != tag.as_params():
        raise ContractError(f"a tag run's provgraph_params are its tag: {tag.as_params()}")


def check_tombstone(event: RunEvent) -> None:
    """The deletion rules that need nothing but the event (a run target's owner: `admit`)."""
    tomb, namespace = event.run.facets.tombstone, event.job.namespace
    if tomb is None:
        if event.job.name == DELETE_JOB:
            raise ContractError(f"a run of job {DELETE_JOB!r} carries the provgraph_tombstone facet")
        return
    if event.job.name != DELETE_JOB:
        raise ContractError(
            f"the provgraph_tombstone facet belongs to runs of job {DELETE_JOB!r}, not {event.job.name!r}"
        )
    if tomb.kind == "project" and tomb.target != namespace:
        raise Forbidden(f"run {event.run.run_id!r} of project {namespace!r} may not delete project {tomb.target!r}")
    if tomb.kind == "artifact":
        found = ARTIFACT_TARGET.fullmatch(tomb.target)
        if found is None:
            raise ContractError(f"deleted artifact {tomb.target!r}: expected store://<project>/<key>[@sha256:…]")
        if found["project"] != namespace:
            raise Forbidden(
                f"run {event.run.run_id!r} of project {namespace!r} may not delete {tomb.target}:"
                f" only the artifact's project ({STORE_PREFIX}{found['project']}) deletes it"
            )
        if found["version"] is not None and not CONTENT_HASH.fullmatch(found["version"]):
            raise ContractError(f"deleted artifact {tomb.target!r}: the version is not a content hash")
    if event.inputs or event.outputs:
        raise ContractError("a deletion run reads and writes no datasets")
    params = event.run.facets.params
    if params is None or params.params != tomb.as_params():
        raise ContractError(f"a deletion run's provgraph_params are its tombstone: {tomb.as_params()}")


def owner_ids(events: Iterable[RunEvent]) -> list[str]:
    """The run ids whose owners `admit` needs: the events' runs and the runs their tombstones delete."""
    ids: list[str] = []
    for e in events:
        ids.append(e.run.run_id)
        tomb = e.run.facets.tombstone
        if tomb is not None and tomb.kind == "run":
            ids.append(tomb.target)
    return ids


def admit(events: Iterable[RunEvent], owners: Mapping[str, str]) -> dict[str, str]:
    """Check events in order against the runs' known `owners`; returns the owners this batch claims.

    The first event of an unknown run claims it for its job namespace, so a batch cannot claim one
    run for two projects either. Raises on the first refusal (nothing of the batch is admitted).
    """
    claimed: dict[str, str] = {}
    for event in events:
        check_datasets(event)
        run_id, namespace = event.run.run_id, event.job.namespace
        owner = owners.get(run_id) or claimed.setdefault(run_id, namespace)
        if owner != namespace:
            raise Forbidden(owner_conflict(run_id, owner, namespace))
        tomb = event.run.facets.tombstone
        target_owner = owners.get(tomb.target) or claimed.get(tomb.target) if tomb and tomb.kind == "run" else None
        if tomb is not None and target_owner not in (None, namespace):
            raise Forbidden(
                f"run {run_id!r} of project {namespace!r} may not delete run {tomb.target!r}"
                f" of project {target_owner!r}"
            )
    return {r: ns for r, ns in claimed.items() if r not in owners}


class ObjectStore(Protocol):
    url: str

    def exists(self, digest: str) -> bool: ...


class KnownObjects:
    """Existence of artifact-store objects, positive answers cached: content-addressed objects never
    change, so a version seen once stays valid. Misses are asked again (the upload may be under way)."""

    def __init__(self, store: ObjectStore, max_cached: int = 100_000) -> None:
        self.store = store
        self.max_cached = max_cached
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def exists(self, digest: str) -> bool:
        with self._lock:
            if digest in self._seen:
                return True
        if not self.store.exists(digest):
            return False
        with self._lock:
            if len(self._seen) >= self.max_cached:
                self._seen.clear()
            self._seen.add(digest)
        return True

    def check_outputs(self, event: RunEvent) -> None:
        """`ContractError` for a logged-artifact output or a tagged version not in the artifact store."""
        for role, d, _ in store_datasets(event):
            if role == "output" and not self.exists(d.version):
                raise ContractError(
                    f"output {d.namespace}/{d.name}@{d.version}: no such object in the artifact store"
                    f" {self.store.url}; store the bytes before reporting the output"
                )
        tag = event.run.facets.tag
        if tag is not None and not self.exists(tag.version):
            raise ContractError(f"tag of {tag.namespace}/{tag.name}: no version {tag.version} in the artifact store")
