"""provgraph: write a function once, run it anywhere, and know forever what produced every result.

    import provgraph as pg

    def train(ctx: pg.Context, data: pg.DataItem, lr: float = 0.1):
        ctx.log_metric("loss", 0.31, step=1)
        ctx.log_model("model", body=b"...", framework="sklearn")
        return {"accuracy": 0.93}

    result = pg.run(train, params={"lr": 0.1}, inputs={"data": "data/iris.csv"})

Everything here is the public surface (see `__all__`); modules starting with `_` are internal.
Heavy clients (Kafka, Neo4j, Kubernetes, GraphQL) load only when a feature needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provgraph._backend import Backend
    from provgraph._context import Artifact, Context
    from provgraph._dataitem import DataItem
    from provgraph._execution import RunFailed, RunResult
    from provgraph._mlrun import get_dataitem
    from provgraph._packagers import handler
    from provgraph._reproduce import reproduce, request_reproduction
    from provgraph._run import run
    from provgraph._tags import tag
    from provgraph.events.errors import (
        ConfigError,
        ContractError,
        NotFound,
        ProjectionError,
        ProvgraphError,
        ReproduceRefused,
        TransportError,
    )
    from provgraph.events.settings import Settings, load_settings
    from provgraph.events.version import __version__

# Public name -> defining module. Resolved on first access (PEP 562) so `import provgraph` costs
# almost nothing; pydantic and the event models load when the SDK is first used.
_EXPORTS = {
    "Backend": "provgraph._backend",
    "Artifact": "provgraph._context",
    "Context": "provgraph._context",
    "DataItem": "provgraph._dataitem",
    "RunFailed": "provgraph._execution",
    "RunResult": "provgraph._execution",
    "get_dataitem": "provgraph._mlrun",
    "handler": "provgraph._packagers",
    "run": "provgraph._run",
    "tag": "provgraph._tags",
    "reproduce": "provgraph._reproduce",
    "request_reproduction": "provgraph._reproduce",
    "Settings": "provgraph.events.settings",
    "load_settings": "provgraph.events.settings",
    "__version__": "provgraph.events.version",
    **dict.fromkeys(
        [
            "ConfigError",
            "ContractError",
            "NotFound",
            "ProjectionError",
            "ProvgraphError",
            "ReproduceRefused",
            "TransportError",
        ],
        "provgraph.events.errors",
    ),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'provgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "Artifact",
    "Backend",
    "ConfigError",
    "Context",
    "ContractError",
    "DataItem",
    "NotFound",
    "ProjectionError",
    "ProvgraphError",
    "ReproduceRefused",
    "RunFailed",
    "RunResult",
    "Settings",
    "TransportError",
    "__version__",
    "get_dataitem",
    "handler",
    "load_settings",
    "reproduce",
    "request_reproduction",
    "run",
    "tag",
]
