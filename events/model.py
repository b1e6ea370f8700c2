"""OpenLineage 2-0-2 `RunEvent` as pydantic v2 models, with typed slots for the facets provgraph uses.

Facets not known here are kept as plain JSON (`extra="allow"`), so events from any OpenLineage
producer round-trip unchanged. Python names are snake_case; the wire is camelCase via aliases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from provgraph.events.facets import (
    ArtifactDatasetFacet,
    CachedFromRunFacet,
    CodeJobFacet,
    DatasetVersionDatasetFacet,
    ErrorMessageRunFacet,
    EventRunFacet,
    LabelsRunFacet,
    LogsRunFacet,
    MetricsRunFacet,
    ParamsRunFacet,
    ParentRunFacet,
    ReproducesRunFacet,
    RequestedRunFacet,
    ResultsRunFacet,
    RuntimeRunFacet,
    SourceCodeLocationJobFacet,
    TagRunFacet,
    TombstoneRunFacet,
)
from provgraph.events.facets.base import PRODUCER, WireModel
from provgraph.events.facets.values import storable_problem
from provgraph.events.states import UNVERSIONED as UNVERSIONED
from provgraph.events.states import EventType as EventType
from provgraph.events.states import RunState as RunState
from provgraph.events.states import order_key as order_key

OPENLINEAGE_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
KNOWN_JOB = "known_job"
"""Validation-context key of a `Job` already found storable (see `RunEvent._storable`)."""
SCREENED = "storable_json"
"""Validation-context key set (True) when the JSON being validated passed `values.json_is_storable`."""
CHECKED = "storable_parts"
"""Validation-context key set (True) by a producer that built the event from parts it walked itself
(`RunEmitter`: the facets and datasets it was given; the rest it made from checked strings)."""


class RunFacets(WireModel):
    parent: ParentRunFacet | None = Field(default=None, alias="parent")
    error_message: ErrorMessageRunFacet | None = Field(default=None, alias="errorMessage")
    params: ParamsRunFacet | None = Field(default=None, alias="provgraph_params")
    results: ResultsRunFacet | None = Field(default=None, alias="provgraph_results")
    metrics: MetricsRunFacet | None = Field(default=None, alias="provgraph_metrics")
    runtime: RuntimeRunFacet | None = Field(default=None, alias="provgraph_runtime")
    event: EventRunFacet | None = Field(default=None, alias="provgraph_event")
    reproduces: ReproducesRunFacet | None = Field(default=None, alias="provgraph_reproduces")
    requested: RequestedRunFacet | None = Field(default=None, alias="provgraph_requested")
    labels: LabelsRunFacet | None = Field(default=None, alias="provgraph_labels")
    cached_from: CachedFromRunFacet | None = Field(default=None, alias="provgraph_cachedFrom")
    logs: LogsRunFacet | None = Field(default=None, alias="provgraph_logs")
    tag: TagRunFacet | None = Field(default=None, alias="provgraph_tag")
    tombstone: TombstoneRunFacet | None = Field(default=None, alias="provgraph_tombstone")


class JobFacets(WireModel):
    code: CodeJobFacet | None = Field(default=None, alias="provgraph_code")
    source_code_location: SourceCodeLocationJobFacet | None = Field(default=None, alias="sourceCodeLocation")


class DatasetFacets(WireModel):
    version: DatasetVersionDatasetFacet | None = Field(default=None, alias="version")
    artifact: ArtifactDatasetFacet | None = Field(default=None, alias="provgraph_artifact")


class Run(WireModel):
    run_id: str = Field(min_length=1)
    facets: RunFacets = Field(default_factory=RunFacets)


class Job(WireModel):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    facets: JobFacets = Field(default_factory=JobFacets)


class Dataset(WireModel):
    """An input or output dataset; `version` is its content hash when provgraph saw the bytes."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    facets: DatasetFacets = Field(default_factory=DatasetFacets)
    input_facets: dict[str, Any] | None = None
    output_facets: dict[str, Any] | None = None

    @property
    def binding(self) -> str:
        """The name the run bound this dataset to (`provgraph_binding`), or "" when not given."""
        for facets in (self.input_facets, self.output_facets):
            name = (facets or {}).get("provgraph_binding", {}).get("name")
            if isinstance(name, str):
                return name
        return ""

    @property
    def version(self) -> str:
        return self.facets.version.dataset_version if self.facets.version else UNVERSIONED


class RunEvent(WireModel):
    event_type: EventType = EventType.OTHER
    event_time: datetime
    run: Run
    job: Job
    inputs: list[Dataset] = Field(default_factory=list)
    outputs: list[Dataset] = Field(default_factory=list)
    producer: str = PRODUCER
    schema_url: str = Field(default=OPENLINEAGE_SCHEMA_URL, alias="schemaURL")

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        """OpenLineage times carry an offset; a naive time is taken as UTC, then normalised to UTC,
        which must stay within years 1..9999 (Python's, and so both stores', range)."""
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is outside years 1..9999 once converted to UTC") from None

    @model_validator(mode="after")
    def _storable(self, info: ValidationInfo) -> RunEvent:
        """Anything accepted here can be serialised and projected by every store (see `facets.values`).
        A producer that sends many events of one job passes its `Job` as `KNOWN_JOB` in the validation
        context once an event with it was accepted: frozen and holding only strings, it is not walked again.
        JSON that passed `json_is_storable` (`SCREENED`, set by `serde.loads`) holds nothing the walk refuses,
        nor does an event whose producer walked its parts (`CHECKED`)."""
        context = info.context or {}
        if context.get(SCREENED) is True or context.get(CHECKED) is True:
            return self
        known = context.get(KNOWN_JOB)
        problem = storable_problem(self, known=known if known is self.job else None)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def seq(self) -> int:
        """Per-run sequence number; 0 for producers that do not send `provgraph_event`."""
        return self.run.facets.event.seq if self.run.facets.event else 0

    @property
    def root_run_id(self) -> str:
        """The run at the root of this run's chain: the Kafka key that keeps a chain in one partition."""
        parent = self.run.facets.parent
        if parent is None:
            return self.run.run_id
        return parent.root.run.run_id if parent.root else parent.run.run_id

    @property
    def order_key(self) -> str:
        """Sortable key ordering a run's events: sequence number first, then event time.

        Projections keep, for each run-level property, the value from the event with the greatest
        key, so the result does not depend on arrival order or duplication. The sequence number is
        12 digits wide; larger ones (up to 2^63-1) are "~" and 19 digits, which sorts after every
        12-digit key, so keys already stored keep their order.
        """
        return order_key(self.seq, self.event_time.isoformat(timespec="microseconds"))
