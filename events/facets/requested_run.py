"""Run facet `provgraph_requested`: the run was submitted to a remote runtime and waits to start.

`requestHash` names the stored run request (what `provgraph exec` fetches in the pod). The event
carrying it is an OpenLineage OTHER event with sequence number 0, so any START from the run wins.
"""

from typing import ClassVar

from provgraph.events.facets.base import Facet, schema_url


class RequestedRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_requested"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "RequestedRunFacet")

    request_hash: str
    runtime: str
