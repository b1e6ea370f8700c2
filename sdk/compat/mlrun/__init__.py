"""`mlrun`, as far as provgraph provides it: importable as `mlrun` only inside a run's process when
the real package is absent (see `provgraph.compat.mlrun_importable`). The context, data items and
artifact classes are provgraph's own, so `isinstance(x, mlrun.DataItem)` holds for what a handler
receives. Any other MLRun name raises an error naming what is missing (docs/MLRUN.md).
"""

from __future__ import annotations

from typing import Any

from provgraph._artifacts import (
    Artifact,
    ChartArtifact,
    DatasetArtifact,
    DirArtifact,
    ModelArtifact,
    PlotArtifact,
    PlotlyArtifact,
    TableArtifact,
)
from provgraph._context import Context as MLClientCtx
from provgraph._dataitem import DataItem
from provgraph._mlrun import get_dataitem, get_or_create_ctx
from provgraph._packagers import handler
from provgraph.compat import missing

__version__ = "0.0.0+provgraph.compat"


def get_secret_or_env(key: str, secret_provider: Any = None, default: str | None = None) -> str | None:
    """The environment variable `key` (MLRun also asks its secret providers first)."""
    import os

    return os.environ.get(key, default)


class MissingMLRunAttribute(AttributeError):
    """An MLRun function or class provgraph's compatibility layer does not provide."""


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise MissingMLRunAttribute(missing(f"mlrun.{name}"))


__all__ = [
    "Artifact",
    "ChartArtifact",
    "DataItem",
    "DatasetArtifact",
    "DirArtifact",
    "MLClientCtx",
    "ModelArtifact",
    "PlotArtifact",
    "PlotlyArtifact",
    "TableArtifact",
    "get_dataitem",
    "get_or_create_ctx",
    "get_secret_or_env",
    "handler",
]
