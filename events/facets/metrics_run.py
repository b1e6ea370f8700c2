"""Run facet `provgraph_metrics`: metric points logged since the run's previous event."""

from typing import ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, WireModel, schema_url


class MetricPoint(WireModel):
    key: str
    value: float
    step: int = 0


class MetricsRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_metrics"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "MetricsRunFacet")

    metrics: list[MetricPoint] = Field(default_factory=list)
