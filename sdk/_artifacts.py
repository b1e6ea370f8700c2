"""Artifact objects in MLRun's shape (`Artifact`, `PlotArtifact`, `TableArtifact`, `DirArtifact`,
`PlotlyArtifact`, `ChartArtifact`, `DatasetArtifact`, `ModelArtifact`), and `ArtifactContent`, which
turns any such object - these, or the real `mlrun.artifacts` classes - into the bytes or directory
`Context.log_artifact` stores content-addressed.

Objects are read by duck typing (`metadata.key`, `spec.src_path`, `spec.target_path`, `get_body()`,
`kind`), so a handler passing the real MLRun classes (MLRun installed) is logged the same way.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from provgraph.events.errors import ConfigError


class Artifact:
    """MLRun's `mlrun.artifacts.Artifact`: a key, a body or a source path, and metadata."""

    kind = "artifact"

    def __init__(
        self,
        key: str | None = None,
        body: Any = None,
        viewer: str | None = None,
        is_inline: bool = False,
        format: str | None = None,
        size: int | None = None,
        target_path: str | None = None,
        project: str | None = None,
        src_path: str | None = None,
        metadata: Any = None,
        spec: Any = None,
    ) -> None:
        self._body: Any = body
        self.metadata = metadata or SimpleNamespace(key=key, project=project, labels={}, description=None, tag=None)
        self.spec = spec or SimpleNamespace(
            src_path=src_path, target_path=target_path, format=format, viewer=viewer, size=size, extra_data={}
        )
        self.spec.get_body = lambda: self._body

    @property
    def key(self) -> str | None:
        return self.metadata.key  # type: ignore[no-any-return]

    def get_body(self) -> Any:
        return self._body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r})"


class DirArtifact(Artifact):
    """A directory (`src_path`, else `target_path`, a local folder); stored as a manifest of its files' hashes."""

    kind = "dir"


