"""Run facet `provgraph_reproduces`: this run re-executes `runId`; the verdict arrives on completion."""

from typing import Any, ClassVar, Literal

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url

Verdict = Literal["PENDING", "REPRODUCED", "DIVERGED"]


class ReproducesRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_reproduces"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "ReproducesRunFacet")

    run_id: str
    verdict: Verdict = "PENDING"
    differences: list[dict[str, Any]] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
