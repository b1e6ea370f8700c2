"""The CLI as a user meets it: a real `provgraph` process, real files, one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "provgraph"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(tmp_path / "home"), COLUMNS="200", NO_COLOR="1")

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if ok:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    return run


@pytest.mark.slow
def test_demo_answers_both_lineage_questions(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("demo").stdout
    upstream = out[out.index("What produced this model?") : out.index("What did the raw dataset feed?")]
    downstream = out[out.index("What did the raw dataset feed?") :]
    # upstream of the model: train, then the train set, then prepare, then the raw file
    order = [
        upstream.index(s)
        for s in (
            "store://demo model",
            "produced by train",
            "read as train_set",
            "produced by prepare",
            "read as raw: file",
        )
    ]
    assert order == sorted(order)
    for s in ("read by prepare", "wrote train_set", "read by train", "wrote model", "read by evaluate", "wrote report"):
        assert s in downstream
    asked = re.search(r"^Can the model be reproduced from the graph alone\?  \(provgraph reproduce (\S+)\)$", out, re.M)
    assert asked is not None, out
    assert re.search(rf"^reproduces {re.escape(asked[1])}: REPRODUCED$", out, re.M), out
    # a pipeline run and its 3 steps, the reproduction, then the rerun (a pipeline run and 3 steps)
    runs = cli("runs").stdout
    assert runs.count("COMPLETE") == 9 and "evaluate" in runs and "prepare" in runs
    rerun = out[out.index("One input changes") :]
    assert re.search(r"^  run   prepare\n          input raw\.csv changed sha256:", rerun, re.M), rerun
    assert re.search(r"^  CACHED   train .* from ", rerun, re.M), rerun
    assert "(2 executed, 1 reused from cache)" in rerun


@pytest.mark.slow
def test_run_show_and_lineage_of_a_script(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "job.py").write_text(
        "def main(ctx, data, factor: int = 1):\n"
        "    ctx.log_artifact('doubled', body=data.get() * factor)\n"
        "    return {'factor': factor}\n"
    )
    (tmp_path / "in.txt").write_text("abc")
    out = cli("run", "job.py:main", "-p", "factor=2", "-i", "data=in.txt").stdout
    doubled = hashlib.sha256(b"abcabc").hexdigest()
    shape = rf"run ({UUID})  default/main  COMPLETE\n  result  factor = 2\n  output  doubled -> store://default/doubled@sha256:{doubled}\n"
    ran = re.fullmatch(shape, out)
    assert ran is not None, out
    run_id = ran[1]
    shown = cli("show", run_id).stdout
    assert "params    factor=2" in shown and f"data: file {tmp_path / 'in.txt'}" in shown
    lineage = cli("lineage", str(tmp_path / "in.txt"), "--downstream").stdout
    assert "read by main" in lineage and "wrote doubled" in lineage
    as_json = cli("lineage", f"run:{run_id}", "--json").stdout
    assert '"partial": false' in as_json


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "missing.py:main"), "handler file not found: missing.py"),
        (("run", "job.py:nope"), "job.py has no function 'nope'"),
        (("run", "job.py:main", "-p", "novalue"), "cannot parse param 'novalue': expected key=value"),
        (("run", "job.py:main", "-p", "n=abc"), "param n='abc' is not a valid int"),
        (("run", "job.py:main", "-i", "data=store://p/none"), "no artifact 'none' in project 'p'"),
        (("show", "0000-no-such-run"), "nothing matches '0000-no-such-run'"),
        (("lineage", "run:ghost"), "no such node: run:ghost"),
        (("lineage", "bogus:thing"), "unknown node kind 'bogus'"),
    ],
)
def test_bad_input_is_one_clear_line(cli, tmp_path: Path, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "job.py").write_text("def main(n: int = 1, data=None):\n    return n\n")
    proc = cli(*args, ok=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr


@pytest.mark.slow
def test_a_failing_handler_exits_non_zero_and_is_recorded(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "job.py").write_text("def main():\n    raise KeyError('gone')\n")
    proc = cli("run", "job.py:main", ok=False)
    assert proc.returncode == 1 and re.fullmatch(rf"run {UUID}  default/main  FAIL\n", proc.stdout), proc.stdout
    run_id = proc.stdout.split()[1]
    assert proc.stderr == f"error: KeyError: 'gone'\n  the traceback: `provgraph show {run_id}` (or --debug)\n"
    assert "FAIL" in cli("runs", "--state", "fail").stdout


@pytest.mark.slow
def test_replay_rebuilds_the_same_graph(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("demo")
    before = cli("lineage", "--downstream", "--json", str(tmp_path / "home-demo" / "raw.csv")).stdout
    (tmp_path / "home" / "graph.db").unlink()
    out = cli("replay", "--yes").stdout
    logged = sqlite3.connect(tmp_path / "home" / "events.db").execute("SELECT COUNT(*) FROM events").fetchone()[0]
    # (the empty first line is where a terminal shows the progress bar)
    assert logged > 10 and out == f"\nreplayed {logged} events into {tmp_path / 'home' / 'graph.db'}\n"
    after = cli("lineage", "--downstream", "--json", str(tmp_path / "home-demo" / "raw.csv")).stdout
    assert before == after


def test_help_lists_the_commands(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("--help").stdout
    listed = re.findall(r"^│ ([\w-]+) {2,}\S", out[out.index("─ Commands ─") :], re.M)
    assert listed == [
        *("replay", "get", "gc", "lineage", "stale", "run", "runs", "show", "abort", "exec", "reproduce", "demo"),
        *("diff", "doctor", "logs", "compare", "search", "serve", "launcher", "pipeline-controller", "projector"),
        *("tag", "delete", "pipeline", "function", "hub", "token", "dlq", "spool", "artifacts"),
    ]


def _alone(env: dict[str, str], *args: str, closed_stdin: bool = False) -> subprocess.CompletedProcess[str]:
    """`provgraph ARGS` with only `env` of PROVGRAPH_* variables, stdin /dev/null (or closed)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    return subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        env={**base, "COLUMNS": "200", "NO_COLOR": "1", **env},
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=(lambda: os.close(0)) if closed_stdin else None,
    )


