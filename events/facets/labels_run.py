"""Run facet `provgraph_labels`: the labels and annotations a handler set (MLRun's `set_label`,
`set_annotation`, `@handler(labels=…)`)."""

from typing import ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url


class LabelsRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_labels"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "LabelsRunFacet")

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
