"""`Context`: what a handler receives to read parameters and inputs and to log what it produced.

Names follow MLRun's (`parameters`, `get_param`, `get_input`, `log_result`, `log_artifact`,
`log_dataset`, `log_model`) so MLRun handlers run with little or no change. Every output is
stored content-addressed and recorded as a WROTE of that exact version.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provgraph._artifacts import KIND_OF, ArtifactContent, dataset_frame, directory_manifest, manifest_bytes
from provgraph._dataitem import DataItem, ProtectedFiles
from provgraph._emitter import RunEmitter
from provgraph._mlrun import MLRunSurface
from provgraph._naming import StoreRef, check_artifact_key, is_store_uri, parse_store_uri
from provgraph.events.artifacts import ArtifactStore, CorruptArtifact
from provgraph.events.errors import ConfigError, ContractError, NotFound, ProvgraphError
from provgraph.events.facets import ArtifactDatasetFacet, ArtifactKind, BindingFacet, DatasetVersionDatasetFacet
from provgraph.events.facets.values import encode_float, storable_problem
from provgraph.events.model import Dataset, DatasetFacets

log = logging.getLogger("provgraph")


WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
"""Why storing bytes fails on the store's side (not a missing or unreadable source file)."""


class ArtifactWriteError(ProvgraphError, OSError):
    """Storing an output failed (disk full, file too large …); the message names the artifact."""


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@dataclass(unsafe_hash=True)
class Artifact:
    """A logged output: `uri` (store://project/key@sha256:…) pins it; pass it as another run's input.
    Change `labels` (or `meta`) and pass it to `Context.update_artifact` to re-record the same version,
    as MLRun's `artifact.labels[…] = …; context.update_artifact(artifact)`."""

    key: str
    kind: ArtifactKind
    digest: str
    size: int
    uri: str
    physical_url: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    """MLRun's artifact metadata as logged: kind, labels, schema, preview, stats, metrics, parameters …"""
    labels: dict[str, Any] = field(default_factory=dict, compare=False)
    """The artifact's labels, as logged (MLRun's `artifact.labels`)."""
    tag: str | None = field(default=None, compare=False)
    framework: str | None = field(default=None, compare=False)

    @property
    def target_path(self) -> str:
        """MLRun's name for where the content is stored."""
        return self.physical_url


def _dataset(namespace: str, name: str, digest: str, binding: str, *, output: bool, **artifact: Any) -> Dataset:
    bind = {BindingFacet.FACET_NAME: dict(_binding(binding))}
    return Dataset(
        namespace=namespace,
        name=name,
        facets=DatasetFacets(
            version=DatasetVersionDatasetFacet(dataset_version=digest), artifact=ArtifactDatasetFacet(**artifact)
        ),
        input_facets=None if output else bind,
        output_facets=bind if output else None,
    )


@functools.lru_cache(maxsize=256)
def _binding(name: str) -> dict[str, Any]:
    """The binding facet's JSON for `name`, built once per name (each dataset gets a copy: flat, so a
    shallow copy is a whole one)."""
    return BindingFacet(name=name).model_dump(mode="json", by_alias=True)


