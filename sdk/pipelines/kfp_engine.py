"""The `kfp` engine: compile a provgraph pipeline into a Kubeflow Pipelines v2 package whose tasks run
each step through provgraph (`kfp_steps.py`), and run such a package with `kfp.local`.

The DAG is built at compile time with the given params (a fan-out's width depends on them) and
checked as the local engine checks it; the package then holds a `start` task, one task per step
(upstream steps' states as its `upstream` input, which is also the KFP DAG edge) and a `finish`
task after all steps. KFP's own caching is off: provgraph decides from the graph, as locally.
Every task needs provgraph and the pipeline's file (at the compiled path) in its image, and the
`PROVGRAPH_*` settings of the store it records to in its environment.

`kfp` is an optional dependency (`pip install kfp`); the tests use a venv from scripts/kfp-venv.sh.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from provgraph._backend import Backend
from provgraph.events.errors import ConfigError, ProvgraphError
from provgraph.events.model import RunState
from provgraph.pipelines import kfp_components
from provgraph.pipelines.engine import PipelineResult, Started, StepState, start_request
from provgraph.pipelines.kfp_steps import unpack
from provgraph.runtimes.process import settings_env

DEFAULT_IMAGE = "python:3.11"


def _kfp() -> Any:
    try:
        import kfp
    except ImportError as exc:
        raise ConfigError("the kfp engine needs the Kubeflow Pipelines SDK: pip install kfp") from exc
    return kfp


def compile_pipeline(
    spec: str,
    params: dict[str, Any] | None,
    out: Path,
    *,
    project: str,
    cache: bool = True,
    image: str = DEFAULT_IMAGE,
    backend: Backend,
) -> Path:
    """Write the KFP v2 package (YAML) of pipeline `spec` (`path/file.py:function`) built with `params`."""
    _compile(spec, params, out, project=project, cache=cache, image=image, backend=backend)
    return out


def _compile(
    spec: str, params: dict[str, Any] | None, out: Path, *, project: str, cache: bool, image: str, backend: Backend
) -> Started:
    kfp = _kfp()
    dsl = kfp.dsl
    spec = _absolute(spec)
    started = start_request(spec, params, project, backend)
    order = started.pipe.validate()
    args = {"pipeline": spec, "params": json.dumps(started.pipe.params, sort_keys=True, default=str)}

    def component(func: Any) -> Any:
        return dsl.component(func, base_image=image, install_kfp_package=False)

    start_c = component(kfp_components.provgraph_start)
    step_c = component(kfp_components.provgraph_step)
    finish_c = component(kfp_components.provgraph_finish)

    def body() -> Any:
        start = start_c(project=started.request.project, **args).set_display_name("start")
        start.set_caching_options(False)
        tasks: dict[str, Any] = {}
        for name in order:
            upstream = [tasks[u].output for u in sorted(started.pipe.steps[name].upstream)]
            task = step_c(pipeline_run=start.output, name=name, upstream=upstream, cache=cache, **args)
            tasks[name] = task.set_display_name(name).set_caching_options(False)
        end = finish_c(pipeline_run=start.output, steps=[tasks[n].output for n in order], **args)
        return end.set_display_name("finish").set_caching_options(False).output

    body.__name__ = started.pipe.name
    body.__annotations__ = {"return": str}  # KFP reads real types; this module's annotations are strings
    built = dsl.pipeline(name=_kfp_name(started.pipe.name), description=f"provgraph pipeline {spec}")(body)
    out.parent.mkdir(parents=True, exist_ok=True)
    kfp.compiler.Compiler().compile(built, str(out))
    return started


def run_local(
    spec: str,
    params: dict[str, Any] | None,
    *,
    project: str,
    cache: bool = True,
    backend: Backend,
) -> PipelineResult:
    """Compile the pipeline and run the package with `kfp.local`'s subprocess runner (tasks in this
    Python, recording to this backend's store)."""
    kfp = _kfp()
    from kfp import local

    work = Path(tempfile.mkdtemp(prefix="provgraph-kfp-"))
    package = work / "pipeline.yaml"
    started = _compile(spec, params, package, project=project, cache=cache, image=DEFAULT_IMAGE, backend=backend)
    os.environ.update(settings_env(backend.settings))  # the tasks inherit this environment
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(work / "root"))
    try:
        task = kfp.components.load_component_from_file(str(package))()
    except RuntimeError as exc:  # kfp.local: a task failed (provgraph reports step failures, so: infrastructure)
        raise ProvgraphError(f"the KFP run failed: {exc}") from exc
    summary = json.loads(unpack(task.output))
    steps = {s["name"]: StepState(**{"upstream": [], **s}) for s in summary["steps"]}
    state = RunState(summary["state"])
    failed = [s for s in steps.values() if s.state == RunState.FAIL.value]
    error = f"step {failed[0].name} ended FAIL: {failed[0].reason}" if failed else None
    return PipelineResult(summary["run_id"], started.request.project, started.pipe.name, state, steps, error)


def _absolute(spec: str) -> str:
    path, sep, func = spec.rpartition(":")
    if not sep or not os.path.isfile(path):
        raise ConfigError(f"pipeline {spec!r} must be path/to/file.py:function (an existing file)")
    return f"{os.path.abspath(path)}:{func}"


def _kfp_name(name: str) -> str:
    """KFP pipeline names: lowercase letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "pipeline"
