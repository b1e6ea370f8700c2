"""The step server: one single-threaded process per pipeline run that has imported the SDK once and
forks a child per step (`python -m provgraph.pipelines.worker IN_FD OUT_FD`).

Forking the pipeline's own process would copy locks its other threads hold (a step could hang
forever on one); a fresh interpreter per step costs a few hundred milliseconds. Forking from a
process with no other threads is both safe and fast. Protocol, one JSON object per line on
private pipes (never stdout, which the steps print to): in `{"id", "digest", "result"}`, out
`{"id", "exit"}`. End of input: wait for the running steps, then exit.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def _child(digest: str, result_file: str, fds: tuple[int, ...]) -> None:
    for fd in fds:
        os.close(fd)
    code = 1
    try:
        from provgraph._backend import Backend
        from provgraph._stored_request import exec_request
        from provgraph.events.settings import load_settings
        from provgraph.runtimes.process import write_result

        backend = Backend(load_settings())
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

    packages_digest()

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
                    _child(job["digest"], job["result"], (in_fd, out_fd, wake_r, wake_w))
                children[pid] = job["id"]
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            job_id = children.pop(pid, None)
            if job_id is not None:
                os.write(out_fd, json.dumps({"id": job_id, "exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


class StepServer:
    """The pipeline's side: start the server, hand it steps, wait for their exit status."""

    def __init__(self, env: dict[str, str]) -> None:
        import subprocess

        to_server_r, self._to_server = os.pipe()
        self._from_server, from_server_w = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "provgraph.pipelines.worker", str(to_server_r), str(from_server_w)],
            env=env,
            pass_fds=(to_server_r, from_server_w),
            stdin=subprocess.DEVNULL,
        )
        os.close(to_server_r)
        os.close(from_server_w)
        self._lock = threading.Lock()
        self._next = 0
        self._waiting: dict[int, tuple[threading.Event, list[int]]] = {}
        self._reader = threading.Thread(target=self._read, name="step-server", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            data = os.read(self._from_server, 65536)
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                msg = json.loads(line)
                with self._lock:
                    event, box = self._waiting.pop(msg["id"])
                box.append(int(msg["exit"]))
                event.set()
        with self._lock:  # the server died: nobody will report these steps
            for event, box in self._waiting.values():
                box.append(-int(signal.SIGKILL))
                event.set()
            self._waiting.clear()

    def run(self, digest: str, result_file: Path) -> int:
        """Run the stored request `digest` in a forked child; its exit status (negative: signal)."""
        event, box = threading.Event(), list[int]()
        with self._lock:
            self._next += 1
            job_id = self._next
            self._waiting[job_id] = (event, box)
            line = json.dumps({"id": job_id, "digest": digest, "result": str(result_file)}).encode() + b"\n"
            os.write(self._to_server, line)
        event.wait()
        return box[0]

    def close(self) -> None:
        os.close(self._to_server)
        self._process.wait()
        self._reader.join()
        os.close(self._from_server)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
