"""Input/output facet `provgraph_binding`: the name a handler used for a dataset (`as` on the edge).

It sits in `inputFacets` / `outputFacets` because the same dataset version can be bound under
different names by different runs.
"""

from typing import ClassVar

from provgraph.events.facets.base import Facet, schema_url


class BindingFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_binding"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "BindingFacet")

    name: str
