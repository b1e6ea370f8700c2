"""Logs, tracebacks and metric history: a real run on the embedded default, then the SDK result,
the graph, `provgraph logs/show/run` and GraphQL on both stores."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph._logs import LogCapture
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.artifacts import ArtifactStore, sha256_bytes
from provgraph.events.facets import LogChunk, LogsRunFacet, RuntimeRunFacet
from provgraph.events.model import RunState
from provgraph.events.serde import loads
from provgraph.events.settings import Settings
from provgraph.events.synthetic import content_hash, run_events
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.run_logs import read_log
from provgraph.graph.views import LogChunkView
from tests.helpers import graphql
from tests.test_cli import UUID, cli  # noqa: F401  (the CLI fixture)

OUTPUT = "training\nWARNING careful: lr=0.5\n"


def noisy(ctx: pg.Context, lr: float = 0.5) -> None:
    print("training")
    logging.getLogger("tests.noisy").warning("careful: lr=%s", lr)
    ctx.log_result("partial", 7)
    for step in range(3):
        ctx.log_metric("loss", 1.0 / (step + 1), step=step)
    ctx.log_metric("acc", float("nan"), step=0)
    raise ValueError("bad x")


def _graph_output(backend: pg.Backend, run_id: str) -> str:
    return read_log(backend.graph().log_chunks(run_id), backend.artifacts.get_chunk).text


def test_a_failed_run_keeps_its_traceback_output_results_and_every_metric_step(
    backend: pg.Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a plain script (pytest adds its own)
    result = pg.run(noisy, backend=backend)
    assert result.state == RunState.FAIL and result.error == "ValueError: bad x"
    assert result.results == {"partial": 7}
    assert result.traceback is not None
    # the handler's frames only, ending as Python prints it
    assert result.traceback.startswith('Traceback (most recent call last):\n  File "')
    assert "in noisy\n" in result.traceback and "_execution.py" not in result.traceback
    assert result.traceback.endswith('    raise ValueError("bad x")\nValueError: bad x\n')
    view = backend.graph().run(result.run_id)
    assert view is not None
    assert (view.error, view.traceback, view.results) == ("ValueError: bad x", result.traceback, {"partial": 7})
    # the logger record: without a configured handler Python prints it bare on stderr, and so it is kept
    assert _graph_output(backend, result.run_id) == "training\ncareful: lr=0.5\n"
    series = backend.graph().metric_history(result.run_id)
    assert [(s.key, s.steps, s.truncated) for s in series] == [("acc", [0], False), ("loss", [0, 1, 2], False)]
    assert series[1].values == [1.0, 0.5, 1.0 / 3] and str(series[0].values[0]) == "nan"
    assert [s.steps for s in backend.graph().metric_history(result.run_id, ["loss"], limit=2)] == [[0, 1]]
    assert backend.graph().metric_history(result.run_id, ["loss"], limit=2)[0].truncated is True


def test_logger_records_with_a_handler_are_kept_formatted_once(
    backend: pg.Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logging.StreamHandler()  # bound to the stream of now, not to the run's tee: no double
    logging.getLogger("tests.noisy").addHandler(handler)
    try:
        result = pg.run(noisy, backend=backend)
    finally:
        logging.getLogger("tests.noisy").removeHandler(handler)
    out = _graph_output(backend, result.run_id)
    assert re.fullmatch(r"training\n\S+ \S+ WARNING tests\.noisy: careful: lr=0\.5\n", out), out
    assert capsys.readouterr().out == "training\n"  # the terminal still shows what the handler printed


def test_output_is_bounded_and_streams_are_restored(tmp_path: Path) -> None:
    import sys

    artifacts = ArtifactStore(str(tmp_path / "objects"))
    before = sys.stdout, sys.stderr
    with LogCapture(artifacts, max_bytes=10) as capture:
        print("0123456789abcdef")
    assert (sys.stdout, sys.stderr) == before
    facet = capture.take()
    assert facet is not None and capture.take() is None
    (chunk,) = facet.chunks
    data = artifacts.get_bytes(chunk.digest)
    assert data == b"0123456789\n[provgraph: output truncated at 10 bytes]\n"
    assert (chunk.offset, chunk.size) == (0, len(data))


def test_a_gap_between_chunks_is_shown_not_joined() -> None:
    parts = {sha256_bytes(b): b for b in (b"ab", b"ef")}

    def fetch(digest: str, size: int) -> bytes:
        return parts[digest]

    chunks = [
        LogChunkView(offset=0, size=2, digest=sha256_bytes(b"ab")),
        LogChunkView(offset=4, size=2, digest=sha256_bytes(b"ef")),
    ]
    assert read_log(chunks, fetch).text == "ab[provgraph: 2 bytes of output missing]\nef"
    tail = read_log(chunks, fetch, tail=1)
    assert (tail.text, tail.start, tail.end) == ("f", 5, 6)
    window = read_log(chunks, fetch, start=1, limit=4)
    assert (window.text, window.end) == ("b[provgraph: 2 bytes of output missing]\ne", 5)


def test_a_chunk_the_store_lacks_is_a_gap() -> None:
    """An event may name log bytes the artifact store does not hold (any producer can send one)."""
    parts = {sha256_bytes(b"ab"): b"ab"}
    chunks = [
        LogChunkView(offset=0, size=2, digest=sha256_bytes(b"ab")),
        LogChunkView(offset=2, size=3, digest=sha256_bytes(b"lost")),
    ]

    def fetch(digest: str, size: int) -> bytes:
        if digest not in parts:
            raise FileNotFoundError(digest)
        return parts[digest]

    assert read_log(chunks, fetch).text == "ab[provgraph: 3 bytes of output missing]\n"
    assert read_log(chunks, fetch, start=3).text == "[provgraph: 2 bytes of output missing]\n"


def test_chunks_naming_an_object_of_another_size_are_gaps_never_read(
    backend: pg.Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer may name any stored object in its run's log facet: 30,000 one-byte chunks naming a
    20 MB object made every `Run.logs` read and hash it 30,000 times. A chunk whose object is not
    its declared size is a gap, decided from the object's size alone."""
    store = backend.artifacts
    big, _ = store.put_bytes(b"x" * 100_000)
    small, _ = store.put_bytes(b"ok")
    chunks = [LogChunkView(offset=0, size=2, digest=small)] + [
        LogChunkView(offset=2 + i, size=1, digest=big) for i in range(1_000)
    ]
    reads: list[str] = []
    get_bytes = store.get_bytes

    def counted(digest: str) -> bytes:
        reads.append(digest)
        return get_bytes(digest)

    monkeypatch.setattr(store, "get_bytes", counted)
    log = read_log(chunks, store.get_chunk)
    assert log.text == "ok[provgraph: 1000 bytes of output missing]\n"
    assert reads == [small]


