"""Runs a stored request in a fresh interpreter: `python -m provgraph.cli exec sha256:<request>`.

Used for every reproduction on the local runtime (from the SDK, the CLI and the API), so the
handler never runs inside the caller: it gets its own hash seed, its own imports and, from the API,
a clean environment. The request is stored content-addressed and the run is recorded REQUESTED at
once, exactly like a Kubernetes submission; the child writes its `RunResult` as JSON to a file the
caller names. A child that dies without reporting an end (killed, crashed, its snapshot would not
import) is reported FAIL, verdict FAILED, by whoever waits for it (`supervise`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from provgraph._backend import Backend
from provgraph._emitter import RunEmitter
from provgraph._execution import RunResult, failed_verdict, recorded_result
from provgraph.events.facets import CodeJobFacet, ReproducesRunFacet, RequestedRunFacet, RuntimeRunFacet
from provgraph.events.model import RunState
from provgraph.events.request import RunRequest, dumps_request
from provgraph.events.settings import ENV_PREFIX, Settings
from provgraph.events.transport.base import Transport

SUPERVISOR_SEQ = 10**12 - 1
"""Sequence of the FAIL a supervisor reports for a dead child: after any event the child could have sent."""

RUN_SETTINGS = (
    "home",
    "project",
    "transport",
    "store",
    "artifact_store",
    "snapshot_inputs_max_bytes",
    "kafka_bootstrap_servers",
    "kafka_topic_prefix",
    "kafka_partitions",
    "kafka_delivery_timeout_s",
    "s3_endpoint_url",
    "mlrun_compat",
    "secrets_file",
)
"""The settings a run needs; API tokens, Neo4j credentials and Kubernetes settings stay with the caller."""

STORE_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")
"""Passed on only when the artifact store is S3: the run must write its outputs there."""

STDERR_TAIL = 2000


def settings_env(settings: Settings) -> dict[str, str]:
    """`PROVGRAPH_*` variables that make the child load exactly these settings (and no config file)."""
    env = {f"{ENV_PREFIX}CONFIG": ""}  # set but empty: no config file
    for name in RUN_SETTINGS:
        value = getattr(settings, name)
        if value is not None:
            env[ENV_PREFIX + name.upper()] = str(value)
    return env


def clean_env(settings: Settings) -> dict[str, str]:
    """A minimal environment: PATH, HOME, the run's settings, the artifact store's credentials; nothing else."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    if settings.artifact_url.startswith(("s3://", "s3a://")):
        env.update({k: os.environ[k] for k in STORE_CREDENTIALS if k in os.environ})
    env.update(settings_env(settings))
    return env


@dataclasses.dataclass
class Child:
    """A started `provgraph exec` and what is needed to report on it."""

    request: RunRequest
    process: subprocess.Popen[bytes]
    result_file: Path
    stderr_file: Path | None
    code: CodeJobFacet


def launch(
    request: RunRequest,
    code: CodeJobFacet,
    backend: Backend,
    transport: Transport,
    *,
    env: dict[str, str],
    cwd: str | None = None,
    capture_stderr: bool = False,
    python: Path | None = None,
) -> Child:
    """Store the request, record the run REQUESTED, and start `provgraph exec` on it in a new session
    (with `python`, an isolated environment's interpreter, instead of this one)."""
    request = request.model_copy(
        update={
            "runtime": "local",
            "git_commit": code.git_commit,
            "git_dirty": code.git_dirty,
            "artifact_store": backend.settings.artifact_url,
        }
    )
    digest = announce(request, code, backend, transport, RuntimeRunFacet(kind="local", resources=request.resources))
    work = Path(tempfile.mkdtemp(prefix="provgraph-exec-"))
    result_file = work / "result.json"
    stderr_file = work / "stderr.log" if capture_stderr else None
    with open(stderr_file or os.devnull, "wb") as err:
        process = subprocess.Popen(
            [str(python or sys.executable), "-P", "-m", "provgraph.cli", "exec", digest, "--result", str(result_file)],
            env=env,
            cwd=cwd or str(work),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if capture_stderr else None,
            stderr=err if capture_stderr else None,
            start_new_session=True,
            close_fds=True,
        )
    return Child(request, process, result_file, stderr_file, code)


