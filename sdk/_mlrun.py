"""The parts of MLRun's `MLClientCtx` a run context needs beyond provgraph's own: run identity
(`uid`, `name`, `tag`, `iteration`, `state`), labels and annotations, secrets, a writable
`artifact_path`, MLRun's structured logger, and `get_dataitem` for URLs and `store://` URIs.

Kept apart from `Context` (which mixes `MLRunSurface` in) so the run context stays about recording.
See docs/MLRUN.md for the surface, what differs and what is not provided.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgraph.events.errors import ConfigError

if TYPE_CHECKING:
    from provgraph._dataitem import DataItem
    from provgraph._emitter import RunEmitter

RUN_LOGGER = "provgraph.run"


class RunLogger:
    """MLRun's logger: `logger.info("trained", n_estimators=10)`; keyword values are shown after the message.

    Writes to the `provgraph.run` logger, which prints at INFO on stderr unless the application
    configured it (see `console_handler`)."""

    def __init__(self, name: str = RUN_LOGGER) -> None:
        self._log = logging.getLogger(name)
        console_handler(self._log)

    def _emit(self, level: int, message: object, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
        exc_info = fields.pop("exc_info", None)
        text = str(message) % args if args else str(message)
        if fields:
            text += " " + json.dumps(fields, default=repr, sort_keys=False)
        self._log.log(level, "%s", text, exc_info=exc_info)

    def debug(self, message: object, *args: Any, **fields: Any) -> None:
        self._emit(logging.DEBUG, message, args, fields)

    def info(self, message: object, *args: Any, **fields: Any) -> None:
        self._emit(logging.INFO, message, args, fields)

    def warning(self, message: object, *args: Any, **fields: Any) -> None:
        self._emit(logging.WARNING, message, args, fields)

    warn = warning

    def error(self, message: object, *args: Any, **fields: Any) -> None:
        self._emit(logging.ERROR, message, args, fields)

    def exception(self, message: object, *args: Any, **fields: Any) -> None:
        fields.setdefault("exc_info", True)
        self._emit(logging.ERROR, message, args, fields)

    def critical(self, message: object, *args: Any, **fields: Any) -> None:
        self._emit(logging.CRITICAL, message, args, fields)

    def set_logger_level(self, level: int | str) -> None:
        self._log.setLevel(level)


def console_handler(log: logging.Logger) -> None:
    """Give the run logger a stderr handler at INFO, once, unless the application gave it handlers."""
    if log.handlers:
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (it is replaced by notebooks, capture, tests)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        return None


def read_secrets_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines (blank lines and `#` comments skipped), as MLRun's secrets file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the secrets file {path}: {exc.strerror}") from exc
    secrets: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"secrets file {path}, line {number}: expected KEY=VALUE")
        secrets[key.strip()] = value.strip()
    return secrets


class MLRunSurface:
    """MLRun's run-identity, label, secret and path API; mixed into `Context`."""

    run_id: str
    project: str
    job: str
    _secrets_file: Path | None
    _emitter: RunEmitter

    def _init_mlrun(self, job: str, secrets_file: Path | None) -> None:
        self.job = job
        self._secrets_file = secrets_file
        self._labels: dict[str, str] = {}
        self._annotations: dict[str, str] = {}
        self._labels_sent = True
        self._state = "running"
        self._artifact_dir: str | None = None
        self.logger = RunLogger()

    # -- identity -----------------------------------------------------------------------------

    @property
    def uid(self) -> str:
        return self.run_id

    @property
    def name(self) -> str:
        """The job name (MLRun: the run name)."""
        return self.job

    @property
    def tag(self) -> str:
        return self.run_id

    @property
    def iteration(self) -> int:
        """Always 0: provgraph has no hyper-parameter child iterations."""
        return 0

    @property
    def state(self) -> str:
        return self._state

    # -- labels and annotations ---------------------------------------------------------------

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._labels)

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self._annotations)

    def set_label(self, key: str, value: Any, replace: bool = True) -> None:
        """Recorded with the run (facet `provgraph_labels`) at `commit()` and when the run ends."""
        if replace or not self._labels.get(key):
            self._labels[str(key)] = str(value)
            self._labels_sent = False

    def set_annotation(self, key: str, value: Any, replace: bool = True) -> None:
        if replace or not self._annotations.get(key):
            self._annotations[str(key)] = str(value)
            self._labels_sent = False

    def _send_labels(self) -> None:
        """Emit the labels and annotations if they changed since they were last sent."""
        if not self._labels_sent:
            self._emitter.labels(dict(self._labels), dict(self._annotations))
            self._labels_sent = True

    # -- secrets and project params -----------------------------------------------------------

    def get_secret(self, key: str) -> str | None:
        """From the secrets file (setting `secrets_file`), else the environment; None when neither has it.
        Secrets are never recorded."""
        if self._secrets_file is not None:
            found = read_secrets_file(self._secrets_file).get(key)
            if found is not None:
                return found
        return os.environ.get(key)

    def get_project_param(self, key: str, default: Any = None) -> Any:
        """provgraph projects have no parameters: always `default`."""
        return default

    # -- where handlers write files -----------------------------------------------------------

    @property
    def artifact_path(self) -> str:
        """A private, writable folder for this run (created on first use, removed when the run ends):
        write files here, then log them with `log_artifact(key, local_path=…)`."""
        if self._artifact_dir is None:
            self._artifact_dir = tempfile.mkdtemp(prefix=f"provgraph-artifacts-{self.run_id[:13]}-")
        return self._artifact_dir

    @artifact_path.setter
    def artifact_path(self, value: str) -> None:
        self._artifact_dir = value

    @property
    def out_path(self) -> str:
        return self.artifact_path

    def artifact_subpath(self, *subpaths: str) -> str:
        return os.path.join(self.artifact_path, *subpaths)

    def _remove_artifact_dir(self) -> None:
        """Called when the run ends: what was logged is in the artifact store."""
        folder, self._artifact_dir = self._artifact_dir, None
        if folder is not None and Path(folder).name.startswith("provgraph-artifacts-"):
            shutil.rmtree(folder, ignore_errors=True)

    def _end(self, state: str) -> None:
        self._state = state
        self._remove_artifact_dir()

    # -- data items ---------------------------------------------------------------------------

    def get_input(self, key: str, url: str | None = None) -> DataItem:
        raise NotImplementedError  # Context's

    def get_dataitem(self, url: str, secrets: dict[str, str] | None = None) -> DataItem:
        """Any URL or `store://` URI as a DataItem; reading it records it as an input of this run."""
        return self.get_input(url, url)

    def get_store_resource(self, url: str, secrets: dict[str, str] | None = None) -> DataItem:
        """An artifact `store://…` URI as a DataItem; feature sets and vectors are not provided."""
        from provgraph._naming import is_store_uri

        if not is_store_uri(url):
            raise ConfigError(f"get_store_resource needs a store:// URI, not {url!r}")
        if url.startswith(("store://feature-sets/", "store://feature-vectors/")):
            raise ConfigError(f"get_store_resource({url!r}): MLRun feature sets and vectors are not provided")
        return self.get_dataitem(url)


