"""Every top-level command: the module that defines it and the line `provgraph --help` shows for it.

`provgraph --help` reads only this table, and a command's module is imported only when that command
runs (`_app.LazyGroup`), so starting the CLI costs typer and rich, not every command's imports.

To add a command: define it in a module of `provgraph.cli` (`@app.command("name")`, or
`app.add_typer(sub_app, name="name")` for a group, `app` from `provgraph.cli._app`), then add one line
here, in the order `--help` lists it: `"name": ("module", "the first paragraph of its help")`.
tests/test_cli.py checks this table against what the modules define (names, modules and help).
"""

from __future__ import annotations

ROOT_HELP = "Track every run, explain every result, reproduce it from the graph."
"""What `provgraph --help` says provgraph is (the root group's help)."""
VERSION_HELP = "Print the version and exit."

COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("admin", "Drop the lineage graph and rebuild it by replaying every event from the log."),
    "get": ("artifacts", "Download any logged version of an artifact, verified against its content hash."),
    "gc": (
        "delete",
        "Remove artifact-store bytes that no live (non-deleted) version, code snapshot or log references.",
    ),
    "lineage": (
        "lineage",
        "Walk the lineage graph (or, with --column, the column lineage) from TARGET and print it as a tree.",
    ),
    "stale": ("pipeline", "Every run and artifact downstream of an older version of TARGET: what is now out of date."),
    "run": ("runs", "Run a handler as a tracked run and print what it recorded."),
    "runs": (
        "runs",
        "List runs, newest first; `--where` filters on params, metrics, labels, state, job, project and time.",
    ),
    "show": (
        "runs",
        "Everything recorded about one run (every step of its metrics too), or a job, or a dataset and\n"
        "its versions' schemas.",
    ),
    "abort": (
        "runs",
        "End a run that is still going or LOST: its live local process gets SIGTERM, else an ABORT is recorded.",
    ),
    "exec": (
        "runs",
        "Execute a stored run request (what a Kubernetes pod and a reproduction run); exits 1 if the handler fails.",
    ),
    "reproduce": ("reproduce", "Re-run RUN_ID with its exact code, params and inputs, and compare the outputs."),
    "demo": (
        "demo",
        "Run the prepare -> train -> evaluate pipeline on the embedded default, show the lineage, then\n"
        "change one input and rerun it.",
    ),
    "diff": ("diff", "Why B differs from A: the earliest changed code, params, input content or environment upstream."),
    "doctor": (
        "doctor",
        "List incomplete runs: a gap in their events, no START, no end long after their last event, or\n"
        "fewer events than their producer declared.",
    ),
    "logs": (
        "logs",
        "Print what a run wrote on stdout and stderr and what it logged (the traceback is in `show`).",
    ),
    "compare": (
        "registry",
        "Runs side by side: params, metrics, results, input/output hashes, code, environment; differences marked.",
    ),
    "search": ("search", "Find jobs, runs and datasets by name; prints their node ids."),
    "serve": (
        "serve",
        "Serve the web UI at /, GraphQL (GraphiQL) at /graphql and OpenLineage ingest at POST /api/v1/lineage.",
    ),
    "launcher": (
        "services",
        "Run the Kubernetes launcher: run requests from Kafka become Jobs; failed or deleted Jobs are reported.",
    ),
    "pipeline-controller": (
        "services",
        "Run the pipeline controller: kubernetes-engine pipeline runs advance on run events (steps become Jobs).",
    ),
    "projector": (
        "services",
        "Run the graph projector: the Kafka lineage topic into Neo4j, refusals to the dead-letter topic.",
    ),
    "tag": (
        "tags",
        "Move an alias of an artifact to a version; recorded as an event (who, when). Read it back as "
        "store://p/key:ALIAS.",
    ),
    "delete": (
        "delete",
        "Delete a run, an artifact or a project: recorded as a tombstone event, hidden from queries.",
    ),
    "pipeline": ("pipeline", "Run pipelines (DAGs of tracked runs) and look at them."),
    "function": ("function", "Registered functions: run them as function://NAME."),
    "hub": ("hub", "Function hubs in MLRun's format: hub://\\[source/]name\\[:version]."),
    "token": ("serve", "API tokens: each is scoped to one or more projects."),
    "dlq": ("services", "The dead-letter topic: records the services refused, and why."),
    "spool": ("services", "The local spool: events kept until Kafka or the HTTP endpoint accepts them."),
    "artifacts": ("tags", "Logged artifacts and models: versions, aliases, producers, consumers."),
}
