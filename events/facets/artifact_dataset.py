"""Dataset facet `provgraph_artifact`: what kind of thing a dataset version is and how big."""

from typing import Any, ClassVar, Literal

from provgraph.events.facets.base import Facet, schema_url
from provgraph.events.facets.values import NonNegativeInt64

ArtifactKind = Literal["data", "artifact", "model"]


class ArtifactDatasetFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_artifact"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "ArtifactDatasetFacet")

    kind: ArtifactKind = "data"
    key: str | None = None
    uri: str | None = None
    size: NonNegativeInt64 | None = None
    format: str | None = None
    framework: str | None = None
    tag: str | None = None
    labels: dict[str, str] | None = None
    """Labels the handler gave the artifact (MLRun's `labels=`)."""
    meta: dict[str, Any] | None = None
    """MLRun's artifact metadata as logged: kind, schema, preview, stats, metrics, parameters, files …"""
