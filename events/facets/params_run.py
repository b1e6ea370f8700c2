"""Run facet `provgraph_params`: the parameters a run was called with."""

from typing import Any, ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url


class ParamsRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_params"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "ParamsRunFacet")

    params: dict[str, Any] = Field(default_factory=dict)