STATES = "START, RUNNING, COMPLETE, FAIL, ABORT, OTHER, REQUESTED, LOST"


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (("show",), 2, "error: give a target (a node id, a run id, a name, a path) or --namespace and --name"),
        (("runs", "--bogus"), 2, "error: No such option: --bogus (see `provgraph runs --help`)"),
        (("--bogus",), 2, "error: No such option: --bogus (see `provgraph --help`)"),
        (("bogus",), 2, "error: No such command 'bogus'. Did you mean 'logs'? (see `provgraph --help`)"),
        (
            ("runs", "--since", "notadate"),
            2,
            "error: Invalid value for '--since': Input should be a valid datetime or date, input is too short"
            " (see `provgraph runs --help`)",
        ),
        (
            ("runs", "--state", "bogus"),
            2,
            f"error: Invalid value for '--state': 'bogus' is not a run state; use one of {STATES}"
            " (see `provgraph runs --help`)",
        ),
        (
            ("runs", "--limit", "0"),
            2,
            "error: Invalid value for '--limit': Input should be greater than or equal to 1"
            " (see `provgraph runs --help`)",
        ),
        (
            ("replay",),
            2,
            "error: replay drops the graph and asks for confirmation, but stdin is not a terminal; pass --yes",
        ),
    ],
)
@pytest.mark.parametrize("closed_stdin", [False, True], ids=["devnull", "closed"])
def test_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], code: int, stderr: str, closed_stdin: bool
) -> None:
    proc = _alone({"PROVGRAPH_HOME": str(tmp_path)}, *args, closed_stdin=closed_stdin)
    assert (proc.returncode, proc.stderr, proc.stdout) == (code, stderr + "\n", "")
    assert not (tmp_path / "graph.db").exists()  # replay refused before touching anything


