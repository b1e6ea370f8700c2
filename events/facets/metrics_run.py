"""Run facet `provgraph_metrics`: metric points logged since the run's previous event.

A value is a number, or one of the strings "NaN", "Infinity", "-Infinity" (a diverging loss is
data); in Python it is always a float. `step` is a signed 64-bit integer.
"""

from typing import ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, WireModel, schema_url
from provgraph.events.facets.values import Int64, WireFloat


class MetricPoint(WireModel):
    NON_FINITE_FIELDS: ClassVar[frozenset[str]] = frozenset({"value"})

    key: str
    value: WireFloat
    step: Int64 = 0


class MetricsRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_metrics"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "MetricsRunFacet")

    metrics: list[MetricPoint] = Field(default_factory=list)
