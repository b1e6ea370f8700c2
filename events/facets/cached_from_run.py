"""Run facet `provgraph_cachedFrom`: this run did not execute; it reuses the outputs of `runId`.

A pipeline step whose code hash, params, input content hashes and runtime/image match an earlier
COMPLETE run is recorded as its own COMPLETE run with this facet (CACHED_FROM in the graph), so its
lineage and reproduction stay exact. `cacheKey` is the hash of what was matched.
"""

from typing import ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url


class CachedFromRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_cachedFrom"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "CachedFromRunFacet")

    run_id: str = Field(min_length=1)
    cache_key: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
