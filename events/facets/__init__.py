"""Facets: provgraph's own (`provgraph_*`, JSON Schema exported to `events/schema/`) and the
OpenLineage standard ones it uses. `CUSTOM_FACETS` is the list the schema export walks."""

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

CUSTOM_FACETS: tuple[type[Facet], ...] = (
    ParamsRunFacet,
    ResultsRunFacet,
    MetricsRunFacet,
    RuntimeRunFacet,
    EventRunFacet,
    LogsRunFacet,
    ReproducesRunFacet,
    RequestedRunFacet,
    CachedFromRunFacet,
    CodeJobFacet,
    ArtifactDatasetFacet,
    BindingFacet,
    LabelsRunFacet,
    TagRunFacet,
    TombstoneRunFacet,
)

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
