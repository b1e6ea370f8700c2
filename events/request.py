"""Run requests: the contract between whoever asks for a run (SDK, API `reproduce`) and whoever
executes it (the launcher, then `provgraph exec` in a pod). Published on `provgraph.requests.v1`,
keyed by run id, and stored content-addressed in the artifact store so a pod can fetch it by hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError

from provgraph.events.facets import ParentRunFacet
from provgraph.events.facets.base import WireModel
from provgraph.events.facets.runtime_run import FunctionRef
from provgraph.events.facets.values import WireFloat
from provgraph.events.serde import refusal

MAX_SECRETS = 16
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_dns_subdomain(name: str) -> bool:
    """A valid name of most Kubernetes objects (Secrets among them): DNS-1123 subdomain."""
    return len(name) <= 253 and bool(_DNS_SUBDOMAIN.match(name))


def secrets_problem(names: list[str]) -> str | None:
    """Why `names` cannot be the Kubernetes Secrets of a run (checked by the SDK and the launcher)."""
    if len(names) > MAX_SECRETS:
        return f"a run names at most {MAX_SECRETS} secrets, not {len(names)}"
    for name in names:
        if not is_dns_subdomain(name):
            return f"secret {name[:80]!r} is not a valid Kubernetes Secret name (DNS-1123 subdomain)"
    if len(set(names)) != len(names):
        return "a secret is named twice"
    return None


class Expectation(WireModel):
    """What the original run produced; a reproduction compares itself against this on completion."""

    outputs: dict[str, str] = Field(default_factory=dict, description="output key -> content hash")
    results: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, WireFloat] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict, description="python, packages_digest, image")


class RunRequest(WireModel):
    run_id: str = Field(min_length=1)
    project: str = Field(min_length=1)
    job: str = Field(min_length=1)
    entrypoint: str = Field(description="<file name>:<function> inside the code snapshot")
    code_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    git_commit: str | None = None
    git_dirty: bool | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(
        default_factory=dict, description="input name -> URI (store:// pinned or any fsspec URL)"
    )
    runtime: str = "local"
    image: str | None = None
    resources: dict[str, str] = Field(default_factory=dict)
    namespace: str | None = Field(default=None, description="Kubernetes namespace; the launcher's default when unset")
    image_pull_secret: str | None = None
    secrets: list[str] = Field(
        default_factory=list,
        description="Kubernetes Secrets (names) whose keys the pod gets as environment variables (envFrom), for"
        " `get_secret`; only names are recorded, never values",
    )
    input_snapshots: dict[str, str] = Field(
        default_factory=dict,
        description="input name -> content hash: read this input from the artifact store's snapshot of that version",
    )
    input_versions: dict[str, str] = Field(
        default_factory=dict,
        description="input name -> content hash the input must have (a reproduction's pins); verified on read",
    )
    function: FunctionRef | None = Field(default=None, description="the hub item or registered function it runs")
    reproduces: str | None = Field(default=None, description="run id this run re-executes")
    parent: ParentRunFacet | None = Field(default=None, description="the run this one is a step of (a pipeline run)")
    expected: Expectation | None = None
    artifact_store: str | None = None
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def dumps_request(request: RunRequest) -> bytes:
    """Stable bytes: the Kafka message value and the stored object are the same bytes, so the
    launcher can name the stored request by hashing the message."""
    body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def loads_request(body: bytes | str) -> RunRequest:
    """The request in `body` (what `dumps_request` wrote); `ContractError` naming the fields at fault,
    like `serde.loads` for events, so every reader refuses a bad request the same way."""
    try:
        return RunRequest.model_validate_json(body)
    except ValidationError as exc:
        raise refusal(exc, "run request") from exc


def request_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
