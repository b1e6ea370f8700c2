"""`provgraph run`, `runs`, `show`: start runs and look at them."""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from provgraph.cli import debug_requested, fail, one_line
from provgraph.cli._app import INCLUDE_DELETED, app, console, err_console, parse_pairs, settings, short
from provgraph.cli._consistency import CONSISTENT_WITH, wait
from provgraph.cli._resolve import NAME, NAMESPACE, check_target, resolve, resolve_run
from provgraph.events.errors import NotFound
from provgraph.events.facets.values import encode_float
from provgraph.events.states import RunState
from provgraph.graph import run_query
from provgraph.graph.contract import RunFilter
from provgraph.graph.factory import open_store
from provgraph.graph.tombstones import Deleted, deleted, tombstone_mark
from provgraph.graph.views import MetricSeries, ReproductionView, RunView

if TYPE_CHECKING:  # running handlers loads the SDK; listing runs does not (start-up time)
    from provgraph._execution import RunResult

RUN_STATES = tuple(RunState)
STATE_STYLE = {
    RunState.COMPLETE: "green",
    RunState.FAIL: "red",
    RunState.ABORT: "yellow",
    RunState.RUNNING: "cyan",
    RunState.START: "cyan",
    RunState.LOST: "magenta",
}


@app.command("run")
def run_cmd(
    handler: Annotated[
        str, typer.Argument(help="path/to/file.py:function, hub://\\[source/]name\\[:version] or function://name")
    ],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value (JSON values allowed)")] = None,
    input: Annotated[list[str] | None, typer.Option("--input", "-i", help="name=URI (path, s3://, store://…)")] = None,
    project: Annotated[str | None, typer.Option(help="Project (job namespace); default from settings")] = None,
    name: Annotated[str | None, typer.Option(help="Job name; default the function name")] = None,
    runtime: Annotated[str, typer.Option(help="local or kubernetes")] = "local",
    image: Annotated[str | None, typer.Option(help="Container image (kubernetes runtime)")] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", help="Kubernetes Secret whose keys get_secret reads (kubernetes runtime; repeat)"),
    ] = None,
    isolated: Annotated[
        bool | None,
        typer.Option("--isolated/--not-isolated", help="Run a hub function in a cached venv with its requirements"),
    ] = None,
    hyperparam: Annotated[
        list[str] | None, typer.Option("--hyperparam", "-H", help="name=[v1,v2] (JSON list): one child run per value")
    ] = None,
    strategy: Annotated[str, typer.Option(help="grid, list or random (with -H)")] = "grid",
    max_iterations: Annotated[int | None, typer.Option(min=1, help="At most this many child runs (with -H)")] = None,
    selector: Annotated[str | None, typer.Option(help="max.<result> or min.<result>: the best child (with -H)")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The outcome as one JSON object, with the run's consistency `position`")
    ] = False,
) -> None:
    """Run a handler as a tracked run and print what it recorded."""
    from provgraph._backend import Backend
    from provgraph._lifeline import Terminated
    from provgraph._run import run as run_handler

    cfg = settings()
    hyper = parse_pairs(hyperparam, "hyperparam", json_values=True) if hyperparam else None
    backend = Backend(cfg)
    # with --json, stdout is the outcome alone: what the handler prints goes to stderr (and the run's log)
    printed = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with printed:
            result = run_handler(
                handler,
                parse_pairs(param, "param", json_values=True),
                parse_pairs(input, "input", json_values=False),
                param_texts=parse_pairs(param, "param", json_values=False),  # a `str` parameter's, as typed
                project=project,
                name=name,
                runtime=runtime,
                image=image,
                secrets=secret,
                backend=backend,
                isolated=isolated,
                hyperparams=hyper,
                strategy=strategy,
                max_iterations=max_iterations,
                selector=selector,
            )
    except SystemExit as exc:
        if isinstance(exc, Terminated):  # a signal: the run recorded its ABORT, the process ends as signalled
            raise
        code = exc.code if isinstance(exc.code, int) and exc.code else 1
        said = f"the handler's code called sys.exit({exc.code!r}) before returning (see `provgraph runs --state fail`)"
        fail(one_line(said), code)
    finally:
        backend.close()
    if as_json:
        print(json.dumps(result_json(result)))
    else:
        print_result(result)
    if result.state == RunState.FAIL:
        raise typer.Exit(1)


