"""Run facet `provgraph_results`: the values a handler returned or logged with `log_result`."""

from typing import Any, ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url


class ResultsRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_results"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "ResultsRunFacet")

    results: dict[str, Any] = Field(default_factory=dict)
