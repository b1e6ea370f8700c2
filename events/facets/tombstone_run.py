"""Run facet `provgraph_tombstone`: the run deleted a run, an artifact (or one version of it) or a
whole project. Deletion is an event like any other: a COMPLETE run of the project's `DELETE_JOB`, so
the log is never rewritten, replay rebuilds the same state, and `graph/tombstones.py` hides what
tombstones name (the artifact-store bytes go only with `provgraph gc`)."""

from typing import Any, ClassVar, Literal

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url
from provgraph.events.states import ARTIFACT_TARGET as ARTIFACT_TARGET
from provgraph.events.states import DELETE_JOB as DELETE_JOB

TombstoneKind = Literal["run", "artifact", "project"]


class TombstoneRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_tombstone"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "TombstoneRunFacet")

    kind: TombstoneKind
    target: str = Field(
        min_length=1,
        max_length=2048,
        description="A run id, store://<project>/<key>[@sha256:…], or the project's name",
    )
    by: str = Field(default="", max_length=256, description="Who deleted it (user@host or token subject)")
    reason: str = Field(default="", max_length=1024)

    def as_params(self) -> dict[str, Any]:
        """The run's `provgraph_params`: how both graph stores keep the tombstone (as any run's parameters)."""
        return {"kind": self.kind, "target": self.target, "by": self.by, "reason": self.reason}