def test_version_prints_the_version_and_exits_0(tmp_path: Path) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    # --version loads no settings, so even a broken environment cannot stop it
    proc = _alone({"PROVGRAPH_HOME": str(tmp_path), "PROVGRAPH_STOR": "neo4j"}, "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"provgraph {version}\n", "")


def test_no_arguments_prints_the_help_and_exits_2(tmp_path: Path) -> None:
    proc = _alone({"PROVGRAPH_HOME": str(tmp_path)})
    assert proc.returncode == 2 and "Usage: provgraph [OPTIONS] COMMAND" in proc.stdout and proc.stderr == ""


@pytest.mark.slow
def test_state_filter_takes_any_case(cli) -> None:  # type: ignore[no-untyped-def]
    cli("demo")
    assert cli("runs", "--state", "Complete").stdout.count("COMPLETE") == 9  # the demo: see above
    assert cli("runs", "--state", "requested").stdout == "no runs match\n"


@pytest.mark.slow
def test_runs_and_show_print_json_for_scripts(cli) -> None:  # type: ignore[no-untyped-def]
    cli("demo")
    lines = cli("runs", "--json", "--state", "complete").stdout.splitlines()
    runs = [json.loads(line) for line in lines]
    assert len(runs) == 9 and {r["state"] for r in runs} == {"COMPLETE"}
    shown = json.loads(cli("show", runs[0]["run_id"], "--json").stdout)
    assert (shown["run_id"], shown["state"], shown["job_name"]) == (runs[0]["run_id"], "COMPLETE", runs[0]["job_name"])
    assert cli("runs", "--json", "--job", "nope").stdout == ""


@pytest.mark.parametrize(
    ("env", "stderr"),
    [
        (
            {"PROVGRAPH_STOR": "neo4j"},
            "error: unknown environment variable PROVGRAPH_STOR: not a provgraph setting"
            " (did you mean PROVGRAPH_STORE?)",
        ),
        (
            {"PROVGRAPH_ZZZ": "1", "PROVGRAPH_TRANSPROT": "kafka"},
            "error: unknown environment variable PROVGRAPH_TRANSPROT, PROVGRAPH_ZZZ: not a provgraph setting"
            " (did you mean PROVGRAPH_TRANSPORT?)",
        ),
        ({"PROVGRAPH_CONFIG": "nowhere.toml"}, "error: PROVGRAPH_CONFIG names 'nowhere.toml', which is not a file"),
    ],
)
def test_settings_mistakes_are_one_line_and_exit_1(tmp_path: Path, env: dict[str, str], stderr: str) -> None:
    proc = _alone({"PROVGRAPH_HOME": str(tmp_path), **env}, "runs")
    assert (proc.returncode, proc.stderr, proc.stdout) == (1, stderr + "\n", "")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("launcher",), {}),
        (("pipeline-controller",), {}),
        (("projector",), {}),
        (("dlq", "list"), {"PROVGRAPH_STORE": "neo4j"}),
    ],
    ids=["launcher", "pipeline-controller", "projector", "dlq"],
)
def test_every_kafka_command_without_kafka_says_the_same_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    from provgraph.events.settings import KAFKA_UNSET

    proc = _alone({"PROVGRAPH_HOME": str(tmp_path), **env}, *args)
    assert (proc.returncode, proc.stderr, proc.stdout) == (1, f"error: {KAFKA_UNSET}\n", "")


def test_variables_of_the_test_infrastructure_are_not_settings_mistakes(tmp_path: Path) -> None:
    env = {"PROVGRAPH_HOME": str(tmp_path), "PROVGRAPH_INFRA_DIR": "/x", "PROVGRAPH_DEBUG": "0"}
    proc = _alone(env, "runs")
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "no runs yet: try `provgraph demo`\n")


