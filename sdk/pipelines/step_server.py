"""The step server's own process (`python -m provgraph.pipelines.step_server IN_FD OUT_FD`):
single-threaded, with the SDK imported once, forking one child per step, one step ahead (the spare
opens the event transport while the previous step runs). See `worker.py`."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import json
import os
import select
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provgraph.events.settings import Settings


def _spare(job_r: int, out_fd: int, fds: tuple[int, ...], settings: Settings) -> None:
    """A step's process, forked before its step is known: it opens what every step uses (the event
    transport, the artifact store) while the pipeline is busy elsewhere, then waits for its job (end
    of input without one: the pipeline is over)."""
    # First undo the server's signal plumbing: a fork keeps the wakeup fd, and once its pipe is closed
    # that descriptor number is reused (by SQLite's WAL file), into which every signal would then
    # write its number: SIGCHLD from any subprocess the step starts, SIGINT from Ctrl-C.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's forwarding is not the step's
    for fd in fds:
        os.close(fd)
    # a process the step forks must not hold the report pipe open after the step ends (the
    # pipeline waits for its end); an exec'd one does not inherit it (non-inheritable)
    os.register_at_fork(after_in_child=lambda: os.close(out_fd))
    from provgraph._backend import Backend
    from provgraph._stored_request import exec_request
    from provgraph.runtimes.process import write_recorded_result, write_result

    backend = Backend(settings)
    with contextlib.suppress(Exception):  # a failure here, the step meets again and reports
        backend.transport, backend.artifacts  # noqa: B018 - opened now, off the step's path
    line = b""
    try:
        while data := os.read(job_r, 65536):
            line += data
    except KeyboardInterrupt:  # Ctrl-C before this process had a step: nothing to record or say
        os._exit(130)
    if not line:
        os._exit(0)
    job = json.loads(line)
    code = 1
    try:
        try:
            write_result(exec_request(job["digest"], backend), Path(job["result"]))
        finally:
            backend.close()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported as the exit status
        if not write_recorded_result(exc, Path(job["result"])):  # else the supervisor records FAIL with this
            import traceback

            traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        _report(out_fd, job["id"], code)  # the pipeline goes on while this process is torn down
        os._exit(code)


def _report(out_fd: int, job_id: int, code: int) -> None:
    """One line, well under PIPE_BUF, so it is written whole even beside other children's lines."""
    os.write(out_fd, json.dumps({"id": job_id, "exit": code}).encode() + b"\n")


def _precompile(path: str, code_hash: str, entrypoint: str) -> None:
    """Compile a step's snapshot here, once, so every step forked from here that runs it starts
    with it compiled. Only compiled, never run; the file is read and checked against `code_hash`
    (edited since the step was prepared: left to the step, which loads its snapshot by hash)."""
    from provgraph._code import precompile_snapshot

    try:
        source = Path(path).read_bytes()
        if "sha256:" + hashlib.sha256(source).hexdigest() == code_hash:
            precompile_snapshot(source, code_hash, entrypoint)
    except Exception:  # noqa: BLE001 - whatever is wrong with it, the step meets it and reports it
        return


def _forward(signum: int, children: dict[int, int | None]) -> None:
    """SIGTERM (the pipeline's process was terminated): every running step is terminated too, and
    records its own ABORT; the server goes on reaping them and reporting their ends."""
    for pid, job_id in list(children.items()):
        if job_id is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def serve(in_fd: int, out_fd: int) -> None:
    # Preload what every step needs, so each forks ready to run: the SDK, the pipeline DSL its
    # module may import, and the environment digest its runtime facet records.

    import fsspec.implementations.chained
    import fsspec.implementations.local  # noqa: F401

    import provgraph._stored_request
    import provgraph.events.transport.factory
    import provgraph.graph.factory
    import provgraph.pipelines
    import provgraph.runtimes.process  # noqa: F401
    from provgraph._environment import packages_digest
    from provgraph.events.settings import load_settings

    packages_digest()
    settings = load_settings()  # the environment is the server's for every step: read it once
    importlib.import_module(f"provgraph.events.transport.{settings.transport}")  # each step opens one
    tempfile.gettempdir()  # probes the candidate folders by writing a file in each, on first use

    os.set_inheritable(out_fd, False)  # passed to this process inheritable; steps' subprocesses must not get it
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int | None] = {}
    """Process -> the step it runs (None: the spare, waiting for one)."""
    signal.signal(signal.SIGTERM, lambda signum, _: _forward(signum, children))
    signal.set_wakeup_fd(wake_w)
    compiled: set[str] = set()

    def fork_spare() -> tuple[int, int]:
        job_r, job_w = os.pipe()
        gc.freeze()  # a child's collections then skip the server's objects: no copy-on-write of them
        pid = os.fork()
        if pid == 0:
            os.close(job_w)
            _spare(job_r, out_fd, (in_fd, wake_r, wake_w), settings)
        os.close(job_r)
        children[pid] = None
        return pid, job_w

    spare: tuple[int, int] | None = fork_spare()
    buffer = b""
    open_input = True
    while open_input or children:
        ready, _, _ = select.select([in_fd, wake_r] if open_input else [wake_r], [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 4096)
        if in_fd in ready:
            data = os.read(in_fd, 65536)
            open_input = bool(data)
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                job = json.loads(line)
                if "source" in job and job["source"]["code_hash"] not in compiled:
                    compiled.add(job["source"]["code_hash"])
                    _precompile(**job["source"])
                assert spare is not None  # there is one while input is open
                pid, job_w = spare
                children[pid] = job["id"]
                with contextlib.suppress(BrokenPipeError):  # it died waiting: reaped and reported below
                    os.write(job_w, line)
                os.close(job_w)
                spare = fork_spare()  # the next step's process, forked while this one runs
        if not open_input and spare is not None:
            os.close(spare[1])  # no more steps: it ends
            spare = None
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            job_id = children.pop(pid, None)
            if job_id is not None:  # also when the step's process reported: it may have died before it could
                _report(out_fd, job_id, os.waitstatus_to_exitcode(status))
            elif spare is not None and pid == spare[0]:  # killed while it waited: the next step needs another
                os.close(spare[1])
                spare = fork_spare()


if __name__ == "__main__":
    try:
        serve(int(sys.argv[1]), int(sys.argv[2]))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the pipeline's process reports it
        sys.exit(130)
