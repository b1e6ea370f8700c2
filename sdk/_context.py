"""`Context`: what a handler receives to read parameters and inputs and to log what it produced.

Names follow MLRun's (`parameters`, `get_param`, `get_input`, `log_result`, `log_artifact`,
`log_dataset`, `log_model`) so MLRun handlers run with little or no change. Every output is
stored content-addressed and recorded as a WROTE of that exact version.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgraph._dataitem import DataItem, ProtectedFiles
from provgraph._emitter import RunEmitter
from provgraph._naming import StoreRef, is_store_uri, parse_store_uri
from provgraph.events.artifacts import ArtifactStore
from provgraph.events.errors import ConfigError, ContractError, NotFound, ProvgraphError
from provgraph.events.facets import ArtifactDatasetFacet, ArtifactKind, BindingFacet, DatasetVersionDatasetFacet
from provgraph.events.facets.values import storable_problem
from provgraph.events.model import Dataset, DatasetFacets

log = logging.getLogger("provgraph")


WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
"""Why storing bytes fails on the store's side (not a missing or unreadable source file)."""


class ArtifactWriteError(ProvgraphError, OSError):
    """Storing an output failed (disk full, file too large …); the message names the artifact."""


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@dataclass(frozen=True)
class Artifact:
    """A logged output: `uri` (store://project/key@sha256:…) pins it; pass it as another run's input."""

    key: str
    kind: ArtifactKind
    digest: str
    size: int
    uri: str
    physical_url: str


def _dataset(namespace: str, name: str, digest: str, binding: str, *, output: bool, **artifact: Any) -> Dataset:
    bind = {BindingFacet.FACET_NAME: BindingFacet(name=binding).model_dump(mode="json", by_alias=True)}
    return Dataset(
        namespace=namespace,
        name=name,
        facets=DatasetFacets(
            version=DatasetVersionDatasetFacet(dataset_version=digest), artifact=ArtifactDatasetFacet(**artifact)
        ),
        input_facets=None if output else bind,
        output_facets=bind if output else None,
    )


