"""The local engine's step server (`pipelines/worker.py`, `step_server.py`): what it caches and how
a step's process reports must never change what a step runs or how its end is recorded."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import textwrap
from pathlib import Path

from provgraph import Backend
from provgraph.events.model import RunState
from provgraph.pipelines import run_pipeline

STEPS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from provgraph import Context
    from provgraph.pipelines import pipeline, step

    MARK = str("a")


    def first(ctx: Context, path: str) -> dict[str, str]:
        source = Path(path)
        source.write_text(source.read_text().replace('MARK = str("a")', 'MARK = str("bb")'))
        return {"mark": MARK}


    def second(ctx: Context) -> dict[str, str]:
        return {"mark": MARK}


    def leaves(ctx: Context) -> None:
        os._exit(3)


    def forks(ctx: Context, pid_file: str) -> dict[str, int]:
        pid = os.fork()
        if pid == 0:  # outlives the step: the pipeline must not wait for it
            time.sleep(30)
            Path(pid_file + ".slept").write_text("")
            os._exit(0)
        Path(pid_file).write_text(str(pid))
        return {"forked": 1}


    def kills_spare(ctx: Context) -> dict[str, int]:
        # kills the process the step server forks ahead for the next step (this one's sibling); the
        # server forks it after handing this step over, so on a busy machine it may not exist yet
        killed = 0
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and int(entry.name) != os.getpid():
                    try:
                        ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    except (OSError, IndexError, ValueError):
                        continue
                    if ppid == os.getppid():
                        os.kill(int(entry.name), 9)
                        killed += 1
            time.sleep(0.01)
        return {"killed": killed}


    @pipeline
    def spare_killed() -> None:
        first = step(kills_spare, cache=False)
        step(second, cache=False).after(first)


    @pipeline
    def edited(path: str) -> None:
        one = step(first, params={"path": path}, cache=False)
        two = step(second, cache=False)
        two.after(one)


    @pipeline
    def exits() -> None:
        gone = step(leaves, cache=False)
        step(second, cache=False).after(gone)


    @pipeline
    def forking(pid_file: str) -> None:
        step(forks, params={"pid_file": pid_file}, cache=False)
    """
)


def _steps_file(tmp_path: Path) -> Path:
    path = tmp_path / "edited_steps.py"
    path.write_text(STEPS)
    return path


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_file_edited_between_two_steps_runs_and_records_the_new_snapshot(backend: Backend, tmp_path: Path) -> None:
    """The server compiles each snapshot once; the second step's file changed (a value its function
    uses that is not a literal, so its code version is still known), and it must run the new bytes."""
    path = _steps_file(tmp_path)
    before = path.read_bytes()
    result = run_pipeline(f"{path}:edited", {"path": str(path)}, backend=backend).raise_for_state()
    after = path.read_bytes()
    assert after != before
    assert result.steps["first"].results == {"mark": "a"}
    assert result.steps["second"].results == {"mark": "bb"}
    graph = backend.graph()
    first, second = (graph.run(result.steps[n].run_id or "") for n in ("first", "second"))
    assert first is not None and second is not None
    assert (first.code_hash, second.code_hash) == (_sha256(before), _sha256(after))


def test_a_step_process_that_exits_without_reporting_is_recorded_fail(backend: Backend, tmp_path: Path) -> None:
    path = _steps_file(tmp_path)
    result = run_pipeline(f"{path}:exits", backend=backend)
    assert result.state == RunState.FAIL
    leaves = result.steps["leaves"]
    assert leaves.state == "FAIL"
    assert leaves.reason == "the run's process ended (exit status 3) without reporting its end"
    run = backend.graph().run(leaves.run_id or "")
    assert run is not None and run.state == RunState.FAIL and run.error == leaves.reason
    assert result.steps["second"].state == "SKIPPED"


def test_a_process_a_step_forks_does_not_hold_the_pipeline(backend: Backend, tmp_path: Path) -> None:
    """The forked process inherits the step's report pipe unless it is closed in it at fork: the
    pipeline would then wait for that process to end before it could end itself."""
    path = _steps_file(tmp_path)
    pid_file = tmp_path / "grandchild.pid"
    result = run_pipeline(f"{path}:forking", {"pid_file": str(pid_file)}, backend=backend).raise_for_state()
    still_sleeping = not Path(f"{pid_file}.slept").exists()
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert still_sleeping, "the pipeline ended only once the process its step forked had ended"
    assert result.steps["forks"].results == {"forked": 1}


def test_a_step_process_killed_while_it_waits_for_its_step_is_replaced(backend: Backend, tmp_path: Path) -> None:
    """The server forks each step's process ahead of its step; one killed while it waits (here by
    the step before it) must not take the next step with it."""
    path = _steps_file(tmp_path)
    result = run_pipeline(f"{path}:spare_killed", backend=backend).raise_for_state()
    assert result.steps["kills_spare"].results == {"killed": 1}
    assert result.steps["second"].results == {"mark": "a"}