def test_run_says_what_a_script_would_hide(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--json` is the outcome alone (the handler's prints go to stderr), a handler's sys.exit is a
    failure with its code, and a multi-line error is one line."""
    (tmp_path / "job.py").write_text(
        "import sys\n"
        "def chatty(ctx):\n    print('hello from the handler')\n    return {'x': 1}\n"
        "def quits(ctx, code: int = 0):\n    sys.exit(code)\n"
        "def breaks(ctx):\n    raise ValueError('first\\nsecond')\n"
    )
    out = cli("run", "job.py:chatty", "--json")
    assert json.loads(out.stdout)["results"] == {"x": 1} and "hello from the handler" in out.stderr
    for code, exit_code in ((0, 1), (3, 3)):
        quit = cli("run", "job.py:quits", "-p", f"code={code}", ok=False)
        assert (quit.returncode, quit.stderr) == (
            exit_code,
            f"error: the handler's code called sys.exit({code}) before returning (see `provgraph runs --state fail`)\n",
        )
    assert [r["state"] for r in map(json.loads, cli("runs", "--json").stdout.splitlines())].count("FAIL") == 2
    broke = cli("run", "job.py:breaks", ok=False)
    assert broke.returncode == 1 and "error: ValueError: first second\n" in broke.stderr


def test_control_characters_of_recorded_text_are_shown_never_sent(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Any producer names jobs, datasets, params and results: an ESC in them must not recolour,
    retitle or clear the terminal of whoever lists runs (nor a bidi override reorder the line)."""
    from provgraph.events.synthetic import dataset, run_events
    from provgraph.events.transport.sqlite import SqliteEventLog

    evil = "job\x1b[8m hidden\x1b]0;title\x1b\\\u202e"
    events = run_events(
        "r-evil",
        namespace="default",
        job=evil,
        params={"p\x1b[2J": "v\x9b1m"},
        results={"r": "\x1b[H all good"},
        inputs=[dataset("file", "/in\x1b[31m.csv", "sha256:" + "a" * 64, "in\x1b")],
    )
    (tmp_path / "home").mkdir(exist_ok=True)
    log = SqliteEventLog(tmp_path / "home" / "events.db")
    log.append(events)
    log.close()
    for args in (("runs",), ("show", "r-evil"), ("lineage", "run:r-evil"), ("compare", "r-evil", "r-evil")):
        out = cli(*args).stdout
        assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out, (args, out)
    shown = cli("show", "r-evil").stdout
    assert "\\x1b[8m hidden" in shown and "\\u202e" in shown
    # JSON escapes them itself: scripts get the recorded text exactly
    [row] = map(json.loads, cli("runs", "--json").stdout.splitlines())
    assert row["job_name"] == evil
    assert "inputs" not in row  # a listing reads no inputs: left out, not shown empty (`show --json` has them)


def test_a_str_param_is_kept_as_typed_and_a_fractional_int_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tagged.py").write_text(
        "def tagged(context, version: str = '', n: int = 0):\n    return {'version': version, 'n': n}\n"
    )
    out = json.loads(cli("run", "tagged.py:tagged", "-p", "version=1.10", "-p", "n=3", "--json").stdout)
    assert out["results"] == {"version": "1.10", "n": 3}
    refused = cli("run", "tagged.py:tagged", "-p", "n=2.7", ok=False)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1 and "n=2.7 is not a valid int" in refused.stderr


def test_replay_says_when_records_of_the_log_went_to_the_dlq(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tagged.py").write_text("def tagged(context):\n    return {'ok': 1}\n")
    cli("run", "tagged.py:tagged")
    with sqlite3.connect(tmp_path / "home" / "events.db") as db:  # one record damaged on disk
        db.execute("UPDATE events SET body = ? WHERE rowid = (SELECT MAX(rowid) FROM events)", (b"{broken",))
    replayed = cli("replay", "--yes")
    assert "1 records of the log could not be projected: see `provgraph dlq list`" in replayed.stderr


def test_a_damaged_event_log_is_one_line_with_the_way_back(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tagged.py").write_text("def tagged(context):\n    return {'ok': 1}\n")
    cli("run", "tagged.py:tagged")
    log = tmp_path / "home" / "events.db"
    with sqlite3.connect(log) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = 4096
    with open(log, "r+b") as f:  # the first bytes of page 2: a b-tree page header
        f.seek(page)
        f.write(b"\xff" * 16)
    damaged = cli("runs", ok=False)
    assert damaged.returncode == 1 and damaged.stderr.count("\n") == 1, damaged.stderr
    assert "is damaged" in damaged.stderr and "sqlite3 events.db .recover" in damaged.stderr