def result_json(result: RunResult) -> dict[str, object]:
    """What `run --json` prints: the outcome, and `position` to pass to `--consistent-with`/`consistentWith`."""
    return {
        "run_id": result.run_id,
        "project": result.project,
        "job": result.job,
        "state": result.state.value,
        "results": result.results,
        "outputs": result.outputs,
        "metrics": {k: encode_float(v) for k, v in result.metrics.items()},
        "error": result.error,
        "position": result.position,
    }


def print_result(result: RunResult) -> None:
    style = STATE_STYLE.get(result.state, "white")
    console.print(f"run [bold]{result.run_id}[/]  {result.project}/{result.job}  [{style}]{result.state}[/]")
    for key, value in result.results.items():
        console.print(escape(f"  result  {key} = {json.dumps(value)}"), highlight=False)
    for key, uri in result.outputs.items():
        console.print(escape(f"  output  {key} -> {uri}"), highlight=False)
    if result.error:
        err_console.print(f"[bold red]error:[/] {one_line(result.error)}", highlight=False)
        if result.traceback and debug_requested():
            err_console.print(escape(result.traceback.rstrip()), highlight=False)
        elif result.traceback:
            err_console.print(f"  the traceback: `provgraph show {result.run_id}` (or --debug)", highlight=False)


def _state(value: str | None) -> str | None:
    """A run state in any case; anything else is a usage error rather than an empty list."""
    if value is None or value.upper() in RUN_STATES:
        return value.upper() if value else None
    raise typer.BadParameter(f"{value!r} is not a run state; use one of {', '.join(RUN_STATES)}")


@app.command("runs")
def runs_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    job: Annotated[str | None, typer.Option(help="Only this job")] = None,
    state: Annotated[str | None, typer.Option(help=", ".join(RUN_STATES) + " (any case)", callback=_state)] = None,
    since: Annotated[datetime | None, typer.Option(help="Started at or after (ISO time)")] = None,
    where: Annotated[
        str | None,
        typer.Option(help='A run query: "metrics.accuracy > 0.9 and params.lr = 0.01 and started >= 2026-03-01"'),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run, one per line")] = False,
    consistent_with: Annotated[str | None, CONSISTENT_WITH] = None,
    include_deleted: Annotated[bool, INCLUDE_DELETED] = False,
) -> None:
    """List runs, newest first; `--where` filters on params, metrics, labels, state, job, project and time."""
    query, conditions = run_query.parse(where) if where is not None else (RunFilter(), ())
    options = RunFilter(project=project, job=job, state=RunState(state) if state else None, since=since)
    where_ = replace(run_query.merge(options, query), conditions=conditions)
    graph = wait(open_store(cfg := settings()), consistent_with, cfg).fresh(include_deleted=include_deleted)
    rows = graph.runs(where_, first=limit)
    gone = deleted(graph) if include_deleted else Deleted()  # (the live store lists none)
    if as_json:
        for r in rows:
            row = r.model_dump(mode="json", exclude=_NOT_LISTED)
            tomb = gone.run(r.run_id, r.namespace, r.started_at)
            print(json.dumps({**row, "deleted": tombstone_mark(tomb)} if tomb else row))
        return
    if not rows:
        filtered = any(v is not None for v in (project, job, state, since, where))
        console.print("no runs match" if filtered else "no runs yet: try `provgraph demo`")
        return
    table = Table("run id", "project", "job", "state", "started", "code", "results")
    for r in rows:
        style = STATE_STYLE.get(r.state, "white")
        table.add_row(
            r.run_id,
            r.namespace,
            r.job_name,
            f"[{style}]{r.state}[/]" + (" [red]deleted[/]" if gone.run(r.run_id, r.namespace, r.started_at) else ""),
            r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "-",
            short(r.code_hash, 8),
            _brief(r.results),
        )
    console.print(table)


