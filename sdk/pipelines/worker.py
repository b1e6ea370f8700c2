"""The step server: one single-threaded process per pipeline run that has imported the SDK once and
forks a child per step (`step_server.py`); this is the pipeline's side.

Forking the pipeline's own process would copy locks its other threads hold (a step could hang
forever on one); a fresh interpreter per step costs a few hundred milliseconds. Forking from a
process with no other threads is both safe and fast. Protocol, one JSON object per line on
private pipes (never stdout, which the steps print to): in `{"id", "digest", "result"}`, out
`{"id", "exit"}`. End of input: wait for the running steps, then exit.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path


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
