"""Job facet `provgraph_code`: the exact code version a run executed.

`codeHash` is the sha256 of the source snapshot stored in the artifact store; it identifies the
job version. Git commit and dirty flag are informative only (a dirty tree still has a hash).
"""

from typing import ClassVar

from provgraph.events.facets.base import Facet, schema_url


class CodeJobFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_code"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "CodeJobFacet")

    code_hash: str
    entrypoint: str
    source_uri: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