def _steps(series: MetricSeries, shown: int = 6) -> str:
    """`step=value` for every step, or the first and last few of a long series."""
    pairs = [f"{step}={json.dumps(encode_float(v))}" for step, v in zip(series.steps, series.values, strict=True)]
    if len(pairs) > shown:
        pairs = [*pairs[: shown // 2], f"… ({len(pairs) - shown} more)", *pairs[-(shown // 2) :]]
    return " ".join(pairs) + (" (truncated)" if series.truncated else "")


def _brief(values: dict[str, object], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in values.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command("show")
def show_cmd(
    target: Annotated[
        str | None, typer.Argument(help="A run id or prefix, or any node (as `lineage` takes it)")
    ] = None,
    namespace: Annotated[str | None, NAMESPACE] = None,
    name: Annotated[str | None, NAME] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object (with `facets` by node id)")] = False,
    consistent_with: Annotated[str | None, CONSISTENT_WITH] = None,
    include_deleted: Annotated[bool, INCLUDE_DELETED] = False,
) -> None:
    """Everything recorded about one run (every step of its metrics too), or a job, or a dataset and
    its versions' schemas."""
    from provgraph.cli.show import facets_json, print_run_facets, run_facets, show_node  # (`runs` draws no facets)

    check_target(target, namespace, name)
    store = wait(open_store(cfg := settings()), consistent_with, cfg).fresh(include_deleted=include_deleted)
    node = resolve(store, target, namespace, name)
    if node.kind != "run":
        show_node(store, node, as_json)
        return
    run = store.run(node.key[0])
    if run is None:
        raise NotFound(f"no run {target!r} (see `provgraph runs`)")
    found = run_facets(store, run)
    history = store.metric_history(run.run_id)
    tomb = deleted(store).run(run.run_id, run.namespace, run.started_at) if include_deleted else None
    if as_json:
        view = run.model_dump(mode="json")
        view["metric_history"] = [s.model_dump(mode="json") for s in history]
        print(json.dumps({**view, "facets": facets_json(found)} | ({"deleted": tombstone_mark(tomb)} if tomb else {})))
    else:
        print_run(run, history)
        if tomb:
            console.print(f"  [red]deleted[/]   {tomb.at.isoformat()} by {escape(tomb.by)} (run {tomb.run_id})")
        print_run_facets(run, found)


def print_run(run: RunView, history: Sequence[MetricSeries] = ()) -> None:
    style = STATE_STYLE.get(run.state, "white")
    console.print(f"[bold]run {run.run_id}[/]  {run.namespace}/{run.job_name}  [{style}]{run.state}[/]")
    console.print(f"  started   {run.started_at}   ended {run.ended_at or '-'}")
    jv = run.job_version
    if jv is not None:
        git = f"  git {jv.git_commit[:10]}{' (dirty)' if jv.git_dirty else ''}" if jv.git_commit else ""
        console.print(f"  code      {jv.code_hash}  {jv.entrypoint}{git}")
    rt = run.runtime
    if rt:
        console.print(
            f"  runtime   {rt.get('kind')} on {rt.get('host')}  python {rt.get('python')}"
            + (f"  image {rt['image']}" if rt.get("image") else "")
        )
    shown = ("params", run.params), ("results", run.results), ("metrics", run.metrics), ("labels", run.labels)
    for title, values in (*shown, ("notes", run.annotations)):
        if values:
            console.print(f"  {title:<9} " + ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items()))
    for series in history:
        if len(series.steps) > 1:
            console.print(f"  {'history':<9} {series.key}: {_steps(series)}")
    for title, refs in (("input", run.inputs), ("output", run.outputs)):
        for ref in refs:
            mark = "  [yellow]attempted (the run did not complete: not written)[/]" if ref.attempted else ""
            console.print(
                f"  {title:<9} {ref.binding or '-'}: {ref.namespace} {ref.name}  {short(ref.version, 16)}{mark}"
            )
    if run.completeness is not None and not run.completeness.complete:
        missing = (
            f" (missing events {', '.join(map(str, run.completeness.missing))})" if run.completeness.missing else ""
        )
        console.print(f"  [yellow]incomplete[/] {', '.join(run.completeness.reasons)}{missing}")
    if rt.get("code_unknown"):
        console.print(f"  [yellow]code      unknown[/]: {rt['code_unknown']}")
    if run.reproduces:
        _print_reproduction(run.reproduces)
    if run.error:
        console.print(f"  [red]error[/]     {escape(run.error)}")
    if run.traceback:
        console.print("  traceback")
        console.print(escape(textwrap.indent(run.traceback.rstrip(), "    ")), soft_wrap=True)


_NOT_LISTED = {"inputs", "outputs", "job_version", "completeness"}
"""What a listing does not read (`show --json` has it): left out, rather than shown empty."""


def _print_reproduction(rep: ReproductionView) -> None:
    console.print(f"  reproduces {rep.original_run_id}: [bold]{rep.verdict}[/]")
    for diff in rep.differences:
        console.print(f"    differs: {json.dumps(diff)}")
    for key, env in rep.environment.items():
        same = "same" if env.get("same") else "[yellow]changed[/]"
        console.print(f"    {key:<16} {same}  original {env.get('original')}  reproduced {env.get('reproduced')}")
    snapshots = rep.snapshot_inputs
    console.print(f"    inputs read from snapshots: {', '.join(snapshots) if snapshots else 'none'}")


@app.command("abort")
def abort_cmd(
    run_id: Annotated[str, typer.Argument(help="Run id, unique prefix or run:<id>")],
    reason: Annotated[str | None, typer.Option(help="Why; recorded in the run's error")] = None,
    wait: Annotated[float, typer.Option(min=0, help="Seconds a live local process gets to end itself")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON")] = False,
) -> None:
    """End a run that is still going or LOST: its live local process gets SIGTERM, else an ABORT is recorded."""
    from provgraph._abort import abort
    from provgraph._backend import Backend

    backend = Backend(settings())
    try:
        done = abort(resolve_run(backend.graph(), run_id), backend, reason=reason, wait_s=wait)
    finally:
        backend.close()
    if as_json:
        print(json.dumps({"run_id": done.run_id, "state": done.state, "how": done.how, "message": done.message}))
        return
    how = "ended itself after SIGTERM" if done.how == "signal" else "ABORT recorded"
    console.print(f"run [bold]{done.run_id}[/]  [yellow]{done.state}[/]  {how}: {done.message}")


@app.command("exec")
def exec_cmd(
    request: Annotated[str, typer.Argument(help="Hash of a stored run request (sha256:…)")],
    result_file: Annotated[
        Path | None, typer.Option("--result", help="Write the run's result here as JSON instead of printing it")
    ] = None,
) -> None:
    """Execute a stored run request (what a Kubernetes pod and a reproduction run); exits 1 if the handler fails."""
    from provgraph._backend import Backend
    from provgraph._stored_request import exec_request

    backend = Backend(settings())
    try:
        result = exec_request(request, backend)
    except BaseException as exc:
        if result_file is not None:
            from provgraph.runtimes.process import write_recorded_result

            write_recorded_result(exc, result_file)
        raise
    finally:
        backend.close()
    if result_file is not None:
        from provgraph.runtimes.process import write_result

        write_result(result, result_file)
    else:
        print_result(result)
    if result.state != RunState.COMPLETE:
        raise typer.Exit(1)
