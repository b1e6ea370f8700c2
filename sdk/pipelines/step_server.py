"""The step server's own process (`python -m provgraph.pipelines.step_server IN_FD OUT_FD`):
single-threaded, with the SDK imported once, forking one child per step. See `worker.py`."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provgraph.events.settings import Settings


def _child(digest: str, result_file: str, fds: tuple[int, ...], settings: Settings) -> None:
    for fd in fds:
        os.close(fd)
    code = 1
    try:
        from provgraph._backend import Backend
        from provgraph._stored_request import exec_request
        from provgraph.runtimes.process import write_result

        backend = Backend(settings)
        try:
            write_result(exec_request(digest, backend), Path(result_file))
        finally:
            backend.close()
        code = 0
    except BaseException:  # noqa: BLE001 - reported as the exit status; the supervisor records FAIL
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    children: dict[int, Any] = {}
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
                pid = os.fork()
                if pid == 0:
                    _child(job["digest"], job["result"], (in_fd, out_fd, wake_r, wake_w), settings)
                children[pid] = job["id"]
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            job_id = children.pop(pid, None)
            if job_id is not None:
                os.write(out_fd, json.dumps({"id": job_id, "exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