def announce(
    request: RunRequest, code: CodeJobFacet, backend: Backend, transport: Transport, runtime: RuntimeRunFacet
) -> str:
    """Store the request content-addressed and emit its REQUESTED event; returns the request's hash."""
    digest, _ = backend.artifacts.put_bytes(dumps_request(request))
    p = request.parent  # a pipeline step is CHILD_OF its pipeline run from its first event on
    emitter = RunEmitter(
        transport,
        run_id=request.run_id,
        namespace=request.project,
        job_name=request.job,
        code=code,
        parent=(p.run.run_id, p.job.namespace, p.job.name) if p is not None else None,
    )
    emitter.requested(request.params, runtime, RequestedRunFacet(request_hash=digest, runtime=request.runtime))
    transport.flush()
    return digest


def supervise(child: Child, transport: Transport) -> RunResult:
    """Wait for the child; its result, or FAIL (verdict FAILED) reported here when it left none."""
    returncode = child.process.wait()
    stderr = child.stderr_file.read_bytes()[-STDERR_TAIL:] if child.stderr_file and child.stderr_file.is_file() else b""
    return settle(child.request, returncode, child.result_file, stderr, transport)


def settle(request: RunRequest, returncode: int, result_file: Path, stderr: bytes, transport: Transport) -> RunResult:
    """The result a finished run process left in `result_file` (its folder is removed), or FAIL
    reported here when it left none (also a pipeline step's process)."""
    result = _read_result(result_file)
    shutil.rmtree(result_file.parent, ignore_errors=True)
    if result is not None and result.state.is_terminal:
        return result
    how = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    message = f"the run's process ended ({how}) without reporting its end"
    tail = stderr.decode(errors="replace").strip()
    message += f": {tail}" if tail else ""
    verdict = failed_verdict(request)
    emitter = RunEmitter(transport, run_id=request.run_id, namespace=request.project, job_name=request.job, code=None)
    emitter.fail(message, reproduces=verdict, seq=SUPERVISOR_SEQ)
    transport.flush()
    return RunResult(
        request.run_id,
        request.project,
        request.job,
        RunState.FAIL,
        error=message,
        verdict=verdict,
        position=emitter.position(),
    )


def supervise_in_background(child: Child, transport: Transport) -> threading.Thread:
    """`supervise` in a daemon thread (the API returns at once; this reports a child that dies)."""
    thread = threading.Thread(
        target=supervise, args=(child, transport), name=f"supervise-{child.request.run_id}", daemon=True
    )
    thread.start()
    return thread


def write_result(result: RunResult, path: Path) -> None:
    """The child's side: its RunResult as JSON, written then renamed so a reader never sees half."""
    body = dataclasses.asdict(result)
    body["verdict"] = result.verdict.model_dump(mode="json", by_alias=True) if result.verdict else None
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def write_recorded_result(exc: BaseException, path: Path) -> bool:
    """The child's side when the run ended by `exc` (ABORT on a signal, FAIL on `sys.exit`): the end
    `execute` recorded, written as its result so `settle` does not record "ended without reporting"
    over it; whether there was one."""
    recorded = recorded_result(exc)
    if recorded is not None:
        write_result(recorded, path)
    return recorded is not None


def _read_result(path: Path) -> RunResult | None:
    try:
        body: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    verdict = body.pop("verdict", None)
    try:
        state = RunState(body.pop("state", None))
        return RunResult(**body, state=state, verdict=ReproducesRunFacet.model_validate(verdict) if verdict else None)
    except (TypeError, ValueError):
        return None
