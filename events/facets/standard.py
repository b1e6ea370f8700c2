"""The OpenLineage standard facets provgraph reads and writes (a subset; others pass through)."""

from typing import ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, WireModel

OL_FACETS = "https://openlineage.io/spec/facets"


class RunRef(WireModel):
    run_id: str


class JobRef(WireModel):
    namespace: str
    name: str


class RootRef(WireModel):
    run: RunRef
    job: JobRef


class ParentRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "parent"
    SCHEMA_URL: ClassVar[str] = f"{OL_FACETS}/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet"

    run: RunRef
    job: JobRef
    root: RootRef | None = None


class ErrorMessageRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "errorMessage"
    SCHEMA_URL: ClassVar[str] = f"{OL_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"

    message: str
    programming_language: str = "python"
    stack_trace: str | None = None


class SourceCodeLocationJobFacet(Facet):
    FACET_NAME: ClassVar[str] = "sourceCodeLocation"
    SCHEMA_URL: ClassVar[str] = f"{OL_FACETS}/1-0-1/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet"

    type: str = "git"
    url: str
    path: str | None = None
    version: str | None = None


class DatasetVersionDatasetFacet(Facet):
    FACET_NAME: ClassVar[str] = "version"
    SCHEMA_URL: ClassVar[str] = f"{OL_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"

    dataset_version: str = Field(min_length=1)
