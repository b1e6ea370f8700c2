"""MLRun's `store://<kind>/<project>/<key>@<uid>`: the version the run `uid` wrote under that key."""

from __future__ import annotations

import pytest

import provgraph as pg
from provgraph._naming import parse_store_uri, resolve_version


def _log(body: bytes, *, fail: bool = False) -> pg.RunResult:
    def make(context: pg.Context) -> None:
        context.log_artifact("data", body=body)
        if fail:
            raise RuntimeError("late failure")

    return make  # type: ignore[return-value]


def test_uid_resolves_to_what_that_run_wrote(backend: pg.Backend) -> None:
    first = pg.run(_log(b"one"), backend=backend)  # type: ignore[arg-type]
    pg.run(_log(b"two"), backend=backend)  # type: ignore[arg-type]  # the latest
    project = first.project
    seen: dict[str, bytes] = {}

    def read(context: pg.Context, data: pg.DataItem) -> None:
        seen["input"] = data.get()
        seen["get_dataitem"] = context.get_dataitem(f"store://artifacts/{project}/data@{first.run_id}").get()
        seen["latest"] = context.get_dataitem(f"store://datasets/{project}/data:latest").get()

    result = pg.run(read, backend=backend, inputs={"data": f"store://datasets/{project}/data@{first.run_id}"})
    assert result.error is None, result.error
    assert seen == {"input": b"one", "get_dataitem": b"one", "latest": b"two"}
    run = backend.graph().run(result.run_id)
    assert run is not None
    pinned = first.outputs["data"].rpartition("@")[2]
    assert {(i.binding, i.version) for i in run.inputs} >= {("data", pinned)}


def test_uid_that_names_no_written_output_is_refused(backend: pg.Backend) -> None:
    ok = pg.run(_log(b"one"), backend=backend)  # type: ignore[arg-type]
    failed = pg.run(_log(b"two", fail=True), backend=backend)  # type: ignore[arg-type]
    graph, p = backend.graph(), ok.project
    cases = {
        f"store://datasets/{p}/data@nope": f"artifact URI store://{p}/data@nope: no run 'nope' in the graph",
        f"store://datasets/{p}/other@{ok.run_id}": f"artifact URI store://{p}/other@{ok.run_id}: run {ok.run_id}"
        f" has no such output under 'other' in project '{p}'",
        f"store://datasets/{p}/data@{failed.run_id}": f"artifact URI store://{p}/data@{failed.run_id}: run"
        f" {failed.run_id} did not complete (FAIL), so it wrote nothing under 'data' in project '{p}'",
    }
    for uri, message in cases.items():
        with pytest.raises(pg.NotFound) as err:
            resolve_version(parse_store_uri(uri), graph)
        assert str(err.value) == message

    def read(data: pg.DataItem) -> None:
        data.get()

    uri = f"store://datasets/{p}/data@{failed.run_id}"
    with pytest.raises(pg.NotFound) as err:  # refused before the handler runs
        pg.run(read, backend=backend, inputs={"data": uri})
    assert str(err.value) == cases[uri]


def test_uid_of_a_run_that_logged_the_key_twice_asks_for_a_pin(backend: pg.Backend) -> None:
    def twice(context: pg.Context) -> None:
        context.log_artifact("data", body=b"a")
        context.log_artifact("data", body=b"b")

    r = pg.run(twice, backend=backend)
    with pytest.raises(pg.ConfigError) as err:
        resolve_version(parse_store_uri(f"store://datasets/{r.project}/data@{r.run_id}"), backend.graph())
    assert str(err.value).startswith(f"artifact URI store://{r.project}/data@{r.run_id}: run {r.run_id} wrote 'data'")
    assert str(err.value).count("@sha256:") == 2


def test_another_projects_run_uid_is_no_producer_here(backend: pg.Backend) -> None:
    """`store://models/p/key@<uid>` with a run of another project answers as for no run at all: a
    token of p must not learn that q's run exists (only p's runs write p's artifacts)."""

    def logs(ctx: pg.Context) -> None:
        ctx.log_artifact("data", body=b"q")

    theirs = pg.run(logs, project="q", backend=backend).raise_for_state()
    ref = parse_store_uri(f"store://datasets/p/data@{theirs.run_id}")
    with pytest.raises(pg.NotFound, match=f"no run '{theirs.run_id}' in the graph"):
        resolve_version(ref, backend.graph())
