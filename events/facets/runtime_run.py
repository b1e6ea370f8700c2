"""Run facet `provgraph_runtime`: where and on what the run executed (reproduce compares these).

`pid`, `pid_start` (clock ticks since boot, /proc/<pid>/stat field 22), `boot_id` and
`pid_namespace` identify the process, so a reader on the same machine can tell a run whose
process is gone (`graph/liveness.py`), even after its pid was reused. `heartbeat_s` is the promise
a reader elsewhere relies on: only a run whose process sends heartbeats can be judged lost by silence.
"""

from typing import ClassVar, Literal

from pydantic import Field

from provgraph.events.facets.base import Facet, WireModel, schema_url
from provgraph.events.facets.values import FiniteFloat, Int64


class FunctionRef(WireModel):
    """The function a run executed when it came from a hub or the function registry (docs/HUB.md).

    `code_hash` is the hash of the source file taken when `hub://` was resolved; the job's code
    snapshot must have that hash, so a reproduction runs those bytes and never asks the hub again."""

    name: str
    version: str | None = None
    function_hash: str | None = Field(
        default=None, description="sha256 of the function's definition (registered functions)"
    )
    hub_source: str | None = Field(default=None, description="Name of the hub source it was resolved from")
    hub_url: str | None = Field(default=None, description="URL of the item's folder in that source")
    code_hash: str
    requirements: list[str] = Field(default_factory=list)
    isolated: bool = Field(default=False, description="Ran in a cached virtual environment with its requirements")


class RuntimeRunFacet(Facet):
    FACET_NAME: ClassVar[str] = "provgraph_runtime"
    SCHEMA_URL: ClassVar[str] = schema_url("1-0-0", "RuntimeRunFacet")

    kind: Literal["local", "kubernetes"] | str = "local"
    host: str | None = None
    image: str | None = None
    resources: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] | None = Field(
        default=None, description="Kubernetes Secrets mounted for get_secret (names only, never values)"
    )
    python: str | None = None
    packages_digest: str | None = None
    pid: Int64 | None = None
    pid_start: Int64 | None = None
    boot_id: str | None = None
    pid_namespace: str | None = None
    heartbeat_s: FiniteFloat | None = Field(
        default=None,
        description="Seconds between the RUNNING heartbeats the run's process sends; absent or 0: it sends"
        " none, so a long silence does not make the run lost",
    )
    function: FunctionRef | None = None
    code_unknown: str | None = Field(
        default=None,
        description="Set when the code that ran is not known (its file was edited after it was imported):"
        " the run then has no code version and cannot be reproduced",
    )