# -- the CLI ---------------------------------------------------------------------------------------

FAILING = """\
import logging

def main(ctx):
    print("step 1")
    ctx.log_result("partial", 1)
    ctx.log_metric("loss", 0.5, step=1)
    ctx.log_metric("loss", 0.25, step=2)
    raise KeyError("gone")
"""


@pytest.mark.slow
def test_cli_run_show_and_logs_print_the_traceback_and_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    (tmp_path / "job.py").write_text(FAILING)
    proc = cli("--debug", "run", "job.py:main", ok=False)
    run_id = proc.stdout.split()[3]
    assert re.fullmatch(rf"step 1\nrun {UUID}  default/main  FAIL\n  result  partial = 1\n", proc.stdout)
    trace = 'Traceback (most recent call last):\n  File "' + str(tmp_path / "job.py") + '", line 8, in main\n'
    assert proc.stderr == f"error: KeyError: 'gone'\n{trace}    raise KeyError(\"gone\")\nKeyError: 'gone'\n"
    shown = cli("show", run_id).stdout
    assert f"  traceback\n    {trace.replace(chr(10) + '  ', chr(10) + '      ')}" in shown, shown
    assert "  metrics   loss=0.25\n  history   loss: 1=0.5 2=0.25\n" in shown
    assert json.loads(cli("show", run_id, "--json").stdout)["metric_history"] == [
        {"key": "loss", "steps": [1, 2], "values": [0.5, 0.25], "truncated": False}
    ]
    assert cli("logs", run_id).stdout == "step 1\n"
    assert cli("logs", run_id[:13]).stdout == "step 1\n"  # a unique prefix, as `show` takes
    assert cli("logs", run_id, "-f").stdout == "step 1\n"  # a finished run: prints and returns
    assert json.loads(cli("compare", run_id[:13], f"run:{run_id}", "--json").stdout)["run_ids"] == [run_id, run_id]
    assert json.loads(cli("logs", run_id, "--json", "--tail", "3").stdout) == {
        "run_id": run_id,
        "state": "FAIL",
        "start": 4,
        "end": 7,
        "text": " 1\n",
    }
    assert cli("logs", "nope", ok=False).stderr == "error: no run 'nope' (see `provgraph runs`)\n"
    found = cli("runs", "--where", "metrics.loss < 0.3 and state = fail", "--json").stdout.splitlines()
    assert [json.loads(line)["run_id"] for line in found] == [run_id]
    assert cli("runs", "--where", "metrics.loss > 0.3").stdout == "no runs match\n"
    bad = cli("runs", "--where", "params.x ~ 1", ok=False)
    assert (bad.returncode, bad.stderr) == (1, "error: cannot read the query at character 10: '~ 1'\n")


