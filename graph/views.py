"""What lineage stores answer: plain pydantic models, identical for SQLite and Neo4j."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from provgraph.events.facets.values import WireFloat
from provgraph.events.states import RunState
from provgraph.graph.ids import NodeKind, dataset_node_id, run_node_id


class View(BaseModel):
    # defer_build: each command validates a few of these views; the others' validators are never built.
    model_config = ConfigDict(frozen=True, defer_build=True)


class DatasetRef(View):
    """A dataset version as seen from a run: which one, and the name the run bound it to."""

    namespace: str
    name: str
    version: str
    binding: str = ""
    kind: str | None = None
    attempted: bool = False
    """An output of a run that has not COMPLETEd (failed, aborted or still going): declared, not written."""

    @property
    def node_id(self) -> str:
        return dataset_node_id(self.namespace, self.name, self.version)


class JobVersionView(View):
    namespace: str
    name: str
    code_hash: str
    entrypoint: str | None = None
    source_uri: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None


class ReproductionView(View):
    original_run_id: str
    verdict: str
    differences: list[dict[str, Any]] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
    snapshot_inputs: list[str] = Field(default_factory=list)


class Completeness(View):
    """Whether provgraph holds every event of a run (see `graph/completeness.py`)."""

    complete: bool
    missing: list[int] = Field(default_factory=list)
    """Sequence numbers known to be missing (gaps, and up to a declared event count)."""
    reasons: list[str] = Field(default_factory=list)
    """`sequenceGap`, `noStart`, `noTerminal`, `countUnmet`."""


class RunView(View):
    run_id: str
    namespace: str
    job_name: str
    state: RunState
    started_at: datetime | None = None
    ended_at: datetime | None = None
    code_hash: str | None = None
    entrypoint: str | None = None
    """`file.py:function` the run called in its code snapshot (`job_version.entrypoint` says the same)."""
    params: dict[str, Any] = Field(default_factory=dict)
    results: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    """MLRun's `set_label` (facet `provgraph_labels`): queryable as `labels.<key> = value`."""
    annotations: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, WireFloat] = Field(default_factory=dict)
    """Floats here; as JSON, non-finite values are "NaN", "Infinity", "-Infinity"."""
    runtime: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    """The failure's stack trace, as the run's process reported it."""
    parent_run_id: str | None = None
    cached_from: str | None = None
    """The run whose outputs this one reused instead of executing (CACHED_FROM)."""
    reproduces: ReproductionView | None = None
    inputs: list[DatasetRef] = Field(default_factory=list)
    outputs: list[DatasetRef] = Field(default_factory=list)
    job_version: JobVersionView | None = None
    completeness: Completeness | None = None

    @property
    def node_id(self) -> str:
        return run_node_id(self.run_id)


class LogChunkView(View):
    """A piece of a run's captured output: bytes [offset, offset + size) of its log, stored under `digest`."""

    offset: int
    size: int
    digest: str


class MetricSeries(View):
    """Every logged step of one metric, in step order; `truncated` when a limit cut the series."""

    key: str
    steps: list[int]
    values: list[WireFloat]
    truncated: bool = False


class DatasetVersionView(View):
    namespace: str
    name: str
    version: str
    kind: str | None = None
    size: int | None = None
    uri: str | None = None
    created_at: datetime | None = None
    format: str | None = None
    framework: str | None = None
    meta: dict[str, Any] | None = None
    """The artifact's metadata as logged (schema/preview/stats, metrics/parameters/framework), bounded."""


class DatasetView(View):
    namespace: str
    name: str
    kind: str | None = None
    versions: list[DatasetVersionView] = Field(default_factory=list)


class JobView(View):
    namespace: str
    name: str
    versions: list[JobVersionView] = Field(default_factory=list)
    run_count: int = 0


class Direction(StrEnum):
    UPSTREAM = "UPSTREAM"
    DOWNSTREAM = "DOWNSTREAM"


@dataclass(slots=True)
class LineageNode:
    """A run or a dataset version in a lineage answer.

    A plain slots dataclass, not a pydantic model: a walk answers thousands of nodes and edges, and
    a pydantic object each (even unvalidated) cost ~1.5 us against ~0.4 us (docs/BENCHMARKS.md, round
    10). `LineageGraph` still validates them from dicts and serialises them as before. Not frozen (a
    frozen dataclass sets each field through `object.__setattr__`, several times the cost): copy with
    `dataclasses.replace`, never change one in place."""

    id: str
    kind: NodeKind
    hop: int
    label: str
    props: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LineageEdge:
    """A READ, WROTE or ATTEMPTED edge, always pointing from the run to the dataset version (PROV
    used/generated). ATTEMPTED: an output of a run that has not COMPLETEd (shown on request only).
    A plain slots dataclass, as `LineageNode`."""

    source: str
    target: str
    kind: str
    binding: str = ""


class LineageGraph(View):
    root: str
    direction: Direction
    depth: int
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    partial: bool = False
    cut_reasons: list[str] = Field(default_factory=list)
    cut_codes: list[str] = Field(default_factory=list)
    """The reason code of each of `cut_reasons`, in the same order."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def partial_reasons(self) -> list[str]:
        """What cut the walk, each once: `depth`, `fanOut`, `time`, `nodes`."""
        return sorted(set(self.cut_codes))
