"""Facet base classes shared by every facet module.

To add a facet: create `<name>_<entity>.py` beside this file with a subclass of `Facet`,
give it `FACET_NAME` (the key it is stored under) and a versioned `SCHEMA_URL`, register it in
`facets/__init__.py`, then run `make schema` (tests fail until the exported schema is current).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from provgraph.events.version import __version__

PRODUCER = f"https://github.com/provgraph/provgraph/tree/{__version__}"
SCHEMA_BASE = "https://provgraph.dev/spec/facets"


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are kept, never rejected."""

    # defer_build: a validator is built on first use, not at import; a read-only command loads the whole
    # event model (the graph's read path names it) but validates none of it (tests/test_startup.py).
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True, defer_build=True
    )

    NON_FINITE_FIELDS: ClassVar[frozenset[str]] = frozenset()
    """Fields that may hold NaN/±Infinity (`values.WireFloat`); the storability check skips them."""


class Facet(WireModel):
    """An OpenLineage facet: `_producer` and `_schemaURL` say who wrote it and which version it is."""

    FACET_NAME: ClassVar[str] = ""
    SCHEMA_URL: ClassVar[str] = ""

    producer: str = Field(default=PRODUCER, alias="_producer")
    schema_url: str = Field(default="", alias="_schemaURL")

    def model_post_init(self, context: Any, /) -> None:
        if not self.schema_url and self.SCHEMA_URL:
            object.__setattr__(self, "schema_url", self.SCHEMA_URL)


def schema_url(version: str, name: str) -> str:
    return f"{SCHEMA_BASE}/{version}/{name}.json"