# -- GraphQL, both stores --------------------------------------------------------------------------

QUERY = """
query($id: ID!, $from: Int) {
  run(id: $id) {
    error { message } traceback results
    logs { text start end size }
    window: logs(from: $from, maxBytes: 4) { text start end size }
    metricHistory(keys: ["loss"], limit: 2) { key steps values truncated }
    all: metricHistory { key values }
  }
}
"""


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def served_run(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, str, str, str]]:
    """(url, token of demo, token of other, run id) of a server whose store holds one real failed
    run of `noisy` in project demo."""
    settings = Settings(home=tmp_path / "home")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a plain script (pytest adds its own)
    backend = pg.Backend(settings)
    try:
        run_id = pg.run(noisy, project="demo", backend=backend).run_id
        second = pg.run(noisy, params={"lr": 0.25}, project="demo", backend=backend).run_id
    finally:
        backend.close()
    if request.param == "neo4j":
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        settings = Settings(home=tmp_path / "home", store="neo4j", neo4j_uri=request.getfixturevalue("neo4j"))
        graph = Neo4jLineageStore.from_settings(settings)
        log = SqliteEventLog(settings.events_db)
        try:
            graph.reset()
            graph.apply([loads(r.body) for r in log.read()])
        finally:
            log.close()
            graph.close()
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["demo"], name="demo")[1]
    other = tokens.create(["other"], name="other")[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        yield url, token, other, run_id, second


def test_graphql_run_logs_traceback_and_metric_history(served_run: tuple[str, str, str, str, str]) -> None:
    url, token, other, run_id, _ = served_run
    body = graphql(url, token, QUERY, id=run_id, **{"from": 3})
    assert "errors" not in body, body
    run: dict[str, Any] = body["data"]["run"]
    assert run["error"]["message"] == "ValueError: bad x" and run["traceback"].endswith("ValueError: bad x\n")
    assert run["results"] == {"partial": 7}
    output = "training\ncareful: lr=0.5\n"
    assert run["logs"] == {"text": output, "start": 0, "end": len(output), "size": len(output)}
    assert run["window"] == {"text": "inin", "start": 3, "end": 7, "size": len(output)}
    assert run["metricHistory"] == [{"key": "loss", "steps": [0, 1], "values": [1.0, 0.5], "truncated": True}]
    assert run["all"] == [{"key": "acc", "values": ["NaN"]}, {"key": "loss", "values": [1.0, 0.5, 1.0 / 3]}]
    bad = graphql(url, token, "query($id: ID!) { run(id: $id) { logs(maxBytes: 2000000) { text } } }", id=run_id)
    assert bad["errors"][0]["message"] == "maxBytes must be between 0 and 1048576 (got 2000000)"
    assert graphql(url, other, QUERY, id=run_id) == {"data": {"run": None}}  # another project's token


RUNS = "query($f: String) { runs(filter: $f) { nodes { runId params } } }"


def test_graphql_runs_filter(served_run: tuple[str, str, str, str, str]) -> None:
    url, token, other, run_id, _ = served_run
    hit = "params.lr = 0.5 and metrics.loss < 0.4 and state = FAIL and project = demo"
    assert graphql(url, token, RUNS, f=hit)["data"]["runs"]["nodes"] == [{"runId": run_id, "params": {"lr": 0.5}}]
    assert graphql(url, token, RUNS, f="params.lr = 0.1")["data"]["runs"]["nodes"] == []
    assert graphql(url, other, RUNS, f="params.lr = 0.5")["data"]["runs"]["nodes"] == []  # not its project
    assert graphql(url, other, RUNS, f="project = demo")["data"]["runs"]["nodes"] == []
    bad = graphql(url, token, RUNS, f="params.lr = 1 or params.lr = 2")
    assert bad["data"] is None
    assert bad["errors"][0]["message"] == "expected `and` at character 15, got 'or' (only `and` joins conditions)"
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


COMPARE = """query($ids: [ID!]!) { compareRuns(ids: $ids) { runIds differences { section key values differs } } }"""


def test_graphql_compare_runs(served_run: tuple[str, str, str, str, str]) -> None:
    url, token, other, first, second = served_run
    got = graphql(url, token, COMPARE, ids=[first, f"run:{second}"])["data"]["compareRuns"]
    assert got == {
        "runIds": [first, second],
        "differences": [{"section": "params", "key": "lr", "values": [0.5, 0.25], "differs": True}],
    }
    hidden = graphql(url, other, COMPARE, ids=[first, second])  # another project's runs: as missing ones
    assert hidden["data"] is None and hidden["errors"][0]["message"] == f"no such run: {first}"
    one = graphql(url, token, COMPARE, ids=[first])
    assert one["errors"][0]["message"] == "compare 2 to 20 runs (got 1)"


MODEL = """\
def main(ctx, body: str = "weights-1"):
    ctx.log_model("model", body=body.encode(), framework="none")
"""


@pytest.mark.slow
def test_cli_get_downloads_a_verified_version(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    (tmp_path / "job.py").write_text(MODEL)
    first = cli("run", "job.py:main").stdout.split("-> ")[1].strip()
    cli("run", "job.py:main", "-p", "body=weights-2")
    assert cli("get", "store://default/model").stdout == "weights-2"  # the latest
    done = cli("get", first, "-o", "old.bin")
    assert (tmp_path / "old.bin").read_bytes() == b"weights-1"
    assert done.stderr == f"{first} -> old.bin (9 bytes)\n"
    missing = cli("get", "store://default/nope", ok=False)
    assert (
        missing.stderr
        == "error: no artifact store://default/nope (see `provgraph lineage` or `provgraph show RUN_ID`)\n"
    )
    assert cli("get", "data.csv", ok=False).stderr == (
        "error: not an artifact URI: 'data.csv' (expected store://<project>/<key>[@sha256:…])\n"
    )


BIG = 2**40
BIG_QUERY = """query($id: ID!) {
  run(id: $id) { logs { text start end size } metricHistory { key steps } }
  pipeline(runId: $id) { steps { name attempts } }
}"""


def test_graphql_answers_every_int_the_contract_accepts(tmp_path: Path) -> None:
    """A metric step, log offsets and a step's attempts past GraphQL's 32-bit Int read back (as
    `Long`); the log chunk, whose bytes the store lacks, is a gap."""
    settings = Settings(home=tmp_path / "home")
    events = run_events(
        "big",
        namespace="demo",
        job="flow",
        metrics=[("loss", 0.5, BIG)],
        results={"steps": [{"name": "s", "state": "COMPLETE", "attempts": BIG}]},
    )
    chunk = LogChunk(offset=BIG, size=3, digest=content_hash("never stored"))
    facets = {"runtime": RuntimeRunFacet(kind="pipeline"), "logs": LogsRunFacet(chunks=[chunk])}
    events = [
        e.model_copy(update={"run": e.run.model_copy(update={"facets": e.run.facets.model_copy(update=facets)})})
        for e in events
    ]
    log = SqliteEventLog(settings.events_db)
    log.append(events)
    log.close()
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["demo"], name="demo")[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        body = graphql(url, token, BIG_QUERY, id="big")
    assert "errors" not in body, body
    gap = BIG + 3 - (64 << 10)
    assert body["data"]["run"] == {
        "logs": {
            "text": f"[provgraph: {BIG + 3 - gap} bytes of output missing]\n",  # adjacent gaps: one marker
            "start": gap,
            "end": BIG + 3,
            "size": BIG + 3,
        },
        "metricHistory": [{"key": "loss", "steps": [BIG]}],
    }
    assert body["data"]["pipeline"]["steps"] == [{"name": "s", "attempts": BIG}]
