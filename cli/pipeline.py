"""`provgraph pipeline run|runs|show|rerun` and `provgraph stale`: pipelines of tracked runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from provgraph._backend import Backend
from provgraph.cli._app import app, console, err_console, parse_pairs, settings
from provgraph.cli._resolve import resolve_run
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.model import RunState
from provgraph.graph.contract import RunFilter
from provgraph.graph.views import RunView
from provgraph.pipelines.engine import PipelineResult, StepState, run_pipeline
from provgraph.pipelines.kfp_engine import DEFAULT_IMAGE
from provgraph.pipelines.plan import MAYBE, REUSE, RUN, Plan, execute_plan, plan_rerun, stale
from provgraph.pipelines.status import StepStatus, is_pipeline_run, steps_of

pipeline_app = typer.Typer(help="Run pipelines (DAGs of tracked runs) and look at them.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")

ENGINES = ("local", "kubernetes", "kfp")
STEP_STYLE = {"COMPLETE": "green", "CACHED": "blue", "FAIL": "red", "SKIPPED": "yellow", "ABORT": "yellow"}
ACTION_STYLE = {REUSE: "blue", RUN: "bold", MAYBE: "cyan", "skip": "yellow"}

Params = Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value (JSON values allowed)")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Execute every step, even where an identical run exists")]


def _engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not available here (engines: {', '.join(ENGINES)})")


def print_step(state: StepState) -> None:
    style = STEP_STYLE.get(state.state, "white")
    extra = f"  from {state.cached_from}" if state.cached_from else ""
    took = f"  {state.duration_s:.2f}s" if state.duration_s is not None else ""
    console.print(f"  [{style}]{state.state:<8}[/] {state.name}{took}{extra}")
    if state.reason and state.state != "CACHED":
        console.print(f"           {state.reason}", highlight=False)


def print_finish(result: PipelineResult) -> None:
    style = "green" if result.state == RunState.COMPLETE else "red"
    reused = sum(1 for s in result.steps.values() if s.state == "CACHED")
    ran = sum(1 for s in result.steps.values() if s.run_id and s.state != "CACHED")
    console.print(
        f"pipeline run [bold]{result.run_id}[/]  {result.project}/{result.name}  [{style}]{result.state}[/]"
        f"  ({ran} executed, {reused} reused from cache)"
    )
    if result.state != RunState.COMPLETE:
        err_console.print(f"[bold red]error:[/] {result.error}", highlight=False)
        raise typer.Exit(1)


@pipeline_app.command("run")
def run_cmd(
    target: Annotated[str, typer.Argument(help="The pipeline: path/to/file.py:function")],
    param: Params = None,
    project: Annotated[str | None, typer.Option(help="Project; default from settings")] = None,
    engine: Annotated[
        str,
        typer.Option(help="local | kubernetes (each step a Job; needs the controller) | kfp (run with kfp.local)"),
    ] = "local",
    no_cache: NoCache = False,
    parallelism: Annotated[int | None, typer.Option(min=1, help="Steps at once (default: setting)")] = None,
    image: Annotated[str | None, typer.Option(help="Container image of the steps (kubernetes)")] = None,
) -> None:
    """Run a pipeline; steps identical to an earlier run are reused (CACHED) unless --no-cache."""
    _engine(engine)
    backend = Backend(settings())
    try:
        console.print(f"pipeline [bold]{target}[/]")
        if engine == "kubernetes":
            _submit(target, parse_pairs(param, "param", json_values=True), project, not no_cache, image, backend)
            return
        if engine == "kfp":
            from provgraph.pipelines.kfp_engine import run_local

            result = run_local(
                target,
                parse_pairs(param, "param", json_values=True),
                project=project or backend.settings.project,
                cache=not no_cache,
                backend=backend,
            )
            for state in result.steps.values():  # kfp.local reports at the end
                print_step(state)
        else:
            result = run_pipeline(
                target,
                parse_pairs(param, "param", json_values=True),
                project=project,
                cache=not no_cache,
                parallelism=parallelism,
                backend=backend,
                progress=print_step,
            )
    finally:
        backend.close()
    print_finish(result)


@pipeline_app.command("compile")
def compile_cmd(
    target: Annotated[str, typer.Argument(help="The pipeline: path/to/file.py:function")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the KFP package (YAML)")],
    param: Params = None,
    project: Annotated[str | None, typer.Option(help="Project; default from settings")] = None,
    image: Annotated[str, typer.Option(help="Image of every task: provgraph and the pipeline's file")] = DEFAULT_IMAGE,
    no_cache: NoCache = False,
) -> None:
    """Compile a pipeline into a Kubeflow Pipelines v2 package whose tasks run each step through provgraph."""
    from provgraph.pipelines.kfp_engine import compile_pipeline

    backend = Backend(settings())
    try:
        compile_pipeline(
            target,
            parse_pairs(param, "param", json_values=True),
            output,
            project=project or backend.settings.project,
            cache=not no_cache,
            image=image,
            backend=backend,
        )
    finally:
        backend.close()
    console.print(f"wrote {output}")


def _submit(
    target: str, params: dict[str, object], project: str | None, cache: bool, image: str | None, backend: Backend
) -> None:
    from provgraph.pipelines.remote import submit_pipeline

    if not image:
        raise ConfigError("the kubernetes engine needs the steps' container image: pass --image")
    print_requested(submit_pipeline(target, params, backend=backend, image=image, project=project, cache=cache))


def print_requested(result: PipelineResult) -> None:
    console.print(
        f"pipeline run [bold]{result.run_id}[/]  {result.project}/{result.name}  REQUESTED"
        f"  ({len(result.steps)} steps; the pipeline controller runs them as Jobs)"
    )


@pipeline_app.command("runs")
def runs_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """Pipeline runs, newest first."""
    backend = Backend(settings())
    try:
        graph = backend.graph()
        found: list[RunView] = []
        after: str | None = None
        while len(found) < limit:
            page = graph.runs(RunFilter(project=project), first=200, after=after)
            found += [r for r in page if is_pipeline_run(r)]
            if len(page) < 200:
                break
            after = page[-1].run_id
    finally:
        backend.close()
    if not found:
        console.print("no pipeline runs yet: try `provgraph demo`")
        return
    table = Table("run id", "project", "pipeline", "state", "started", "steps")
    for r in found[:limit]:
        steps = r.results.get("steps")
        table.add_row(
            r.run_id,
            r.namespace,
            r.job_name,
            str(r.state),
            r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "-",
            str(len(steps)) if isinstance(steps, list) else "-",
        )
    console.print(table)


@pipeline_app.command("show")
def show_cmd(run_id: Annotated[str, typer.Argument(help="A pipeline run id")]) -> None:
    """The pipeline run's DAG: each step's state, duration, cache hit and upstream steps."""
    backend = Backend(settings())
    try:
        graph = backend.graph()
        run = graph.run(resolve_run(graph, run_id))
        if run is None or not is_pipeline_run(run):
            raise NotFound(f"no pipeline run {run_id}")
        steps = steps_of(run, graph.children(run.run_id))
    finally:
        backend.close()
    console.print(f"pipeline run [bold]{run.run_id}[/]  {run.namespace}/{run.job_name}  {run.state}")
    console.print(_steps_table(steps))


def _steps_table(steps: list[StepStatus]) -> Table:
    table = Table("step", "state", "duration", "after", "run id", "cached from / reason")
    for s in steps:
        style = STEP_STYLE.get(s.state, "white")
        table.add_row(
            s.name,
            f"[{style}]{s.state}[/]",
            f"{s.duration_s:.2f}s" if s.duration_s is not None else "-",
            ", ".join(s.upstream) or "-",
            s.run_id or "-",
            s.cached_from or s.reason or "",
        )
    return table


def print_plan(plan: Plan) -> None:
    console.print(f"plan to rerun pipeline run [bold]{plan.run_id}[/] ({plan.spec})")
    for s in plan.steps:
        style = ACTION_STYLE.get(s.action, "white")
        detail = f"  (from {s.cached_from})" if s.cached_from else ""
        console.print(f"  [{style}]{s.action:<5}[/] {s.name}{detail}")
        for why in s.reasons:
            console.print(f"          {why}", highlight=False)


@pipeline_app.command("rerun")
def rerun_cmd(
    run_id: Annotated[str, typer.Argument(help="The pipeline run to run again")],
    param: Params = None,
    plan: Annotated[bool, typer.Option("--plan", help="Only print which steps would run and why")] = False,
    no_cache: NoCache = False,
) -> None:
    """Run a pipeline again with its recorded params (overridden by -p): only what changed executes;
    after a failure it resumes from the failed step."""
    backend = Backend(settings())
    try:
        the_plan = plan_rerun(
            resolve_run(backend.graph(), run_id),
            backend,
            parse_pairs(param, "param", json_values=True),
            cache=not no_cache,
        )
        print_plan(the_plan)
        if plan:
            return
        result = execute_plan(the_plan, backend, cache=not no_cache, progress=print_step)
    finally:
        backend.close()
    if result.state == RunState.REQUESTED:
        print_requested(result)
        return
    print_finish(result)


@app.command("stale")
def stale_cmd(
    target: Annotated[str, typer.Argument(help="A changed dataset: a path, URL or store://project/key[@version]")],
) -> None:
    """Every run and artifact downstream of an older version of TARGET: what is now out of date."""
    backend = Backend(settings())
    try:
        found = stale(target, backend)
    finally:
        backend.close()
    console.print(f"{found.dataset} is now {found.current}")
    if not found.stale_runs and not found.stale_datasets:
        console.print("nothing downstream is stale")
        return
    for node in found.stale_runs:
        console.print(f"  stale run       {node.label}  ({node.id})", highlight=False)
    for node in found.stale_datasets:
        console.print(f"  stale artifact  {node.label}  ({node.id})", highlight=False)
