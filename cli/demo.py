"""`provgraph demo`: a three-step flow on real files, then the two questions lineage answers."""

from __future__ import annotations

from typing import Annotated

import typer

from provgraph import demo_flow
from provgraph._backend import Backend
from provgraph._reproduce import reproduce
from provgraph._run import run
from provgraph.cli._app import app, console, settings
from provgraph.cli.lineage import render
from provgraph.cli.reproduce import print_verdict
from provgraph.cli.runs import print_result
from provgraph.graph.ids import NodeId
from provgraph.graph.views import Direction


@app.command("demo")
def demo_cmd(
    project: Annotated[str, typer.Option(help="Project to record the demo runs in")] = "demo",
) -> None:
    """Run prepare -> train -> evaluate on the embedded default and show the lineage."""
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

    prep = run(demo_flow.prepare, inputs={"raw": str(raw)}, project=project, backend=backend).raise_for_state()
    print_result(prep)
    trained = run(
        demo_flow.train,
        params={"shrink": 0.1},
        inputs={"train_set": prep.outputs["train_set"]},
        project=project,
        backend=backend,
    ).raise_for_state()
    print_result(trained)
    evaluated = run(
        demo_flow.evaluate,
        inputs={"model": trained.outputs["model"], "test_set": prep.outputs["test_set"]},
        project=project,
        backend=backend,
    ).raise_for_state()
    print_result(evaluated)
    backend.transport.flush()

    graph = backend.graph()
    model_ref = trained.outputs["model"]
    version = model_ref.rpartition("@")[2]
    console.print("\n[bold]What produced this model?[/]")
    console.print(
        render(graph.lineage(NodeId.dataset(f"store://{project}", "model", version), Direction.UPSTREAM, depth=6))
    )
    console.print("\n[bold]What did the raw dataset feed?[/]")
    console.print(render(graph.lineage(NodeId.dataset("file", str(raw)), Direction.DOWNSTREAM, depth=6)))
    console.print(
        f"\n[bold]Can the model be reproduced from the graph alone?[/]  (provgraph reproduce {trained.run_id})"
    )
    again = reproduce(trained.run_id, backend=backend)
    print_result(again)
    print_verdict(again)
    console.print(
        f"\nnext: [bold]provgraph runs[/], [bold]provgraph show {trained.run_id}[/], "
        f"[bold]provgraph lineage {model_ref}[/]"
    )
    console.print(
        f"web UI: [bold]provgraph serve --insecure-local[/], then open http://127.0.0.1:{cfg.api_port}/"
        f"#/run/{trained.run_id}"
    )
    backend.close()