class PlotArtifact(Artifact):
    """A matplotlib figure (or PNG bytes), stored as an HTML page with the image inline, as MLRun does."""

    kind = "plot"

    def __init__(
        self,
        key: str | None = None,
        body: Any = None,
        is_inline: bool = False,
        target_path: str | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(key, body, format="html", target_path=target_path)
        self.metadata.description = title

    def get_body(self) -> str:
        png = self._body
        if not isinstance(png, bytes):
            buf = io.BytesIO()
            try:
                png.savefig(buf, format="png")
            except AttributeError as exc:
                raise ConfigError(f"PlotArtifact {self.key!r}: body must be a matplotlib figure or PNG bytes") from exc
            png = buf.getvalue()
        title = self.metadata.description or self.key
        data = base64.b64encode(png).decode()
        image = f'<img title="{self.key}" src="data:image/png;base64,{data}">'
        return f'<h3 style="text-align:center">{title}</h3>\n{image}\n'


class PlotlyArtifact(Artifact):
    """A plotly figure, stored as its standalone HTML (`figure.to_html()`)."""

    kind = "plotly"

    def __init__(self, figure: Any = None, key: str | None = None, target_path: str | None = None) -> None:
        super().__init__(key, figure, format="html", target_path=target_path)

    def get_body(self) -> str:
        return str(self._body.to_html())


class TableArtifact(Artifact):
    """A table: `body` (CSV text), or `df` (a DataFrame), or rows with a `header`; stored as CSV."""

    kind = "table"

    def __init__(
        self,
        key: str | None = None,
        body: Any = None,
        df: Any = None,
        viewer: str | None = None,
        visible: bool = False,
        inline: bool = False,
        format: str | None = None,
        header: list[str] | None = None,
        schema: Any = None,
    ) -> None:
        super().__init__(key, body, viewer=viewer, format=format or "csv")
        self._df, self._header = df, header

    def get_body(self) -> Any:
        if self._df is not None:
            return self._df.to_csv(index=False)
        if isinstance(self._body, list):
            out = io.StringIO()
            writer = csv.writer(out)
            if self._header:
                writer.writerow(self._header)
            writer.writerows(self._body)
            return out.getvalue()
        return self._body


class ChartArtifact(Artifact):
    """MLRun's chart: a header and rows (`add_row`), stored as CSV."""

    kind = "chart"

    def __init__(
        self,
        key: str | None = None,
        data: list[list[Any]] | None = None,
        header: list[str] | None = None,
        options: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(key, format="csv")
        self.header, self.rows, self.options = header or [], list(data or []), options or {}
        self.metadata.description = title

    def add_row(self, row: list[Any]) -> None:
        self.rows.append(row)

    def get_body(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue()


class DatasetArtifact(Artifact):
    """A DataFrame logged with `log_dataset` (format parquet unless given)."""

    kind = "dataset"

    def __init__(self, key: str | None = None, df: Any = None, format: str = "", **kwargs: Any) -> None:
        super().__init__(key, df, format=format or "parquet")
        self.df = df
        self.extra = kwargs


class ModelArtifact(Artifact):
    """A model logged with `log_model`."""

    kind = "model"

    def __init__(self, key: str | None = None, body: Any = None, model_file: str | None = None, **kwargs: Any) -> None:
        super().__init__(key, body)
        self.spec.model_file = model_file
        self.extra = kwargs


def dataset_frame(item: Any) -> Any:
    """The DataFrame of a dataset artifact object (ours, or MLRun's `DatasetArtifact(df=...)`), else None."""
    if str(getattr(item, "kind", "")) != "dataset":
        return None
    value = getattr(item, "df", None)
    return value if hasattr(value, "to_parquet") else None


KIND_OF = {"model": "model", "dataset": "data"}
"""MLRun artifact kinds that map to provgraph's `model` and `data`; every other kind is an `artifact`."""


@dataclass
class ArtifactContent:
    """What to store for one logged item: bytes, or a local file, or a local directory."""

    key: str
    kind: str
    """MLRun's kind (`plot`, `dir`, …), kept as metadata."""
    body: bytes | None = None
    path: Path | None = None
    format: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_object(cls, item: Any) -> ArtifactContent:
        """Read an MLRun-style artifact object (ours or the real `mlrun.artifacts` classes)."""
        meta, spec = getattr(item, "metadata", None), getattr(item, "spec", None)
        key = getattr(meta, "key", None) or getattr(item, "key", None)
        if not key:
            raise ConfigError(f"log_artifact({type(item).__name__}): the artifact object has no key")
        kind = str(getattr(item, "kind", "") or "artifact")
        before_log = getattr(item, "before_log", None)
        if callable(before_log):
            before_log()  # the real MLRun classes prepare their body (and check it) here
        labels = {str(k): str(v) for k, v in (getattr(meta, "labels", None) or {}).items()}
        fmt = getattr(spec, "format", None) or None
        source = getattr(spec, "src_path", None) or (getattr(spec, "target_path", None) if kind == "dir" else None)
        if source and not _remote(str(source)):
            return cls(str(key), kind, path=Path(str(source)), format=fmt, labels=labels)
        body = item.get_body() if callable(getattr(item, "get_body", None)) else None
        if body is None and kind != "dir":
            source = getattr(spec, "target_path", None)
            if source and not _remote(str(source)):
                return cls(str(key), kind, path=Path(str(source)), format=fmt, labels=labels)
        if body is None:
            raise ConfigError(
                f"log_artifact({key!r}): {type(item).__name__} has no body and no local source path to store"
            )
        return cls(str(key), kind, body=_as_bytes(body, str(key)), format=fmt, labels=labels)


def _remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _as_bytes(body: Any, key: str) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, dict | list):
        return json.dumps(body).encode()
    raise ConfigError(f"log_artifact({key!r}): body must be bytes, str, a dict or a list, not {type(body).__name__}")


def manifest_bytes(files: dict[str, str]) -> bytes:
    """A directory's identity: its files (relative POSIX path -> content hash), canonical JSON. A folder
    logged as an artifact and the same folder read as an input get the same version."""
    return json.dumps({"kind": "provgraph.directory/1", "files": files}, sort_keys=True).encode()


def directory_manifest(path: Path) -> list[Path]:
    """The regular files under `path`, sorted; a directory artifact is versioned by their hashes."""
    if not path.is_dir():
        raise ConfigError(f"{path} is not a directory")
    return sorted(p for p in path.rglob("*") if p.is_file())
