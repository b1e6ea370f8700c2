"""Facets: provgraph's own (`provgraph_*`, JSON Schema exported to `events/schema/`) and the
OpenLineage standard ones it uses. `CUSTOM_FACETS` is the list the schema export walks.

Names load on first access (PEP 562): a reader importing one module of the package (`values`,
`tag_run`) does not build every facet class (start-up time)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    CUSTOM_FACETS: tuple[type[Facet], ...]

    from provgraph.events.facets.artifact_dataset import ArtifactDatasetFacet, ArtifactKind
    from provgraph.events.facets.base import Facet
    from provgraph.events.facets.binding import BindingFacet
    from provgraph.events.facets.cached_from_run import CachedFromRunFacet
    from provgraph.events.facets.code_job import CodeJobFacet
    from provgraph.events.facets.event_run import EventRunFacet
    from provgraph.events.facets.labels_run import LabelsRunFacet
    from provgraph.events.facets.logs_run import LogChunk, LogsRunFacet
    from provgraph.events.facets.metrics_run import MetricPoint, MetricsRunFacet
    from provgraph.events.facets.params_run import ParamsRunFacet
    from provgraph.events.facets.reproduces_run import ReproducesRunFacet, Verdict
    from provgraph.events.facets.requested_run import RequestedRunFacet
    from provgraph.events.facets.results_run import ResultsRunFacet
    from provgraph.events.facets.runtime_run import FunctionRef, RuntimeRunFacet
    from provgraph.events.facets.standard import (
        DatasetVersionDatasetFacet,
        ErrorMessageRunFacet,
        JobRef,
        ParentRunFacet,
        RunRef,
        SourceCodeLocationJobFacet,
    )
    from provgraph.events.facets.tag_run import TAG_JOB, TagRunFacet
    from provgraph.events.facets.tombstone_run import DELETE_JOB, TombstoneRunFacet

_EXPORTS = {
    "ArtifactDatasetFacet": "artifact_dataset",
    "ArtifactKind": "artifact_dataset",
    "Facet": "base",
    "BindingFacet": "binding",
    "CachedFromRunFacet": "cached_from_run",
    "CodeJobFacet": "code_job",
    "EventRunFacet": "event_run",
    "LabelsRunFacet": "labels_run",
    "LogChunk": "logs_run",
    "LogsRunFacet": "logs_run",
    "MetricPoint": "metrics_run",
    "MetricsRunFacet": "metrics_run",
    "ParamsRunFacet": "params_run",
    "ReproducesRunFacet": "reproduces_run",
    "Verdict": "reproduces_run",
    "RequestedRunFacet": "requested_run",
    "ResultsRunFacet": "results_run",
    "FunctionRef": "runtime_run",
    "RuntimeRunFacet": "runtime_run",
    "DatasetVersionDatasetFacet": "standard",
    "ErrorMessageRunFacet": "standard",
    "JobRef": "standard",
    "ParentRunFacet": "standard",
    "RunRef": "standard",
    "SourceCodeLocationJobFacet": "standard",
    "TAG_JOB": "tag_run",
    "TagRunFacet": "tag_run",
    "DELETE_JOB": "tombstone_run",
    "TombstoneRunFacet": "tombstone_run",
}


def __getattr__(name: str) -> Any:
    if name == "CUSTOM_FACETS":
        value: Any = tuple(__getattr__(n) for n in _CUSTOM)
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f"provgraph.events.facets.{_EXPORTS[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


_CUSTOM = (
    "ParamsRunFacet",
    "ResultsRunFacet",
    "MetricsRunFacet",
    "RuntimeRunFacet",
    "EventRunFacet",
    "LogsRunFacet",
    "ReproducesRunFacet",
    "RequestedRunFacet",
    "CachedFromRunFacet",
    "CodeJobFacet",
    "ArtifactDatasetFacet",
    "BindingFacet",
    "LabelsRunFacet",
    "TagRunFacet",
    "TombstoneRunFacet",
)
"""`CUSTOM_FACETS`, in this order: provgraph's own facets."""


__all__ = [
    "CUSTOM_FACETS",
    "DELETE_JOB",
    "TAG_JOB",
    "ArtifactDatasetFacet",
    "ArtifactKind",
    "BindingFacet",
    "CachedFromRunFacet",
    "CodeJobFacet",
    "DatasetVersionDatasetFacet",
    "ErrorMessageRunFacet",
    "EventRunFacet",
    "Facet",
    "FunctionRef",
    "JobRef",
    "LabelsRunFacet",
    "LogChunk",
    "LogsRunFacet",
    "MetricPoint",
    "MetricsRunFacet",
    "ParamsRunFacet",
    "ParentRunFacet",
    "ReproducesRunFacet",
    "RequestedRunFacet",
    "ResultsRunFacet",
    "RunRef",
    "RuntimeRunFacet",
    "SourceCodeLocationJobFacet",
    "TagRunFacet",
    "TombstoneRunFacet",
    "Verdict",
]
