"""The standard OpenLineage facets an event carries, as facts both stores keep and views they answer.

Read from any producer's events (the facets arrive as plain JSON: `extra` of the event model), so
every value is checked for its type here and bounded in size; a malformed part of a facet is left
out, never the event. What is kept (a facet value is canonical JSON text in both stores):

    owner (node id)               facet                   value
    dataset:<ns>:<name>@<version> schema                  [{name, type, description}], nested fields as a.b
    job:<ns>:<name>               sql                     {query, dialect}
    job:<ns>:<name>               sourceCodeLocation      {type, url, repoUrl, path, version, tag, branch}
    job:<ns>:<name>               jobType                 {processingType, integration, jobType}
    run:<id>                      errorMessage            {message, programmingLanguage, stackTrace}
    run:<id>                      dataQualityAssertions   one row per (dataset, assertion, column): success
    dataset:<ns>:<name>           columnLineage           the output's column edges (also `ColumnEdgeRow`s)

Order independence: every row carries an order key and the greatest wins. Run facets are keyed by
the event's order key (sequence first, like the run's other properties); job and dataset facets by
event time first, so the latest event describes the job or the dataset whichever run sent it. A
digest of the value ends each key, so two values never tie.

Column lineage is per dataset, not per version: the latest `columnLineage` facet of an output
replaces that output's column edges, one sent with a COMPLETE event before any other (declared is
not written: a run that later FAILs, or never ends, does not replace what a COMPLETE run said).
Input fields in another project's `store://` namespace are not recorded (a run may not claim
another project's artifacts feed its outputs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import Field

from provgraph.events.admission import store_project
from provgraph.events.model import EventType
from provgraph.graph.ids import dataset_node_id, job_node_id, parse_node_id, run_node_id
from provgraph.graph.projection import canonical_json, facts, written
from provgraph.graph.views import View

if TYPE_CHECKING:
    from provgraph.events.model import Dataset, RunEvent

MAX_NAME = 1024
"""Characters of a field, dataset or assertion name; longer names are left out (a cut name is another name)."""
MAX_TEXT = 4096
"""Characters of a type, description, URL…; longer ones are cut and end with `…`."""
MAX_SQL = 256 * 1024
MAX_MESSAGE = 16 * 1024
MAX_STACK_TRACE = 64 * 1024
"""Characters of a stack trace; a longer one keeps its end (where the failure is), after `…`."""
MAX_SCHEMA_FIELDS = 2000
MAX_NESTING = 8
MAX_ASSERTIONS = 1000
"""Assertions kept per dataset of an event."""
MAX_COLUMN_FIELDS = 2000
"""Output fields of one `columnLineage` facet."""
MAX_INPUT_FIELDS = 200
"""Input fields of one output field."""
MAX_TRANSFORMATIONS = 16

SCHEMA, SQL, SOURCE, JOB_TYPE, ERROR, QUALITY, COLUMNS = (
    "schema",
    "sql",
    "sourceCodeLocation",
    "jobType",
    "errorMessage",
    "dataQualityAssertions",
    "columnLineage",
)


class FacetRow(NamedTuple):
    owner: str
    name: str
    part: str
    """"" for a facet held once per owner; the JSON key of one assertion for data quality."""
    value: str
    okey: str


class ColumnEdgeRow(NamedTuple):
    src_dataset: str
    src_field: str
    dst_dataset: str
    dst_field: str
    transformations: str


class ColumnLineageRow(NamedTuple):
    """The column edges of one output dataset, replacing its stored ones when `okey` is greater."""

    facet: FacetRow
    edges: tuple[ColumnEdgeRow, ...]


# -- reading facets out of an event ---------------------------------------------------------------


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_NAME else None


def _strings(raw: Any, keys: Sequence[str], limit: int = MAX_TEXT) -> dict[str, str | None] | None:
    if not isinstance(raw, Mapping):
        return None
    out = {k: _text(raw.get(k), limit) for k in keys}
    return out if any(v is not None for v in out.values()) else None


def _extra(model: Any, name: str) -> Any:
    return (model.model_extra or {}).get(name)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _schema_fields(raw: Any, prefix: str, depth: int, out: list[dict[str, str | None]]) -> None:
    if not isinstance(raw, list) or depth > MAX_NESTING:
        return
    for item in raw:
        if len(out) >= MAX_SCHEMA_FIELDS:
            return
        if not isinstance(item, Mapping) or _name(item.get("name")) is None:
            continue
        name = prefix + item["name"]
        if len(name) > MAX_NAME:
            continue
        out.append({"name": name, "type": _text(item.get("type")), "description": _text(item.get("description"))})
        _schema_fields(item.get("fields"), name + ".", depth + 1, out)


def _assertions(d: Dataset) -> Iterator[tuple[str, str | None, bool]]:
    for facets in (d.input_facets, d.output_facets, d.facets.model_extra):
        raw = (facets or {}).get(QUALITY)
        items = raw.get("assertions") if isinstance(raw, Mapping) else None
        for item in (items if isinstance(items, list) else [])[:MAX_ASSERTIONS]:
            if not isinstance(item, Mapping) or not isinstance(item.get("success"), bool):
                continue
            assertion, column = _name(item.get("assertion")), item.get("column")
            if assertion is not None and (column is None or _name(column) is not None):
                yield assertion, column, item["success"]


def _transformations(raw: Any, legacy: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in (raw if isinstance(raw, list) else [])[:MAX_TRANSFORMATIONS]:
        kept = _strings(t, ("type", "subtype", "description"))
        if kept is not None:
            masking = t.get("masking")
            out.append({**kept, "masking": masking if isinstance(masking, bool) else None})
    if not out and raw is None:  # columnLineage 1-0-0: one description for the output field
        kept = _strings(
            {"type": legacy.get("transformationType"), "description": legacy.get("transformationDescription")},
            ("type", "description"),
        )
        if kept is not None:
            out.append({"type": kept["type"], "subtype": None, "description": kept["description"], "masking": None})
    return out


def _column_edges(output: Dataset, project: str) -> tuple[ColumnEdgeRow, ...] | None:
    raw = _extra(output.facets, COLUMNS)
    fields = raw.get("fields") if isinstance(raw, Mapping) else None
    if not isinstance(fields, Mapping):
        return None
    dst = dataset_node_id(output.namespace, output.name)
    edges: dict[tuple[str, str, str], ColumnEdgeRow] = {}
    for dst_field, spec in list(fields.items())[:MAX_COLUMN_FIELDS]:
        if _name(dst_field) is None or not isinstance(spec, Mapping) or not isinstance(spec.get("inputFields"), list):
            continue
        for item in spec["inputFields"][:MAX_INPUT_FIELDS]:
            if not isinstance(item, Mapping):
                continue
            ns, name, field = (_name(item.get(k)) for k in ("namespace", "name", "field"))
            if ns is None or name is None or field is None:
                continue
            if store_project(ns) not in (None, project):
                continue
            src = dataset_node_id(ns, name)
            steps = canonical_json(_transformations(item.get("transformations"), spec))
            edges[(src, field, dst_field)] = ColumnEdgeRow(src, field, dst, dst_field, steps)
    return tuple(sorted(edges.values()))


_DATASET_FACETS = frozenset((SCHEMA, QUALITY, COLUMNS))
_JOB_FACETS = frozenset((SQL, JOB_TYPE))


def _carries_facets(event: RunEvent) -> bool:
    """Cheap test first: most events (every SDK event without an error) carry none of these."""
    jf = event.job.facets
    if event.run.facets.error_message is not None or jf.source_code_location is not None:
        return True
    if jf.model_extra and not _JOB_FACETS.isdisjoint(jf.model_extra):
        return True
    for datasets in (event.inputs, event.outputs):
        for d in datasets:
            for facets in (d.facets.model_extra, d.input_facets, d.output_facets):
                if facets and not _DATASET_FACETS.isdisjoint(facets):
                    return True
    return False


def facet_rows(event: RunEvent) -> tuple[list[FacetRow], list[ColumnLineageRow]]:
    """The facet rows and column-lineage replacements one event brings."""
    if not _carries_facets(event):
        return [], []
    f = facts(event)
    time_key = event.event_time.replace(tzinfo=None).isoformat(timespec="microseconds")
    rows: list[FacetRow] = []

    def add(owner: str, name: str, value: Any, *, by_time: bool, part: str = "", rank: str = "") -> FacetRow:
        text = canonical_json(value)
        key = f"{rank}{time_key}|{f.order_key}" if by_time else f.order_key
        row = FacetRow(owner, name, part, text, f"{key}|{_digest(text)}")
        rows.append(row)
        return row

    job_id = job_node_id(f.namespace, f.job_name)
    jf = event.job.facets
    sql = _extra(jf, SQL)
    if isinstance(sql, Mapping) and isinstance(sql.get("query"), str):
        add(job_id, SQL, {"query": _text(sql["query"], MAX_SQL), "dialect": _text(sql.get("dialect"))}, by_time=True)
    source = jf.source_code_location
    if source is not None:
        raw_source = source.model_dump(mode="json", by_alias=True)
        kept = _strings(raw_source, ("type", "url", "repoUrl", "path", "version", "tag", "branch"))
        if kept is not None:
            add(job_id, SOURCE, kept, by_time=True)
    job_type = _strings(_extra(jf, JOB_TYPE), ("processingType", "integration", "jobType"), MAX_NAME)
    if job_type is not None:
        add(job_id, JOB_TYPE, job_type, by_time=True)

    run_id = run_node_id(f.run_id)
    error = event.run.facets.error_message
    if error is not None:
        trace = error.stack_trace
        if trace is not None and len(trace) > MAX_STACK_TRACE:
            trace = "…" + trace[-(MAX_STACK_TRACE - 1) :]
        add(
            run_id,
            ERROR,
            {
                "message": _text(error.message, MAX_MESSAGE),
                "programmingLanguage": _text(error.programming_language, MAX_NAME),
                "stackTrace": trace,
            },
            by_time=False,
        )
    outputs = written(event)
    for datasets, refs in ((event.inputs, f.reads), (outputs, f.writes)):
        for d, ref in zip(datasets, refs, strict=True):
            fields: list[dict[str, str | None]] = []
            raw = _extra(d.facets, SCHEMA)
            if isinstance(raw, Mapping):
                _schema_fields(raw.get("fields"), "", 0, fields)
                add(ref.node_id, SCHEMA, fields, by_time=True)
            dataset_id = dataset_node_id(d.namespace, d.name)
            for assertion, column, success in _assertions(d):
                add(run_id, QUALITY, success, by_time=False, part=canonical_json([dataset_id, assertion, column]))
    columns = []
    for d in outputs:
        edges = _column_edges(d, f.namespace)
        if edges is not None:
            completed = "1|" if event.event_type == EventType.COMPLETE else "0|"
            edge_rows = [e._asdict() for e in edges]
            facet = add(dataset_node_id(d.namespace, d.name), COLUMNS, edge_rows, by_time=True, rank=completed)
            rows.pop()  # kept with its edges, which replace the dataset's stored ones together
            columns.append(ColumnLineageRow(facet, edges))
    return rows, columns


def fold(events: Iterable[RunEvent]) -> tuple[list[FacetRow], list[ColumnLineageRow]]:
    """The facet rows of a batch, one per (owner, name, part): the greatest order key wins."""
    best: dict[tuple[str, str, str], FacetRow] = {}
    columns: dict[str, ColumnLineageRow] = {}
    for event in events:
        rows, cols = facet_rows(event)
        for r in rows:
            old = best.get(r[:3])
            if old is None or r.okey > old.okey:
                best[r[:3]] = r
        for c in cols:
            old_c = columns.get(c.facet.owner)
            if old_c is None or c.facet.okey > old_c.facet.okey:
                columns[c.facet.owner] = c
    return sorted(best.values()), sorted(columns.values())


# -- views -------------------------------------------------------------------------------------------


class SchemaFieldView(View):
    name: str
    type: str | None = None
    description: str | None = None


class SqlView(View):
    query: str
    dialect: str | None = None


class SourceCodeLocationView(View):
    type: str | None = None
    url: str | None = None
    repo_url: str | None = None
    path: str | None = None
    version: str | None = None
    tag: str | None = None
    branch: str | None = None


class JobTypeView(View):
    processing_type: str | None = None
    integration: str | None = None
    job_type: str | None = None


class ErrorView(View):
    message: str | None = None
    programming_language: str | None = None
    stack_trace: str | None = None


class AssertionView(View):
    dataset: str
    """The dataset's node id (`dataset:<ns>:<name>`)."""
    assertion: str
    column: str | None = None
    success: bool


