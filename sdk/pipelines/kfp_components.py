"""The functions of a compiled KFP pipeline's components (`kfp_engine.py`). KFP copies each
function's source into the package and runs it in the task's container, so each one only imports
provgraph and calls `kfp_steps` (no `from __future__ import annotations`: KFP reads the types)."""


def provgraph_start(pipeline: str, params: str, project: str) -> str:
    from provgraph.pipelines.kfp_steps import start

    return start(pipeline, params, project)


def provgraph_step(pipeline: str, params: str, pipeline_run: str, name: str, upstream: list, cache: bool) -> str:  # type: ignore[type-arg]
    from provgraph.pipelines.kfp_steps import step

    return step(pipeline, params, pipeline_run, name, upstream, cache)


def provgraph_finish(pipeline: str, params: str, pipeline_run: str, steps: list) -> str:  # type: ignore[type-arg]
    from provgraph.pipelines.kfp_steps import finish

    return finish(pipeline, params, pipeline_run, steps)