def get_dataitem(url: str, secrets: dict[str, str] | None = None) -> DataItem:
    """A DataItem outside any run (nothing is recorded); `store://` URIs resolve through the default backend."""
    from provgraph._backend import default_backend
    from provgraph._dataitem import DataItem, ProtectedFiles
    from provgraph._naming import is_store_uri, normalise, parse_store_uri, resolve_version

    backend = default_backend()
    protected = ProtectedFiles.of(backend.settings)
    if not is_store_uri(url):
        return DataItem(url, normalise(url), s3_endpoint_url=backend.settings.s3_endpoint_url, protected=protected)
    ref = parse_store_uri(url)
    version = resolve_version(ref, backend.graph())
    return DataItem(
        ref.key,
        url,
        physical_url=backend.artifacts.uri(version),
        s3_endpoint_url=backend.settings.s3_endpoint_url,
        expected=version,
    )


class TrackedStore:
    """The store behind a real `mlrun.DataItem` (MLRun installed, a parameter annotated with its
    DataItem): every read goes through provgraph's DataItem, so it is verified and recorded."""

    kind = "provgraph"

    def __init__(self, item: DataItem) -> None:
        self._item = item

    def get(self, path: str, size: int | None = None, offset: int = 0) -> bytes:
        return self._item.get(size, offset)

    def download(self, path: str, target_path: str) -> None:
        self._item.download(target_path)

    def stat(self, path: str) -> Any:
        return self._item.stat()

    def open(self, url: str, mode: str = "rb") -> Any:
        return self._item.open(mode)

    def listdir(self, path: str) -> list[str]:
        return self._item.listdir()

    def as_df(
        self, url: str, path: str, columns: Any = None, df_module: Any = None, format: str = "", **kwargs: Any
    ) -> Any:
        for unsupported in ("time_column", "start_time", "end_time", "additional_filters"):
            if kwargs.pop(unsupported, None) is not None:
                raise ConfigError(f"as_df({unsupported}=…) is not provided by provgraph (see docs/MLRUN.md)")
        return self._item.as_df(columns=columns, df_module=df_module, format=format, **kwargs)

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigError(f"input {self._item.key!r} is read-only; log outputs with context.log_artifact")

    put = upload = rm = _read_only