class Facets(View):
    """What one owner (run, job or dataset version) carries; empty fields when its events had none."""

    schema_fields: list[SchemaFieldView] | None = Field(default=None, alias="schema")
    sql: SqlView | None = None
    source_code_location: SourceCodeLocationView | None = None
    job_type: JobTypeView | None = None
    error: ErrorView | None = None
    data_quality: list[AssertionView] = Field(default_factory=list)


def _camel_to_snake(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"".join(f"_{c.lower()}" if c.isupper() else c for c in k): v for k, v in raw.items()}


def facet_views(rows: Iterable[tuple[str, str, str, str]]) -> dict[str, Facets]:
    """(owner, name, part, value) rows as `Facets` per owner."""
    found: dict[str, dict[str, Any]] = {}
    for owner, name, part, value in sorted(rows):
        data, slot = json.loads(value), found.setdefault(owner, {"data_quality": []})
        if name == SCHEMA:
            slot["schema"] = [SchemaFieldView(**v) for v in data]
        elif name == SQL:
            slot["sql"] = SqlView(**data)
        elif name == SOURCE:
            slot["source_code_location"] = SourceCodeLocationView(**_camel_to_snake(data))
        elif name == JOB_TYPE:
            slot["job_type"] = JobTypeView(**_camel_to_snake(data))
        elif name == ERROR:
            slot["error"] = ErrorView(**_camel_to_snake(data))
        elif name == QUALITY:
            dataset, assertion, column = json.loads(part)
            slot["data_quality"].append(
                AssertionView(dataset=dataset, assertion=assertion, column=column, success=data)
            )
    return {owner: Facets.model_validate(slot) for owner, slot in found.items()}


# -- column lineage -------------------------------------------------------------------------------------


class TransformationView(View):
    type: str | None = None
    subtype: str | None = None
    description: str | None = None
    masking: bool | None = None


class ColumnNode(View):
    id: str
    dataset: str
    """The dataset's node id (`dataset:<ns>:<name>`)."""
    field: str
    hop: int


class ColumnEdge(View):
    """Always from an input column to the output column derived from it, whatever the walk's direction."""

    source: str
    target: str
    transformations: list[TransformationView] = Field(default_factory=list)


class ColumnLineageGraph(View):
    root: str
    direction: str
    depth: int
    nodes: list[ColumnNode]
    edges: list[ColumnEdge]
    partial: bool = False
    partial_reasons: list[str] = Field(default_factory=list)


def column_namespace(dataset: str) -> str:
    """The namespace of a column's dataset id (what a scope decides visibility by)."""
    return parse_node_id(dataset).key[0]
