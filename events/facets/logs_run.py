"""Run facet `provgraph_logs`: pieces of the run's captured output sent since its previous event.

A run's stdout, stderr and logger records form one byte stream; each piece (a chunk) is stored
content-addressed in the artifact store and named here by its offset in that stream, its size
and its hash. Events carry only new chunks, so a long run never resends its log; the stores keep
the union (one chunk per offset), and a reader concatenates them in offset order; a gap between
two chunks is output that could not be stored.
"""

from typing import Annotated, ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, WireModel, schema_url
from provgraph.events.facets.values import NonNegativeInt64

Digest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class LogChunk(WireModel):
    offset: NonNegativeInt64 = Field(description="Where the chunk starts in the run's log, in bytes")
    size: NonNegativeInt64
    digest: Digest = Field(description="The chunk's name in the artifact store: sha256 of its bytes")


class LogsRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_logs"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "LogsRunFacet")

    chunks: list[LogChunk] = Field(default_factory=list)
