"""The step server: one single-threaded process per pipeline run that has imported the SDK once and
forks a child per step (`step_server.py`); this is the pipeline's side.

Forking the pipeline's own process would copy locks its other threads hold (a step could hang
forever on one); a fresh interpreter per step costs a few hundred milliseconds. Forking from a
process with no other threads is both safe and fast. Protocol, one JSON object per line on
private pipes (never stdout, which the steps print to): in `{"id", "digest", "result", "source"?}`, out
`{"id", "exit"}`. A step's process reports its own exit status as its last act (its result file
is written by then), so the pipeline need not wait for the process to be torn down and reaped;
the server reports every child it reaps too (one that died before reporting: killed, or
`os._exit` in the handler), and the first report of a step wins. End of input: wait for the
running steps, then exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NamedTuple


class Snapshot(NamedTuple):
    """Where a step's code snapshot was read from: `path` holds the bytes hashed `code_hash` unless
    it was edited since (then the server does not compile it and the step compiles what it runs)."""

    path: str
    code_hash: str
    entrypoint: str


class StepServer:
    """The pipeline's side: start the server, hand it steps, wait for their exit status."""

    def __init__(self, env: dict[str, str]) -> None:
        import subprocess

        to_server_r, self._to_server = os.pipe()
        self._from_server, from_server_w = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "provgraph.pipelines.step_server", str(to_server_r), str(from_server_w)],
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
                    waiting = self._waiting.pop(msg["id"], None)
                if waiting is not None:  # else the step's second report: the first one won
                    waiting[1].append(int(msg["exit"]))
                    waiting[0].set()
        with self._lock:  # the server died: nobody will report these steps
            for event, box in self._waiting.values():
                box.append(-int(signal.SIGKILL))
                event.set()
            self._waiting.clear()

    def run(self, digest: str, result_file: Path, source: Snapshot | None = None) -> int:
        """Run the stored request `digest` in a forked child; its exit status (negative: signal).
        `source`: the file its code snapshot was taken from, which the server compiles once for
        every step that runs the same snapshot."""
        event, box = threading.Event(), list[int]()
        with self._lock:
            self._next += 1
            job_id = self._next
            self._waiting[job_id] = (event, box)
            job: dict[str, object] = {"id": job_id, "digest": digest, "result": str(result_file)}
            if source is not None:
                job["source"] = source._asdict()
            line = json.dumps(job).encode() + b"\n"
            os.write(self._to_server, line)
        event.wait()
        return box[0]

    def terminate_steps(self) -> None:
        """SIGTERM every running step (through the server, which forwards it): each records ABORT."""
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGTERM)

    def close(self) -> None:
        os.close(self._to_server)
        self._process.wait()
        self._reader.join()
        os.close(self._from_server)
