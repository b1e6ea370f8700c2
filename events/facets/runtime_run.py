"""Run facet `provgraph_runtime`: where and on what the run executed (reproduce compares these)."""

from typing import ClassVar, Literal

from pydantic import Field

from provgraph.events.facets.base import Facet, schema_url


class RuntimeRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_runtime"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "RuntimeRunFacet")

    kind: Literal["local", "kubernetes"] | str = "local"
    host: str | None = None
    image: str | None = None
    resources: dict[str, str] = Field(default_factory=dict)
    python: str | None = None
    packages_digest: str | None = None
    code_unknown: str | None = Field(
        default=None,
        description="Set when the code that ran is not known (its file was edited after it was imported):"
        " the run then has no code version and cannot be reproduced",
    )
