"""No run stays RUNNING forever, and faults leave no debris: real processes, real signals, a real full disk."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgraph._abort import who
from provgraph.events.settings import load_settings
from provgraph.graph.views import RunView
from tests.helpers import wait_for
from tests.test_cli import BIN

SLOW = "import time\n\ndef slow(ctx):\n    time.sleep(120)\n"
STUBBORN = (
    "def stubborn(ctx):\n    try:\n        time.sleep(120)\n    except BaseException:\n"
    "        time.sleep(120)  # a cleanup that takes its time\n        raise\n"
)
READER = "def reader(ctx, data):\n    data.get()\n\ndef ignorer(ctx, data):\n    return {'ok': 1}\n"
BIG = "def big(ctx):\n    ctx.log_model('model', body=b'x' * 2_000_000)\n"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(home), COLUMNS="200", NO_COLOR="1")
    return env


def _default_signals() -> None:
    """The run's process starts with the default dispositions whatever launched the suite: under
    `nohup`, or as a background job of a script, SIGHUP and SIGINT arrive ignored, and a run keeps
    an ignored signal ignored (sdk/_lifeline.py), as a user who ran `nohup provgraph run` wants."""
    for signum in (signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


class Home:
    """A provgraph home, its CLI, and its graph as a reader sees it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "home"
        self.env = _env(self.path)
        (root / "jobs.py").write_text(SLOW + BIG + STUBBORN + READER)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args], capture_output=True, text=True, env=self.env, cwd=self.root, timeout=120
        )

    def start(self, handler: str = "slow", *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(BIN), "run", f"jobs.py:{handler}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.root,
            preexec_fn=_default_signals,
        )

    def runs(self) -> list[RunView]:
        from provgraph.graph.factory import open_store

        store = open_store(load_settings(home=self.path)).fresh()
        try:
            return store.runs()
        finally:
            store.close()

    def run(self, run_id: str) -> RunView:
        [found] = [r for r in self.runs() if r.run_id == run_id]
        return found

    def wait_started(self, proc: subprocess.Popen[str]) -> RunView:

        def appeared() -> list[RunView]:
            assert proc.poll() is None, proc.communicate()
            return self.runs() if self.path.exists() else []

        [run] = wait_for("the run in the graph", appeared, interval=0.2)
        assert run.state == "START"
        assert run.runtime["pid"] == proc.pid
        return run


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


@pytest.fixture
def started(home: Home) -> Iterator[tuple[subprocess.Popen[str], RunView]]:
    proc = home.start()
    try:
        yield proc, home.wait_started(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize(
    ("signum", "exit_code", "message"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM, "run aborted: terminated by SIGTERM"),
        (signal.SIGHUP, 128 + signal.SIGHUP, "run aborted: terminated by SIGHUP"),
        (signal.SIGINT, 130, "run aborted: interrupted by SIGINT"),
    ],
)
def test_a_signal_ends_the_run_abort_and_the_process(
    home: Home, started: tuple[subprocess.Popen[str], RunView], signum: int, exit_code: int, message: str
) -> None:
    proc, run = started
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == exit_code
    ended = home.run(run.run_id)
    assert (ended.state, ended.error) == ("ABORT", message)
    assert ended.ended_at is not None


def test_a_second_signal_ends_a_run_whose_ending_hangs(home: Home) -> None:
    """The first signal asks the run to end (ABORT); a handler whose cleanup hangs keeps it from
    ending, and the second signal ends the process at once, as without provgraph."""
    proc = home.start("stubborn")
    try:
        run = home.wait_started(proc)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert proc.poll() is None  # the handler's cleanup is running
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
        assert home.run(run.run_id).state in ("START", "LOST")  # no ABORT was written: the process just ended
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_a_fifo_input_neither_blocks_an_abort_nor_a_run_that_never_reads_it(home: Home) -> None:
    fifo = home.root / "pipe"
    os.mkfifo(fifo)
    proc = home.start("reader", "-i", f"data={fifo}")  # blocks opening the FIFO: no writer
    try:
        run = home.wait_started(proc)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM  # the abort did not open the FIFO again
        assert home.run(run.run_id).state == "ABORT"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    done = home.cli("run", "jobs.py:ignorer", "-i", f"data={fifo}")  # an unread FIFO is not hashed
    assert done.returncode == 0, done.stderr
    assert "input 'data' is not a file or a folder (a FIFO or a device): not hashed" in done.stderr


def test_a_killed_process_leaves_its_run_lost_with_the_reason(
    home: Home, started: tuple[subprocess.Popen[str], RunView]
) -> None:
    proc, run = started
    proc.kill()  # SIGKILL: nothing runs in the process any more
    proc.wait(timeout=30)
    lost = home.run(run.run_id)
    assert (lost.state, lost.error) == ("LOST", f"process {proc.pid} on host {socket.gethostname()} is gone")
    listed = home.cli("runs", "--state", "lost")
    assert listed.returncode == 0
    assert run.run_id in listed.stdout and "LOST" in listed.stdout
    assert home.cli("runs", "--state", "running").stdout == "no runs match\n"


