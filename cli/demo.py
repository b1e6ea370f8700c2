"""`provgraph demo`: a three-step pipeline on real files, the two questions lineage answers, a
reproduction, then a rerun with one changed input that reuses what did not change."""

from __future__ import annotations

from typing import Annotated

import typer

from provgraph import demo_flow
from provgraph._backend import Backend
from provgraph._reproduce import reproduce
from provgraph.cli._app import app, console, settings
from provgraph.cli.lineage import render
from provgraph.cli.pipeline import print_finish, print_plan, print_step
from provgraph.cli.reproduce import print_verdict
from provgraph.cli.runs import print_result
from provgraph.graph.ids import NodeId
from provgraph.graph.views import Direction
from provgraph.pipelines.engine import run_pipeline
from provgraph.pipelines.plan import plan_rerun


@app.command("demo")
def demo_cmd(
    project: Annotated[str, typer.Option(help="Project to record the demo runs in")] = "demo",
) -> None:
    """Run the prepare -> train -> evaluate pipeline on the embedded default, show the lineage, then
    change one input and rerun it."""
    cfg = settings()
    backend = Backend(cfg)
    data_dir = cfg.home.with_name(cfg.home.name + "-demo")  # beside, not inside: the home is never an input
    data_dir.mkdir(parents=True, exist_ok=True)
    raw = data_dir / "raw.csv"
    raw.write_bytes(demo_flow.make_raw_csv())
    console.print(
        f"[bold]provgraph demo[/] — events in {cfg.events_db if cfg.transport == 'sqlite' else cfg.transport}"
        f", artifacts in {cfg.artifact_url}\n"
    )
    try:
        console.print("[bold]pipeline demo_pipeline[/] (prepare -> train -> evaluate)")
        first = run_pipeline(
            demo_flow.demo_pipeline, {"raw": str(raw)}, project=project, backend=backend, progress=print_step
        )
        print_finish(first)
        trained = first.steps["train"]
        model_ref = trained.outputs["model"]
        graph = backend.graph()
        console.print("\n[bold]What produced this model?[/]")
        version = model_ref.rpartition("@")[2]
        console.print(
            render(graph.lineage(NodeId.dataset(f"store://{project}", "model", version), Direction.UPSTREAM, depth=6))
        )
        console.print("\n[bold]What did the raw dataset feed?[/]")
        console.print(render(graph.lineage(NodeId.dataset("file", str(raw)), Direction.DOWNSTREAM, depth=6)))
        console.print(
            f"\n[bold]Can the model be reproduced from the graph alone?[/]  (provgraph reproduce {trained.run_id})"
        )
        again = reproduce(trained.run_id or "", backend=backend)
        print_result(again)
        print_verdict(again)

        console.print(f"\n[bold]One input changes[/] (a test row of {raw.name}): what must run again?")
        raw.write_bytes(demo_flow.change_a_test_row(raw.read_bytes()))
        plan = plan_rerun(first.run_id, backend)
        print_plan(plan)
        rerun = run_pipeline(plan.spec, plan.params, project=project, backend=backend, progress=print_step)
        print_finish(rerun)
    finally:
        backend.close()
    console.print(
        f"\nnext: [bold]provgraph pipeline show {rerun.run_id}[/], [bold]provgraph stale {raw}[/], "
        f"[bold]provgraph reproduce {first.run_id}[/], [bold]provgraph lineage {model_ref}[/]"
    )
    console.print(
        f"web UI: [bold]provgraph serve --insecure-local[/], then open http://127.0.0.1:{cfg.api_port}/"
        f"#/run/{rerun.run_id}"
    )
