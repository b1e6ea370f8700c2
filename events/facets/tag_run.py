"""Run facet `provgraph_tag`: the run moved an alias (`production`, `staging`, …) of a logged artifact
to one of its versions. A tag is a COMPLETE run of the project's registry job (`TAG_JOB`), so the
event log keeps who moved which alias when, like every other run."""

from typing import Any, ClassVar

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url
from provgraph.events.states import ALIAS as ALIAS
from provgraph.events.states import TAG_JOB as TAG_JOB


class TagRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_tag"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "TagRunFacet")

    namespace: str = Field(description="The artifact's dataset namespace, store://<project>")
    name: str = Field(min_length=1, max_length=1024, description="The artifact's dataset name (its key)")
    version: str = Field(description="The version the alias now points at (sha256:…)")
    alias: str
    by: str = Field(default="", max_length=256, description="Who moved the alias (user@host or token subject)")

    def as_params(self) -> dict[str, Any]:
        """The run's `provgraph_params`: how both graph stores keep the tag (as any run's parameters)."""
        return {"dataset": f"{self.namespace}/{self.name}", "version": self.version, "alias": self.alias, "by": self.by}
