"""What `provgraph show` prints beyond a run's own record: its facets (error, data quality, the job's
SQL, type and source, its datasets' schemas), and jobs and datasets themselves."""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape

from provgraph.cli._app import console, short
from provgraph.events.errors import NotFound
from provgraph.events.states import RunState
from provgraph.graph.contract import LineageStore
from provgraph.graph.facets import Facets
from provgraph.graph.ids import NodeId, dataset_node_id, job_node_id, run_node_id
from provgraph.graph.views import DatasetVersionView, RunView

SQL_LINES = 20
"""Lines of a job's SQL `show` prints (`--json` has all of it)."""


def run_facets(store: LineageStore, run: RunView) -> dict[str, Facets]:
    """The facets of the run, its job and the dataset versions it read and wrote, by node id."""
    refs = [r.node_id for r in (*run.inputs, *run.outputs)]
    return store.facets([run_node_id(run.run_id), job_node_id(run.namespace, run.job_name), *refs])


def facets_json(found: dict[str, Facets]) -> dict[str, Any]:
    return {
        owner: f.model_dump(mode="json", by_alias=True, exclude_defaults=True) for owner, f in sorted(found.items())
    }


def print_run_facets(run: RunView, found: dict[str, Facets]) -> None:
    own = found.get(run_node_id(run.run_id), Facets())
    if own.error is not None and run.error is not None and run.state != RunState.LOST:
        if own.error.programming_language:
            console.print(f"  [red]language[/]  {escape(own.error.programming_language)}")
        if own.error.stack_trace and own.error.stack_trace != run.traceback:  # else shown as the traceback
            console.print("  [red]stack trace[/]")
            console.print(escape(own.error.stack_trace), soft_wrap=True, highlight=False)
    for a in own.data_quality:
        mark = "[green]pass[/]" if a.success else "[red]FAIL[/]"
        column = f".{a.column}" if a.column else ""
        console.print(
            f"  quality   {mark}  {escape(a.assertion)}  {escape(a.dataset.removeprefix('dataset:'))}{escape(column)}"
        )
    print_job_facets(found.get(job_node_id(run.namespace, run.job_name), Facets()))
    for ref in (*run.inputs, *run.outputs):
        fields = found.get(ref.node_id, Facets()).schema_fields
        if fields:
            console.print(
                f"  schema    {escape(ref.name)}: " + escape(", ".join(f"{s.name} {s.type or '?'}" for s in fields))
            )


def print_job_facets(f: Facets) -> None:
    if f.job_type is not None:
        t = f.job_type
        console.print("  job type  " + escape(" ".join(x for x in (t.integration, t.job_type, t.processing_type) if x)))
    if f.source_code_location is not None:
        s = f.source_code_location
        where = " ".join(f"{k} {v}" for k, v in (("branch", s.branch), ("tag", s.tag), ("version", s.version)) if v)
        console.print(f"  source    {escape(s.url or s.repo_url or '-')} {escape(s.path or '')}  {escape(where)}")
    if f.sql is not None:
        lines = f.sql.query.splitlines()
        console.print(f"  sql{f' ({f.sql.dialect})' if f.sql.dialect else ''}")
        for line in lines[:SQL_LINES]:
            console.print("    " + escape(line), soft_wrap=True, highlight=False)
        if len(lines) > SQL_LINES:
            console.print(f"    [dim]… {len(lines) - SQL_LINES} more lines (--json shows all)[/]")


def show_node(store: LineageStore, node: NodeId, as_json: bool) -> None:
    """A job (versions, run count, facets) or a dataset (versions with their schemas)."""
    if node.kind == "job":
        job = store.job(*node.key)
        if job is None:
            raise NotFound(f"no job {node}")
        facets = store.facets([str(node)]).get(str(node), Facets())
        if as_json:
            print(
                json.dumps(
                    {
                        **job.model_dump(mode="json"),
                        "facets": facets.model_dump(mode="json", by_alias=True, exclude_defaults=True),
                    }
                )
            )
            return
        console.print(f"[bold]job {escape(job.namespace)}/{escape(job.name)}[/]  {job.run_count} runs")
        for jv in job.versions:
            console.print(f"  version   {short(jv.code_hash, 16)}  {escape(jv.entrypoint or '')}")
        print_job_facets(facets)
        return
    ns, name = node.key[:2]
    dataset = store.dataset(ns, name)
    if dataset is None:
        raise NotFound(f"no dataset {node}")
    versions = [v for v in dataset.versions if node.kind == "dataset" or v.version == node.key[2]]
    if not versions:
        raise NotFound(f"no dataset version {node}")
    found = store.facets([dataset_node_id(ns, name, v.version) for v in versions])
    if as_json:
        print(json.dumps({**dataset.model_dump(mode="json"), "versions": [_version_json(v, found) for v in versions]}))
        return
    console.print(
        f"[bold]dataset {escape(ns)} {escape(name)}[/]" + (f"  ({escape(dataset.kind)})" if dataset.kind else "")
    )
    for v in versions:
        size = f"  {v.size} B" if v.size is not None else ""
        console.print(f"  version   {short(v.version, 16)}  {v.created_at or '-'}{size}")
        for s in found.get(dataset_node_id(ns, name, v.version), Facets()).schema_fields or []:
            desc = f"  {escape(s.description)}" if s.description else ""
            console.print(f"    {escape(s.name)}  {escape(s.type or '?')}{desc}")


def _version_json(v: DatasetVersionView, found: dict[str, Facets]) -> dict[str, Any]:
    fields = found.get(dataset_node_id(v.namespace, v.name, v.version), Facets()).schema_fields
    return {**v.model_dump(mode="json"), "schema": None if fields is None else [f.model_dump() for f in fields]}
