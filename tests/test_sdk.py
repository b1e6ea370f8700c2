"""The SDK on the embedded default: what a run records, with real files and real hashes."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

import provgraph as pg
from provgraph.events.model import EventType
from provgraph.events.serde import loads
from provgraph.events.transport.sqlite import SqliteEventLog


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def copy_upper(ctx: pg.Context, src: pg.DataItem, suffix: str = "!") -> dict[str, int]:
    data = src.get()
    ctx.log_artifact("upper", body=data.upper() + suffix.encode())
    ctx.log_metric("size", len(data))
    return {"size": len(data)}


def explode(ctx: pg.Context, src: pg.DataItem) -> None:
    src.get()
    raise RuntimeError("disk on fire")


def typed(n: int, ratio: float, flag: bool, name: str = "x") -> dict[str, object]:
    return {"n": n, "ratio": ratio, "flag": flag, "name": name}


def test_a_run_records_input_hash_output_hash_params_and_results(backend: pg.Backend, tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"hello provgraph\n")
    result = pg.run(copy_upper, params={"suffix": "?"}, inputs={"src": str(raw)}, backend=backend)
    assert result.state == "COMPLETE" and result.results == {"size": 16}
    out_hash = sha(b"HELLO PROVGRAPH\n?")
    assert result.outputs["upper"] == f"store://default/upper@{out_hash}"

    run = backend.graph().run(result.run_id)
    assert run is not None and run.state == "COMPLETE"
    assert run.params == {"suffix": "?"}
    assert [(i.namespace, i.name, i.version, i.binding) for i in run.inputs] == [
        ("file", str(raw), sha(raw.read_bytes()), "src")
    ]
    assert [(o.namespace, o.name, o.version) for o in run.outputs] == [("store://default", "upper", out_hash)]
    assert run.metrics == {"size": 16.0}
    # the output is stored content-addressed, and the code snapshot too
    assert backend.artifacts.get_bytes(out_hash) == b"HELLO PROVGRAPH\n?"
    assert run.job_version is not None
    assert backend.artifacts.get_bytes(run.job_version.code_hash) == Path(__file__).read_bytes()
    assert run.job_version.entrypoint == "test_sdk.py:copy_upper"


def test_a_failing_handler_ends_the_run_fail_and_keeps_its_events(backend: pg.Backend, tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"data")
    result = pg.run(explode, inputs={"src": str(raw)}, backend=backend)
    assert result.state == "FAIL" and result.error == "RuntimeError: disk on fire"
    with pytest.raises(pg.RunFailed, match="disk on fire"):
        result.raise_for_state()
    run = backend.graph().run(result.run_id)
    assert run is not None and run.state == "FAIL" and "disk on fire" in (run.error or "")
    assert [i.version for i in run.inputs] == [sha(b"data")]
    events = [loads(r.body) for r in SqliteEventLog(backend.settings.events_db).read()]
    assert [e.event_type for e in events] == [EventType.START, EventType.RUNNING, EventType.FAIL]
    # the last event declares the count, so a reader can tell none is missing
    assert [(e.seq, e.run.facets.event.total if e.run.facets.event else None) for e in events] == [
        (1, None),
        (2, None),
        (3, 3),
    ]
    assert run.completeness is not None and run.completeness.complete


def joined(ctx: pg.Context, sep: str = "+", **rest: object) -> dict[str, object]:
    items = {k: v for k, v in rest.items() if isinstance(v, pg.DataItem)}
    ctx.log_artifact("joined", body=sep.encode().join(items[k].get() for k in sorted(items)))
    return {"params": sorted(k for k in rest if k not in items), "inputs": sorted(items)}


def test_kwargs_take_every_param_and_input_not_in_the_signature(backend: pg.Backend, tmp_path: Path) -> None:
    """As MLRun's `get_func_arg`: `**kwargs` gets the params, then the inputs (as DataItems, read and
    recorded as any input), the signature's own names left out."""
    (tmp_path / "a").write_bytes(b"A")
    (tmp_path / "b").write_bytes(b"B")
    result = pg.run(
        joined,
        params={"sep": "-", "extra": 1},
        inputs={"s0": str(tmp_path / "a"), "s1": str(tmp_path / "b")},
        backend=backend,
    ).raise_for_state()
    assert result.results == {"params": ["extra"], "inputs": ["s0", "s1"]}
    run = backend.graph().run(result.run_id)
    assert run is not None
    assert {i.binding: i.version for i in run.inputs} == {"s0": sha(b"A"), "s1": sha(b"B")}
    assert run.outputs[0].version == sha(b"A-B")