class Context(MLRunSurface):
    """The run context; also MLRun's `MLClientCtx` surface (see `_mlrun.MLRunSurface`, docs/MLRUN.md)."""

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
        resolve_version: Any = None,
        snapshot_inputs_max_bytes: int = 0,
        input_snapshots: dict[str, str] | None = None,
        input_versions: dict[str, str] | None = None,
        protected: ProtectedFiles | None = None,
        checked: Collection[str] = (),
        job: str = "handler",
        secrets_file: Path | None = None,
    ) -> None:
        """`checked`: input URLs the caller has just checked against `protected`: not checked again."""
        self.run_id = run_id
        self.project = project
        self.parameters: dict[str, Any] = dict(params)
        self.results: dict[str, Any] = {}
        self.outputs: dict[str, Artifact] = {}
        self.versions_logged: dict[str, list[str]] = {}
        """Every version logged under each key, in order (`outputs` keeps the last): what a verdict compares."""
        self.metrics: dict[str, float] = {}
        """Latest value of each metric (by step), as the graph will show it."""
        self._metric_steps: dict[str, int] = {}
        self._input_snapshots = dict(input_snapshots or {})
        self._input_versions = dict(input_versions or {})
        self._protected = protected
        self._checked = frozenset(checked)
        self._init_mlrun(job, secrets_file)
        self._emitter = emitter
        self._artifacts = artifacts
        self._s3 = s3_endpoint_url
        self._resolve_version = resolve_version
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
            protected=None if url in self._checked else self._protected,
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
        version = ref.version or self._resolve(ref)
        if not self._artifacts.exists(version):
            raise NotFound(f"artifact {url} ({version}) is not in the artifact store {self._artifacts.url}")
        return self._artifacts.uri(version), version

    def _resolve(self, ref: StoreRef) -> str:
        """The version an unpinned reference names (`_naming.resolve_version`: its alias's, its MLRun
        producer's or the newest)."""
        if self._resolve_version is None:
            raise NotFound(f"no artifact {ref.key!r} in project {ref.project!r}")
        return str(self._resolve_version(ref))

    def _record_read(self, item: DataItem) -> None:
        snapshot_uri = None
        if 0 < item.size <= self._snapshot_limit and not item.is_directory:
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

    def _pinned(self, key: str) -> bool:
        """Whether input `key` must be exactly recorded bytes (a reproduction's pinned input)."""
        return key in self._input_versions or key in self._input_snapshots

    def record_untouched_inputs(self) -> None:
        """Record inputs the handler never read, so the run's provenance lists all it was given; a
        FIFO or a device is not read here (it may never end, or block), only named in a warning."""
        for key in list(self._input_urls):
            try:
                item = self.get_input(key)
                if item.special_file:
                    log.warning("input %r is not a file or a folder (a FIFO or a device): not hashed", key)
                    continue
                item.hash  # noqa: B018 (hashing records the read)
            except (NotFound, ConfigError) as exc:
                if isinstance(exc, CorruptArtifact) or self._pinned(key):
                    raise  # a reproduction's input is not the original's bytes, read or not: it must not pass
                log.warning("input %r could not be recorded: %s", key, exc)

    # -- results, metrics, outputs --------------------------------------------------------------

    def log_result(self, key: str, value: Any, commit: bool = False) -> None:
        """Record a result. NaN/±Infinity (alone or inside a list or dict) are recorded as "NaN",
        "Infinity", "-Infinity", as metrics are shown, with a warning: MLRun completes such a run and
        the event contract refuses non-finite numbers. Integers beyond 64 bits are refused (ContractError)."""
        value, changed = _finite(_jsonable(value))
        if changed:
            log.warning('result %r holds NaN or Infinity: recorded as the text "NaN"/"Infinity"', key)
        problem = storable_problem(value, f"results.{key}")
        if problem:
            raise ContractError(problem)
        self.results[str(key)] = value
        if commit:
            self.commit()

    def log_results(self, results: dict[str, Any], commit: bool = False) -> None:
        if not isinstance(results, dict):
            raise ConfigError(f"log_results needs a dict, not {type(results).__name__}")
        for key, value in results.items():
            self.log_result(key, value)
        if commit:
            self.commit()

    def commit(self, message: str = "", completed: bool = False) -> None:
        """Write what is pending (events, metric points, the results so far) now, as MLRun's
        `commit` saves the run's state; `message` becomes an annotation."""
        if message:
            self.set_annotation("message", message)
        self._send_labels()
        self._emitter.running(results=self.results)
        self._emitter.transport.flush()

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        value, step = float(value), int(step)
        self._emitter.metric(key, value, step)
        if step >= self._metric_steps.get(key, step):
            self.metrics[key], self._metric_steps[key] = value, step

    def log_artifact(
        self,
        item: Any,
        body: Any = None,
        local_path: str | Path | None = None,
        artifact_path: str | None = None,
        tag: str | None = None,
        viewer: str | None = None,
        target_path: str | None = None,
        src_path: str | Path | None = None,
        upload: bool | None = None,
        labels: dict[str, Any] | None = None,
        format: str | None = None,
        db_key: str | bool | None = None,
        *,
        kind: ArtifactKind | None = None,
        framework: str | None = None,
        meta: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Artifact:
        """Store an output content-addressed and record it: `item` is a key (with `body`, or the file or
        folder at `local_path`) or an artifact object (`PlotArtifact`, `DirArtifact`, … ours or MLRun's).
        A folder is stored file by file and versioned by a manifest of their hashes. `artifact_path`,
        `target_path`, `viewer` and `upload` are MLRun placement options with no effect here: every
        output goes to the artifact store under its hash. A str `db_key` is the key it is recorded
        under, as MLRun registers it (`store://…/<db_key>`)."""
        local_path = src_path or local_path
        if isinstance(item, str):
            item = _db_key(item, db_key)
            if body is None and local_path is None and target_path and "://" not in str(target_path):
                local_path = target_path  # MLRun: an already-written file named by its target path
            if body is None and local_path is None:
                raise ConfigError(f"log_artifact({item!r}) needs body= or local_path=")
            path = None if body is not None else Path(str(local_path))
            content = ArtifactContent(
                item, "artifact", body=None if body is None else _body_bytes(item, body), path=path
            )
            if format is None and local_path is not None:
                format = Path(str(local_path)).suffix.lstrip(".") or None
        else:
            frame = dataset_frame(item)
            if frame is not None:  # MLRun's DatasetArtifact(df=...): a table, as log_dataset stores it
                spec = getattr(item, "spec", None)
                return self.log_dataset(
                    str(getattr(getattr(item, "metadata", None), "key", None) or getattr(item, "key", "")),
                    frame,
                    tag=tag or "",
                    labels={**(getattr(getattr(item, "metadata", None), "labels", None) or {}), **(labels or {})},
                    format=format or getattr(spec, "format", None) or "",
                    stats=bool(getattr(item, "stats", None) or getattr(item, "extra", {}).get("stats")),
                )
            content = ArtifactContent.of_object(item)
        all_labels = {**content.labels, **{str(k): str(v) for k, v in (labels or {}).items()}}
        details = {"mlrun_kind": content.kind, **({"labels": all_labels} if all_labels else {}), **(meta or {})}
        return self._store_output(
            content,
            kind=kind or KIND_OF.get(content.kind, "artifact"),  # type: ignore[arg-type]
            format=format or content.format,
            framework=framework,
            tag=tag or None,
            meta=details,
        )

    def _store_output(
        self,
        content: ArtifactContent,
        *,
        kind: ArtifactKind,
        format: str | None,
        framework: str | None,
        tag: str | None,
        meta: dict[str, Any],
    ) -> Artifact:
        key = check_artifact_key(content.key)
        try:
            if content.body is not None:
                digest, size = self._artifacts.put_bytes(content.body)
            elif content.path is not None and content.path.is_dir():
                digest, size, files = self._put_directory(content.path)
                format, meta = format or "dir", {**meta, "files": files}
            elif content.path is not None:
                digest, size = self._artifacts.put_file(str(content.path))
            else:
                raise ConfigError(f"log_artifact({key!r}): nothing to store")
        except OSError as exc:
            if exc.errno not in WRITE_ERRORS:
                raise
            size = len(content.body) if content.body is not None else _size_of(content.path)
            error = ArtifactWriteError(
                f"{os.strerror(exc.errno).lower()} writing artifact {key!r} ({_megabytes(size)})"
                f" to {self._artifacts.url}"
            )
            error.errno = exc.errno
            raise error from exc
        ref = StoreRef(self.project, key, digest)
        artifact = Artifact(
            key,
            kind,
            digest,
            size,
            str(ref),
            self._artifacts.uri(digest),
            meta={"format": format, **meta},
            labels=dict(meta.get("labels") or {}),
            tag=tag,
            framework=framework,
        )
        return self._record_output(artifact)

    def _record_output(self, artifact: Artifact) -> Artifact:
        """Record `artifact` (stored already) as an output of this run, with its labels and metadata."""
        meta = {k: v for k, v in artifact.meta.items() if k not in ("format", "labels")}
        self._emitter.running(
            outputs=[
                _dataset(
                    StoreRef(self.project, artifact.key, artifact.digest).namespace,
                    artifact.key,
                    artifact.digest,
                    artifact.key,
                    output=True,
                    kind=artifact.kind,
                    size=artifact.size,
                    uri=artifact.physical_url,
                    format=artifact.meta.get("format"),
                    framework=artifact.framework,
                    tag=artifact.tag,
                    labels=_labels(artifact.labels) or None,
                    meta=storable_meta(meta) or None,
                )
            ]
        )
        self.outputs[artifact.key] = artifact
        self.versions_logged.setdefault(artifact.key, []).append(artifact.digest)
        return artifact

    def _put_directory(self, folder: Path) -> tuple[str, int, dict[str, str]]:
        """Each file stored by its hash; the directory's version is the hash of the manifest listing them."""
        files: dict[str, str] = {}
        for path in directory_manifest(folder):
            digest, _ = self._artifacts.put_file(str(path))
            files[path.relative_to(folder).as_posix()] = digest
        digest, size = self._artifacts.put_bytes(manifest_bytes(files))
        return digest, size, files

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """The artifacts logged so far, last version per key, in MLRun's dict shape (read-only copies:
        MLRun's `context.artifacts`, which hub functions pass on)."""
        return [_mlrun_dict(self.project, a) for a in self.outputs.values()]

    @property
    def artifact_uris(self) -> dict[str, str]:
        """MLRun's `context.artifact_uris`: each logged key's pinned URI."""
        return {key: a.uri for key, a in self.outputs.items()}

    def update_artifact(self, artifact_object: Any) -> Artifact:
        """Record a changed artifact again. What `log_artifact` returned is re-recorded as the same
        version with its current labels and metadata (the stored content cannot change); an artifact
        object (ours or MLRun's) is logged again, a new version under the same key when its body changed."""
        if isinstance(artifact_object, Artifact):
            if artifact_object.digest not in self.versions_logged.get(artifact_object.key, []):
                raise ConfigError(f"update_artifact({artifact_object.key!r}): not an output of this run")
            artifact_object.meta["labels"] = _labels(artifact_object.labels)
            return self._record_output(artifact_object)
        return self.log_artifact(artifact_object)

    def log_dataset(
        self,
        key: str,
        df: Any,
        tag: str = "",
        local_path: str | Path | None = None,
        artifact_path: str | None = None,
        upload: bool = True,
        labels: dict[str, Any] | None = None,
        format: str = "",
        preview: int | None = None,
        stats: bool | None = None,
        db_key: str | bool | None = None,
        target_path: str = "",
        extra_data: dict[str, Any] | None = None,
        label_column: str | None = None,
        *,
        index: bool | None = None,
        **kwargs: Any,
    ) -> Artifact:
        """A table (a pandas DataFrame, or bytes already serialised as `format`) as a data output, parquet
        unless `format` (or `local_path`'s suffix) says csv; an existing file at `local_path` is stored
        instead of `df`, as MLRun does. Schema, a preview (`preview` rows, default 20) and, with
        `stats=True`, per-column statistics are recorded as the artifact's metadata. The index is kept
        as MLRun keeps it (`index=None`: written as columns unless it is a plain RangeIndex);
        other keyword arguments (`sep=";"` …) go to pandas' writer of that format, as in MLRun."""
        key = _db_key(key, db_key)
        fmt = format or (Path(str(local_path)).suffix.lstrip(".") if local_path else "") or "parquet"
        meta: dict[str, Any] = {"label_column": label_column} if label_column else {}
        if df is not None and not isinstance(df, bytes | str):
            meta.update(_table_meta(df, preview, bool(stats)))
        if local_path is not None and Path(str(local_path)).is_file():
            content = ArtifactContent(key, "dataset", path=Path(str(local_path)), format=fmt)  # as MLRun: the file
        elif isinstance(df, bytes | str):
            content = ArtifactContent(key, "dataset", body=df.encode() if isinstance(df, str) else df, format=fmt)
        else:
            body = _serialise_table(key, df, fmt, index, kwargs)
            content = ArtifactContent(key, "dataset", body=body, format=fmt)
        return self._store_output(
            content,
            kind="data",
            format=fmt,
            framework=None,
            tag=tag or None,
            meta={"mlrun_kind": "dataset", **({"labels": _labels(labels)} if labels else {}), **meta},
        )

    def _extra_data(self, key: str, extra: dict[str, Any], model_dir: str | Path | None) -> dict[str, Any]:
        """MLRun's `extra_data`: bytes and files (absolute, or relative to `model_dir`) are logged as
        artifacts of their own (`<model>_<name>`, outputs of the run) and named by their URIs; artifact
        objects by the URI of their output (logged here unless this run logged them already; an
        MLRun object's own `uri` names no provgraph version); anything else (a URL) as given."""
        named: dict[str, Any] = {}
        for name, value in extra.items():
            if isinstance(value, bytes | bytearray):
                named[name] = self.log_artifact(f"{key}_{name}", body=bytes(value)).uri
            elif isinstance(value, str | Path) and (file := _extra_file(value, model_dir)) is not None:
                named[name] = self.log_artifact(f"{key}_{name}", local_path=file).uri
            elif isinstance(value, Artifact):
                named[name] = value.uri
            elif isinstance(value, str | Path):
                named[name] = str(value)
            else:
                object_key = getattr(getattr(value, "metadata", None), "key", None) or getattr(value, "key", None)
                logged = self.outputs.get(str(object_key)) if object_key else None
                named[name] = logged.uri if logged is not None else self.log_artifact(value).uri
        return named

    def log_model(
        self,
        key: str,
        body: bytes | str | None = None,
        framework: str | None = "",
        tag: str = "",
        model_dir: str | Path | None = None,
        model_file: str | Path | None = None,
        algorithm: str | None = None,
        metrics: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        artifact_path: str | None = None,
        upload: bool = True,
        labels: dict[str, Any] | None = None,
        training_set: Any = None,
        label_column: str | list[str] | None = None,
        extra_data: dict[str, Any] | None = None,
        db_key: str | bool | None = None,
        *,
        format: str | None = None,
        **kwargs: Any,
    ) -> Artifact:
        """A model: `body` (its bytes; `model_file` then only names it, e.g. "model.pkl"), or the file
        `model_file`, or the folder `model_dir`. Metrics, parameters, algorithm and the training set's
        schema are kept as the artifact's metadata. A str `db_key` is the key it is recorded under."""
        key = _db_key(key, db_key)
        if body is not None:
            content = ArtifactContent(key, "model", body=_body_bytes(key, body))
        elif model_dir is not None:
            content = ArtifactContent(key, "model", path=Path(str(model_dir)))
        elif model_file is not None:
            content = ArtifactContent(key, "model", path=Path(str(model_file)))
        else:
            raise ConfigError(f"log_model({key!r}) needs body=, model_file= or model_dir=")
        named = Path(str(model_file)).name if model_file is not None else None
        fmt = format or (Path(named).suffix.lstrip(".") if named else None) or None
        meta: dict[str, Any] = {"mlrun_kind": "model"}
        for name, value in (
            ("model_file", named),
            ("algorithm", algorithm),
            ("metrics", metrics),
            ("parameters", parameters),
            ("label_column", label_column),
            ("labels", _labels(labels) if labels else None),
            ("extra_data", self._extra_data(key, extra_data, model_dir) if extra_data else None),
        ):
            if value:
                meta[name] = _jsonable(value)
        if training_set is not None:
            meta["schema"] = _table_meta(training_set, 0, False)["schema"]
        return self._store_output(
            content, kind="model", format=fmt, framework=framework or None, tag=tag or None, meta=meta
        )


def _db_key(key: str, db_key: str | bool | None) -> str:
    """The key an output is recorded under: MLRun registers it under a str `db_key` (its `store://`
    URIs name that), else under its key."""
    return db_key if isinstance(db_key, str) and db_key else key


def _mlrun_dict(project: str, artifact: Artifact) -> dict[str, Any]:
    """An artifact as MLRun's `Artifact.base_dict()` shows it (kind, metadata, spec, status)."""
    meta = json.loads(json.dumps(storable_meta(artifact.meta)))  # a deep, plain copy
    kind = meta.pop("mlrun_kind", None) or "artifact"
    return {
        "kind": kind,
        "metadata": {"key": artifact.key, "project": project, "labels": dict(artifact.labels), "hash": artifact.digest},
        "spec": {
            "target_path": artifact.physical_url,
            "format": meta.pop("format", None) or "",
            "size": artifact.size,
            "db_key": artifact.key,
            **{k: v for k, v in meta.items() if k != "labels"},
        },
        "status": {"state": "created"},
        "uri": artifact.uri,
    }


def _extra_file(value: str | Path, model_dir: str | Path | None) -> Path | None:
    """The file an `extra_data` path names (absolute, or relative to the model's folder), if it is one."""
    path = Path(value)
    if not path.is_absolute() and model_dir is not None:
        path = Path(model_dir) / path
    try:
        return path if path.is_file() else None
    except (OSError, ValueError):  # not a path at all (too long, a NUL): kept as the text it is
        return None


def _read(item: DataItem) -> bytes:
    with item.open() as f:
        data: bytes = f.read()
    return data


def storable_meta(value: Any) -> Any:
    """Artifact metadata as the event contract stores it: NaN/±Infinity (a column's stats, a metric)
    as their JSON-safe encoding, integers beyond 64 bits and other values as text."""
    if isinstance(value, dict):
        return {_storable_text(str(k)): storable_meta(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_meta(v) for v in value]
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    return _storable_text(str(value))


def _storable_text(text: str) -> str:
    """NUL and lone surrogates (which no store keeps) escaped; other text unchanged."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _body_bytes(key: str, body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    raise ConfigError(f"artifact {key!r}: body must be bytes or str, not {type(body).__name__}")


def _size_of(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


def _labels(labels: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in labels.items()}


WRITER_SKIPS = frozenset({"path", "path_or_buf", "column_metadata", "ignore_preview_limits"})
"""`log_dataset` keywords never passed to pandas: the target (provgraph writes to the store) and MLRun's
own DatasetArtifact options."""


def _writer_kwargs(key: str, df: Any, fmt: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The extra `log_dataset` keywords pandas' writer for `fmt` takes (to_csv's named ones; for parquet,
    any but to_csv's own, which pandas would hand to the engine); others are named in a warning."""
    import inspect

    csv_names = set(inspect.signature(type(df).to_csv).parameters)
    if fmt == "csv":
        fits = {k: v for k, v in kwargs.items() if k in csv_names and k not in WRITER_SKIPS}
    elif fmt in ("parquet", "pq"):
        parquet_names = set(inspect.signature(type(df).to_parquet).parameters)
        fits = {
            k: v
            for k, v in kwargs.items()
            if (k in parquet_names or k not in csv_names) and k not in WRITER_SKIPS | {"self", "index"}
        }
    else:
        fits = {}
    ignored = sorted(set(kwargs) - set(fits) - {"column_metadata", "ignore_preview_limits"})
    if ignored:
        log.warning("log_dataset(%r): %s not used when writing %s", key, ", ".join(ignored), fmt)
    return fits


def _serialise_table(key: str, df: Any, fmt: str, index: bool | None, kwargs: dict[str, Any] | None = None) -> bytes:
    """As MLRun writes a dataset (mlrun.datastore.targets): any index but a RangeIndex (row numbers)
    is kept, as columns. A RangeIndex is left out of parquet too (pandas would keep it as metadata):
    it reads back the same, and the bytes, so the content hashes of earlier runs, stay as they were."""
    writer = _writer_kwargs(key, df, fmt, kwargs or {}) if kwargs else {}
    keep = index if index is not None else not _plain_range_index(df)
    buf = io.BytesIO()
    if fmt in ("parquet", "pq"):
        df.to_parquet(buf, index=keep, **writer)
    elif fmt == "csv":
        buf.write(df.to_csv(index=keep, **writer).encode())
    elif fmt == "json":
        buf.write(df.to_json(orient="records").encode())
    else:
        raise ConfigError(f"log_dataset({key!r}): format must be parquet, csv or json, not {fmt!r}")
    return buf.getvalue()


def _plain_range_index(df: Any) -> bool:
    """MLRun's CSV rule: a RangeIndex (row numbers) is not written, any other index is."""
    import pandas as pd

    return isinstance(df.index, pd.RangeIndex)


PREVIEW_ROWS = 20
MAX_PREVIEW_COLUMNS = 100
"""As MLRun: wider tables keep their schema, but no preview or statistics."""


def _table_meta(df: Any, preview: int | None, stats: bool) -> dict[str, Any]:
    """MLRun's dataset metadata: column schema, the first rows, and (asked for) describe() statistics."""
    meta: dict[str, Any] = {
        "schema": {str(c): str(t) for c, t in df.dtypes.items()},
        "length": len(df),
    }
    rows = PREVIEW_ROWS if preview is None else preview
    if len(df.columns) > MAX_PREVIEW_COLUMNS:
        return meta
    if rows:
        meta["header"] = [str(c) for c in df.columns]
        meta["preview"] = _jsonable(json.loads(df.head(rows).to_json(orient="values", default_handler=str)))
    if stats:
        described = df.describe(include="all")
        meta["stats"] = json.loads(described.to_json(default_handler=str))
    return meta


def _jsonable(value: Any) -> Any:
    """Results are JSON: numbers, strings, lists, dicts; numpy and pandas values become plain ones,
    inside lists and dicts too (as MLRun casts results); anything else is kept as its repr."""
    plain = _plain(value)
    try:
        json.dumps(plain)
    except (TypeError, ValueError):
        return repr(value)
    return plain


def _finite(value: Any) -> tuple[Any, bool]:
    """`value` with every non-finite float as its text (`encode_float`), and whether there was one."""
    if isinstance(value, float):
        encoded = encode_float(value)
        return encoded, encoded is not value
    if isinstance(value, dict):
        pairs = {k: _finite(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(c for _, c in pairs.values())
    if isinstance(value, list):
        items = [_finite(v) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars, pandas series
        return value.tolist()
    if hasattr(value, "item") and callable(value.item):  # other array libraries' scalars
        return value.item()
    return value
