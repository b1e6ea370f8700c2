"""Run facet `provgraph_reproduces`: this run re-executes `runId`; the verdict arrives when it ends.

PENDING while it runs; REPRODUCED or DIVERGED on COMPLETE; FAILED when the reproduction could not
finish (the handler raised, the process died). `environment` compares python, packages digest and
image with the original's; `snapshotInputs` names the inputs read from a stored snapshot because the
original data had changed (or was kept).
"""

from typing import Any, ClassVar, Literal

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url

Verdict = Literal["PENDING", "REPRODUCED", "DIVERGED", "FAILED"]


class ReproducesRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_reproduces"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "ReproducesRunFacet")

    run_id: str
    verdict: Verdict = "PENDING"
    differences: list[dict[str, Any]] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
    snapshot_inputs: list[str] = Field(default_factory=list)