def real_mlrun_dataitem(item: DataItem, cls: type) -> Any:
    """A real `mlrun.DataItem` (`cls`) over `item`, so `type(x) == mlrun.DataItem` holds with MLRun installed."""
    name = item.name if item.suffix and item.name.endswith(item.suffix) else item.name + item.suffix
    return cls(item.key, TrackedStore(item), name, url=item.url, artifact_url=item.artifact_url)


# -- `mlrun.get_or_create_ctx` inside a run -----------------------------------------------------------

_running: ContextVar[Any] = ContextVar("provgraph_mlrun_context", default=None)
"""The context of the run whose handler this thread executes (None outside one)."""


@contextmanager
def answering_get_or_create_ctx(ctx: Any) -> Iterator[None]:
    """While the handler runs, `mlrun.get_or_create_ctx(...)` answers this run's context: MLRun's
    frameworks (`apply_mlrun` without a context) and scripts written for `python train.py` call it,
    and the real MLRun's own context would log to a folder and a run DB provgraph never reads. The
    real package, when the handler imported it, is wrapped once: outside a run it answers as before."""
    real: Any = sys.modules.get("mlrun")  # the real package's module, typed as any: not a dependency
    if real is not None and real.__name__ == "mlrun" and not hasattr(real.get_or_create_ctx, "__provgraph__"):
        real.get_or_create_ctx = _answering(real.get_or_create_ctx)
    token = _running.set(ctx)
    try:
        yield
    finally:
        _running.reset(token)


def _answering(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_or_create_ctx(*args: Any, **kwargs: Any) -> Any:
        ctx = _running.get()
        return ctx if ctx is not None else original(*args, **kwargs)

    get_or_create_ctx.__provgraph__ = True  # type: ignore[attr-defined]
    return get_or_create_ctx


def get_or_create_ctx(name: str | None = None, *_: Any, **__: Any) -> Any:
    """provgraph's `mlrun.get_or_create_ctx` (MLRun absent): the run's context, inside a run only."""
    ctx = _running.get()
    if ctx is None:
        raise ConfigError(
            "mlrun.get_or_create_ctx answers only inside a provgraph run: run the handler with"
            " `provgraph run file.py:handler` (a script run as `python file.py` has no run)"
        )
    return ctx