def test_params_are_coerced_to_annotations_and_defaults_recorded(backend: pg.Backend) -> None:
    result = pg.run(typed, params={"n": "3", "ratio": "0.5", "flag": "yes"}, backend=backend)
    assert result.results == {"n": 3, "ratio": 0.5, "flag": True, "name": "x"}
    run = backend.graph().run(result.run_id)
    assert run is not None and run.params == {"n": 3, "ratio": 0.5, "flag": True, "name": "x"}


def test_bad_params_and_missing_arguments_fail_before_the_run_starts(backend: pg.Backend) -> None:
    with pytest.raises(pg.ConfigError, match="param n='three' is not a valid int"):
        pg.run(typed, params={"n": "three", "ratio": 1, "flag": True}, backend=backend)
    with pytest.raises(pg.ConfigError, match="needs 'flag'"):
        pg.run(typed, params={"n": 1, "ratio": 1}, backend=backend)
    assert backend.graph().runs() == []


def test_handler_from_file_and_code_versions(backend: pg.Backend, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("def main(x: int = 1):\n    return {'x': x}\n")
    first = pg.run(f"{script}:main", backend=backend)
    script.write_text("def main(x: int = 1):\n    return {'x': x * 2}\n")
    second = pg.run(f"{script}:main", params={"x": 5}, backend=backend)
    assert (first.results, second.results) == ({"x": 1}, {"x": 10})
    job = backend.graph().job("default", "main")
    assert job is not None and job.run_count == 2 and len(job.versions) == 2
    with pytest.raises(pg.ConfigError, match="handler file not found"):
        pg.run(f"{tmp_path}/nope.py:main", backend=backend)
    with pytest.raises(pg.ConfigError, match="has no function 'nope'"):
        pg.run(f"{script}:nope", backend=backend)
    with pytest.raises(pg.ConfigError, match="must look like"):
        pg.run("job.py", backend=backend)


def test_git_commit_and_dirty_flag_are_recorded(backend: pg.Backend, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "job.py"
    script.write_text("def main():\n    return 1\n")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", "job.py")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    head = git("rev-parse", "HEAD").strip()
    clean = pg.run(f"{script}:main", backend=backend)
    script.write_text("def main():\n    return 2\n")
    dirty = pg.run(f"{script}:main", backend=backend)
    graph = backend.graph()
    jv_clean = graph.run(clean.run_id).job_version  # type: ignore[union-attr]
    jv_dirty = graph.run(dirty.run_id).job_version  # type: ignore[union-attr]
    assert jv_clean is not None and (jv_clean.git_commit, jv_clean.git_dirty) == (head, False)
    assert jv_dirty is not None and (jv_dirty.git_commit, jv_dirty.git_dirty) == (head, True)


def reader(ctx: pg.Context, data: pg.DataItem) -> str:
    return data.get().decode()


def test_outputs_feed_later_runs_by_pinned_or_latest_uri(backend: pg.Backend, tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"v1")
    first = pg.run(copy_upper, inputs={"src": str(raw)}, backend=backend)
    pinned = first.outputs["upper"]
    raw.write_bytes(b"v2")
    pg.run(copy_upper, inputs={"src": str(raw)}, backend=backend)
    assert pg.run(reader, inputs={"data": pinned}, backend=backend).results == {"return": "V1!"}
    assert pg.run(reader, inputs={"data": "store://default/upper"}, backend=backend).results == {"return": "V2!"}
    with pytest.raises(pg.NotFound, match="no artifact 'nothing' in project 'default'"):
        pg.run(reader, inputs={"data": "store://default/nothing"}, backend=backend)


def test_any_fsspec_url_is_an_input(backend: pg.Backend) -> None:
    with fsspec.open("memory://bucket/in.txt", "wb") as f:
        f.write(b"in memory")
    result = pg.run(reader, inputs={"data": "memory://bucket/in.txt"}, backend=backend)
    assert result.results == {"return": "in memory"}
    run = backend.graph().run(result.run_id)
    assert run is not None
    assert [(i.namespace, i.name, i.version) for i in run.inputs] == [("memory", "/bucket/in.txt", sha(b"in memory"))]


def ignores(ctx: pg.Context, used: pg.DataItem, unused: pg.DataItem) -> None:
    used.get()


def test_inputs_the_handler_never_read_are_still_recorded(backend: pg.Backend, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    result = pg.run(ignores, inputs={"used": str(a), "unused": str(b)}, backend=backend)
    run = backend.graph().run(result.run_id)
    assert run is not None and {i.binding: i.version for i in run.inputs} == {"used": sha(b"a"), "unused": sha(b"b")}


def many_metrics(ctx: pg.Context) -> None:
    for step in range(1200):
        ctx.log_metric("loss", 1 / (step + 1), step=step)


def test_metrics_are_batched_into_few_events(backend: pg.Backend) -> None:
    result = pg.run(many_metrics, backend=backend)
    log = SqliteEventLog(backend.settings.events_db)
    assert log.count() <= 5  # START, 2 batches of 500, COMPLETE carrying the rest
    run = backend.graph().run(result.run_id)
    assert run is not None and run.metrics == {"loss": 1 / 1200}


def test_a_missing_input_is_refused_before_a_run_exists(backend: pg.Backend, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(pg.NotFound, match=f"input 'data': no file or folder at '{missing}'"):
        pg.run(reader, inputs={"data": str(missing)}, backend=backend)
    with pytest.raises(pg.ConfigError, match="input 'data': cannot open 'bogus://x/y': Protocol not known: bogus"):
        pg.run(reader, inputs={"data": "bogus://x/y"}, backend=backend)
    assert backend.graph().runs() == []


def removes_then_reads(ctx: pg.Context, data: pg.DataItem) -> None:
    os.remove(data.url)
    data.get()


def test_reading_an_input_gone_since_the_start_fails_the_run_with_its_name(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "brief.csv").write_text("x\n")
    result = pg.run(removes_then_reads, inputs={"data": str(tmp_path / "brief.csv")}, backend=backend)
    assert result.state == "FAIL" and "input 'data': no data at" in (result.error or "")


def test_unknown_runtime_is_refused(backend: pg.Backend) -> None:
    with pytest.raises(pg.ConfigError, match="unknown runtime 'mars'"):
        pg.run(reader, runtime="mars", backend=backend)


def test_handler_source_is_snapshotted_for_functions_defined_in_files(backend: pg.Backend, tmp_path: Path) -> None:
    script = tmp_path / "mod.py"
    script.write_text(
        textwrap.dedent("""
        def helper():
            return 41

        def main():
            return helper() + 1
    """)
    )
    result = pg.run(f"{script}:main", backend=backend)
    run = backend.graph().run(result.run_id)
    assert result.results == {"return": 42}
    assert run is not None and run.job_version is not None
    assert backend.artifacts.get_bytes(run.job_version.code_hash) == script.read_bytes()


def logs_under(ctx: pg.Context, key: str) -> None:
    ctx.log_artifact(key, body=b"x")


@pytest.mark.parametrize("key", ["x:prod", "model@sha256:x", "..", "/abs", "a//b", "", "a b"])
def test_a_key_no_store_uri_reads_back_is_refused(backend: pg.Backend, key: str) -> None:
    result = pg.run(logs_under, params={"key": key}, backend=backend)
    assert result.state == "FAIL" and (result.error or "").startswith(f"ConfigError: artifact key {key!r}: letters")


@pytest.mark.parametrize("project", ["a/b", "../../evil", "with space", "x:y"])
def test_a_project_no_store_uri_carries_is_refused(backend: pg.Backend, project: str) -> None:
    with pytest.raises(pg.ConfigError, match=f"project {re.escape(repr(project))}: letters"):
        pg.run(logs_under, params={"key": "k"}, project=project, backend=backend)
    with pytest.raises(pg.ConfigError, match="PROVGRAPH_PROJECT"):
        pg.load_settings(project=project)
    assert backend.graph().runs() == []


def test_keys_and_projects_that_read_back_are_kept(backend: pg.Backend) -> None:
    result = pg.run(logs_under, params={"key": "reports/2026.q1_v-2"}, project="Team.A-1_x", backend=backend)
    assert result.raise_for_state().outputs["reports/2026.q1_v-2"].startswith("store://Team.A-1_x/reports/2026.q1_v-2@")


async def fetches(ctx: pg.Context, n: int = 2) -> dict[str, int]:
    import asyncio

    await asyncio.sleep(0)
    ctx.log_result("awaited", True)
    return {"n": n}


def yields(ctx: pg.Context) -> Iterator[int]:
    ctx.log_result("ran", True)
    yield 1


def test_an_async_handler_runs_to_its_end_and_a_generator_is_refused(backend: pg.Backend) -> None:
    import asyncio

    done = pg.run(fetches, params={"n": 3}, backend=backend).raise_for_state()
    assert done.results == {"awaited": True, "n": 3}

    async def in_a_notebook() -> pg.RunResult:  # an event loop already runs in this thread
        return pg.run(fetches, backend=backend)

    assert asyncio.run(in_a_notebook()).raise_for_state().results == {"awaited": True, "n": 2}
    refused = pg.run(yields, backend=backend)
    assert refused.state == "FAIL" and refused.error == (
        "ConfigError: handler 'yields' is a generator: its body runs only when iterated; return a value instead"
    )
    assert refused.results == {}