class Context:
    def __init__(
        self,
        *,
        run_id: str,
        project: str,
        params: dict[str, Any],
        inputs: dict[str, str],
        emitter: RunEmitter,
        artifacts: ArtifactStore,
        s3_endpoint_url: str | None = None,
        latest_version: Any = None,
        snapshot_inputs_max_bytes: int = 0,
        input_snapshots: dict[str, str] | None = None,
        input_versions: dict[str, str] | None = None,
        protected: ProtectedFiles | None = None,
    ) -> None:
        self.run_id = run_id
        self.project = project
        self.parameters: dict[str, Any] = dict(params)
        self.results: dict[str, Any] = {}
        self.outputs: dict[str, Artifact] = {}
        self.metrics: dict[str, float] = {}
        """Latest value of each metric (by step), as the graph will show it."""
        self._metric_steps: dict[str, int] = {}
        self._input_snapshots = dict(input_snapshots or {})
        self._input_versions = dict(input_versions or {})
        self._protected = protected
        self.logger = log
        self._emitter = emitter
        self._artifacts = artifacts
        self._s3 = s3_endpoint_url
        self._latest_version = latest_version
        self._snapshot_limit = snapshot_inputs_max_bytes
        self._input_urls = dict(inputs)
        self._items: dict[str, DataItem] = {}

    def __repr__(self) -> str:
        return f"Context(run_id={self.run_id!r}, project={self.project!r})"

    # -- parameters and inputs ------------------------------------------------------------------

    def get_param(self, key: str, default: Any = None) -> Any:
        return self.parameters.get(key, default)

    @property
    def inputs(self) -> dict[str, DataItem]:
        return {key: self.get_input(key) for key in self._input_urls}

    def get_input(self, key: str, url: str | None = None) -> DataItem:
        """The input named `key` (or `url`, read under that name); reading it is recorded."""
        if key in self._items and url is None:
            return self._items[key]
        if url is None:
            if key not in self._input_urls:
                known = ", ".join(sorted(self._input_urls)) or "none"
                raise ConfigError(f"no input named {key!r} (inputs: {known})")
            url = self._input_urls[key]
        self._input_urls.setdefault(key, url)
        physical, expected = self._physical(url, self._input_snapshots.get(key))
        item = DataItem(
            key,
            url,
            physical_url=physical,
            s3_endpoint_url=self._s3,
            recorder=self._record_read,
            expected=expected or self._input_versions.get(key),
            protected=self._protected,
        )
        self._items[key] = item
        return item

    def _physical(self, url: str, snapshot: str | None = None) -> tuple[str, str | None]:
        """Where to read `url` from (itself, its artifact-store object, or a pinned snapshot of it),
        and the content hash those bytes must have when they are pinned."""
        if snapshot is not None:
            if not self._artifacts.exists(snapshot):
                raise NotFound(f"snapshot {snapshot} of {url} is not in the artifact store {self._artifacts.url}")
            return self._artifacts.uri(snapshot), snapshot
        if not is_store_uri(url):
            return url, None
        ref = parse_store_uri(url)
        version = ref.version or self._resolve_latest(ref)
        if not self._artifacts.exists(version):
            raise NotFound(f"artifact {url} ({version}) is not in the artifact store {self._artifacts.url}")
        return self._artifacts.uri(version), version

    def _resolve_latest(self, ref: StoreRef) -> str:
        found = self._latest_version(ref.namespace, ref.key) if self._latest_version else None
        if found is None:
            raise NotFound(f"no artifact {ref.key!r} in project {ref.project!r}")
        return str(found)

    def _record_read(self, item: DataItem) -> None:
        snapshot_uri = None
        if 0 < item.size <= self._snapshot_limit:
            digest, _ = self._artifacts.put_bytes(_read(item))
            snapshot_uri = self._artifacts.uri(digest)
        self._emitter.running(
            inputs=[
                _dataset(
                    item.namespace,
                    item.name,
                    item.hash,
                    item.key,
                    output=False,
                    kind="data",
                    size=item.size,
                    uri=snapshot_uri,
                )
            ]
        )

    def record_untouched_inputs(self) -> None:
        """Record inputs the handler never read, so the run's provenance lists all it was given."""
        for key in list(self._input_urls):
            try:
                self.get_input(key).hash  # noqa: B018 (hashing records the read)
            except (NotFound, ConfigError) as exc:
                log.warning("input %r could not be recorded: %s", key, exc)

    # -- results, metrics, outputs --------------------------------------------------------------

    def log_result(self, key: str, value: Any) -> None:
        """Record a result; NaN/Infinity and integers beyond 64 bits are refused here (ContractError)."""
        value = _jsonable(value)
        problem = storable_problem(value, f"results.{key}")
        if problem:
            raise ContractError(problem)
        self.results[key] = value

    def log_results(self, results: dict[str, Any]) -> None:
        for key, value in results.items():
            self.log_result(key, value)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        value, step = float(value), int(step)
        self._emitter.metric(key, value, step)
        if step >= self._metric_steps.get(key, step):
            self.metrics[key], self._metric_steps[key] = value, step

    def log_artifact(
        self,
        key: str,
        body: bytes | str | None = None,
        local_path: str | Path | None = None,
        *,
        kind: ArtifactKind = "artifact",
        format: str | None = None,
        framework: str | None = None,
        tag: str | None = None,
    ) -> Artifact:
        """Store `body` (or the file at `local_path`) content-addressed and record it as an output."""
        if (body is None) == (local_path is None):
            raise ConfigError(f"log_artifact({key!r}) needs exactly one of body= or local_path=")
        data = body.encode() if isinstance(body, str) else body
        try:
            if data is not None:
                digest, size = self._artifacts.put_bytes(data)
            else:
                digest, size = self._artifacts.put_file(str(local_path))
        except OSError as exc:
            if exc.errno not in WRITE_ERRORS:
                raise
            size = len(data) if data is not None else Path(str(local_path)).stat().st_size
            error = ArtifactWriteError(
                f"{os.strerror(exc.errno).lower()} writing artifact {key!r} ({_megabytes(size)})"
                f" to {self._artifacts.url}"
            )
            error.errno = exc.errno
            raise error from exc
        if local_path is not None:
            format = format or (Path(str(local_path)).suffix.lstrip(".") or None)
        ref = StoreRef(self.project, key, digest)
        physical = self._artifacts.uri(digest)
        self._emitter.running(
            outputs=[
                _dataset(
                    ref.namespace,
                    key,
                    digest,
                    key,
                    output=True,
                    kind=kind,
                    size=size,
                    uri=physical,
                    format=format,
                    framework=framework,
                    tag=tag,
                )
            ]
        )
        artifact = Artifact(key, kind, digest, size, str(ref), physical)
        self.outputs[key] = artifact
        return artifact

    def log_dataset(self, key: str, df: Any, *, format: str = "csv", index: bool = False) -> Artifact:
        """A table (pandas DataFrame, or bytes already serialised as `format`) as a data output."""
        if isinstance(df, bytes | str):
            return self.log_artifact(key, body=df, kind="data", format=format)
        buf = io.BytesIO()
        if format == "parquet":
            df.to_parquet(buf, index=index)
        elif format == "csv":
            buf.write(df.to_csv(index=index).encode())
        else:
            raise ConfigError(f"log_dataset format must be csv or parquet, not {format!r}")
        return self.log_artifact(key, body=buf.getvalue(), kind="data", format=format)

    def log_model(
        self,
        key: str,
        body: bytes | None = None,
        model_file: str | Path | None = None,
        *,
        framework: str | None = None,
        format: str | None = None,
    ) -> Artifact:
        return self.log_artifact(
            key, body=body, local_path=model_file, kind="model", framework=framework, format=format
        )


def _read(item: DataItem) -> bytes:
    with item.open() as f:
        data: bytes = f.read()
    return data


def _jsonable(value: Any) -> Any:
    """Results are JSON: numbers, strings, lists, dicts; anything else is kept as its repr."""
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