def test_abort_asks_a_live_local_process_to_end_itself(
    home: Home, started: tuple[subprocess.Popen[str], RunView]
) -> None:
    proc, run = started
    out = home.cli("abort", run.run_id, "--reason", "wrong data", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "run_id": run.run_id,
        "state": "ABORT",
        "how": "signal",
        "message": "run aborted: terminated by SIGTERM",
    }
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert home.run(run.run_id).state == "ABORT"


@pytest.mark.slow
def test_abort_records_the_end_of_a_lost_run_and_refuses_ended_and_unknown_runs(
    home: Home, started: tuple[subprocess.Popen[str], RunView]
) -> None:
    proc, run = started
    proc.kill()
    proc.wait(timeout=30)
    out = home.cli("abort", f"run:{run.run_id}", "--reason", "machine rebooted", "--json")
    assert out.returncode == 0, out.stderr
    message = f"aborted by {who()}: machine rebooted"
    assert json.loads(out.stdout) == {"run_id": run.run_id, "state": "ABORT", "how": "event", "message": message}
    ended = home.run(run.run_id)
    assert (ended.state, ended.error) == ("ABORT", message)

    again = home.cli("abort", run.run_id)
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == f"error: run {run.run_id} already ended ABORT; nothing to abort\n"
    unknown = home.cli("abort", "no-such-run")
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr == "error: no run 'no-such-run' (see `provgraph runs`)\n"


def test_heartbeats_are_sent_while_the_handler_runs(tmp_path: Path) -> None:
    """A run elsewhere is judged by its heartbeats: RUNNING events every interval, stopped at the end."""
    import provgraph as pg
    from provgraph._backend import Backend
    from provgraph.events.transport.memory import MemoryTransport

    transport = MemoryTransport()
    settings = load_settings(home=tmp_path / "home", heartbeat_interval_s=0.1)

    def sleepy() -> None:
        time.sleep(0.55)

    pg.run(sleepy, backend=Backend(settings, transport=transport))
    kinds = [e.event_type.value for e in transport.events]
    assert kinds[0] == "START" and kinds[-1] == "COMPLETE"
    assert 4 <= kinds.count("RUNNING") <= 6
    assert [e.seq for e in transport.events] == list(range(1, len(kinds) + 1))
    start = transport.events[0].run.facets.runtime
    assert start is not None and start.heartbeat_s == 0.1  # the promise readers elsewhere judge silence by


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root, or CAP_SYS_ADMIN)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.slow
def test_a_full_disk_fails_the_run_cleanly_and_leaves_no_debris(full_disk: Path, tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.path = full_disk / "home"
    home.env = _env(home.path)
    out = home.cli("run", "jobs.py:big")
    artifacts = full_disk / "home" / "artifacts"
    message = f"ArtifactWriteError: no space left on device writing artifact 'model' (2.0 MB) to {artifacts}"
    [run] = home.runs()
    assert out.returncode == 1
    assert out.stderr == f"error: {message}\n  the traceback: `provgraph show {run.run_id}` (or --debug)\n"
    assert [p for p in full_disk.rglob("*") if p.name.endswith(".tmp")] == []
    assert (run.state, run.error) == ("FAIL", message)
    listed = home.cli("runs")
    assert listed.returncode == 0 and "FAIL" in listed.stdout
    # not one byte left: a command that cannot open the store says so in one line, and nothing is lost
    filler = full_disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(b"x" * 4096)
            f.flush()
    full = [home.cli(*cmd) for cmd in (("runs",), ("show", run.run_id), ("doctor",))]
    for done in full:
        if done.returncode != 0:  # SQLite needed a byte (the -shm of a reopened WAL file)
            assert done.returncode == 1 and done.stderr.startswith(
                "error: the embedded store could not be read or written: "
            ), done.stderr
            assert (
                done.stderr.endswith("(is its disk full, or its folder read-only?)\n") and done.stderr.count("\n") == 1
            )
    assert any(done.returncode != 0 for done in full), [d.stdout for d in full]
    filler.unlink()
    assert home.run(run.run_id).state == "FAIL"


def test_one_heartbeat_thread_serves_concurrent_runs_and_nothing_beats_after_stop() -> None:
    from provgraph._lifeline import Heartbeat

    fast: list[float] = []
    slow: list[float] = []
    a, b = Heartbeat(lambda: fast.append(time.monotonic()), 0.05), Heartbeat(lambda: slow.append(1.0), 0.2)
    time.sleep(0.45)
    a.stop()
    stopped, beats = time.monotonic(), len(fast)
    time.sleep(0.3)
    b.stop()
    assert 5 <= beats <= 9 and len(fast) == beats and all(t <= stopped for t in fast)
    assert 2 <= len(slow) <= 4
    assert [t.name for t in threading.enumerate()].count("provgraph-heartbeat") == 1
