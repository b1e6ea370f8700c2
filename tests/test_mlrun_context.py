"""The MLRun-level run context and DataItem in detail: URI forms, artifact objects, DataItem reads,
secrets files, typed returns (the handler suite in test_mlrun_handlers.py covers the idioms end to end)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import provgraph as pg
from provgraph._artifacts import ChartArtifact, TableArtifact
from provgraph._mlrun import read_secrets_file
from provgraph._naming import StoreRef, parse_store_uri


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("store://p/key", StoreRef("p", "key")),
        ("store://p/key@sha256:ab", StoreRef("p", "key", "sha256:ab")),
        ("store://datasets/p/key", StoreRef("p", "key")),
        ("store://models/p/key:latest", StoreRef("p", "key")),
        ("store://datasets/p/key:v2", StoreRef("p", "key", alias="v2")),
        ("store://p/dir/key:production", StoreRef("p", "dir/key", alias="production")),
        ("store://p/a:B/key", StoreRef("p", "a:B/key")),  # not an alias: a colon inside the key
        ("store://artifacts/p/key@sha256:ab", StoreRef("p", "key", "sha256:ab")),
        ("store://datasets/key", StoreRef("datasets", "key")),  # two segments: provgraph's own form
        ("store://models/p/key@3f2a-9c", StoreRef("p", "key", producer="3f2a-9c")),  # MLRun's producer uid
        ("store://models/p/key:latest@3f2a", StoreRef("p", "key", producer="3f2a")),
        ("store://datasets/p/key:v2@3f2a", StoreRef("p", "key", producer="3f2a")),  # the uid pins
    ],
)
def test_store_uri_forms(uri: str, ref: StoreRef) -> None:
    assert parse_store_uri(uri) == ref


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("store://p/key:prod@sha256:ab", "name a version (@…) or an alias (:prod), not both"),
        ("store://models/p/key@../x", "@'../x' is neither @sha256:<hash> nor a run uid"),
    ],
)
def test_mlrun_store_uris_that_cannot_be_resolved_are_refused(uri: str, message: str) -> None:
    with pytest.raises(pg.ConfigError) as err:
        parse_store_uri(uri)
    assert str(err.value) == f"artifact URI {uri!r}: {message}"


def test_secrets_file_format(tmp_path: Path) -> None:
    good = tmp_path / "ok.env"
    good.write_text("# comment\n\nA=1\nB = two=2\n")
    assert read_secrets_file(good) == {"A": "1", "B": "two=2"}
    bad = tmp_path / "bad.env"
    bad.write_text("A=1\njust-a-word\n")
    with pytest.raises(pg.ConfigError) as err:
        read_secrets_file(bad)
    assert str(err.value) == f"secrets file {bad}, line 2: expected KEY=VALUE"


def _run(backend: pg.Backend, handler: Any, **kwargs: Any) -> pg.RunResult:
    result = pg.run(handler, backend=backend, **kwargs)
    assert result.error is None, result.error
    return result


def _bytes(backend: pg.Backend, uri: str) -> bytes:
    return backend.artifacts.get_bytes(uri.rpartition("@")[2])


def test_table_and_chart_artifacts_are_csv(backend: pg.Backend) -> None:
    def tables(context: pg.Context) -> None:
        chart = ChartArtifact("chart", header=["epoch", "loss"])
        chart.add_row([1, 0.5])
        context.log_artifact(chart)
        context.log_artifact(TableArtifact("table", df=pd.DataFrame({"a": [1, 2]})))
        context.log_artifact(TableArtifact("rows", body=[[1, 2]], header=["x", "y"]), labels={"k": 1})

    result = _run(backend, tables)
    assert _bytes(backend, result.outputs["chart"]) == b"epoch,loss\r\n1,0.5\r\n"
    assert _bytes(backend, result.outputs["table"]) == b"a\n1\n2\n"
    assert _bytes(backend, result.outputs["rows"]) == b"x,y\r\n1,2\r\n"


def test_log_artifact_needs_content(backend: pg.Backend) -> None:
    def nothing(context: pg.Context) -> None:
        context.log_artifact("empty")

    result = pg.run(nothing, backend=backend)
    assert result.error == "ConfigError: log_artifact('empty') needs body= or local_path="


def test_log_dataset_keeps_schema_preview_and_stats(backend: pg.Backend) -> None:
    seen: dict[str, Any] = {}

    def data(context: pg.Context) -> None:
        df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
        seen.update(context.log_dataset("df", df, stats=True, preview=2, labels={"team": "ml"}).meta)

    result = _run(backend, data)
    assert _bytes(backend, result.outputs["df"]).startswith(b"PAR1")
    text_dtype = str(pd.Series(["a"]).dtype)  # "object" before pandas 3, "str" since
    assert seen["schema"] == {"x": "int64", "y": text_dtype} and seen["length"] == 3
    assert seen["preview"] == [[1, "a"], [2, "b"]] and seen["header"] == ["x", "y"]
    assert seen["stats"]["x"]["mean"] == 2.0 and seen["labels"] == {"team": "ml"} and seen["format"] == "parquet"


def test_dataitem_surface(backend: pg.Backend, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "sub" / "b.csv").write_text("x\n2\n")
    seen: dict[str, Any] = {}

    def look(context: pg.Context, data: pg.DataItem, tree: pg.DataItem) -> None:
        seen["listdir"] = tree.listdir()
        seen["stat"] = data.stat().size
        data.download(str(tmp_path / "copy.csv"))
        seen["columns"] = list(data.as_df(columns=["x"]).columns)
        seen["kind"], seen["suffix"], seen["meta"], seen["str"] = data.kind, data.suffix, data.meta, str(data)
        with pytest.raises(pg.ConfigError) as err:
            data.as_df(format="avro")
        seen["error"] = str(err.value)

    _run(backend, look, inputs={"data": str(folder / "a.csv"), "tree": str(folder)})
    assert seen["listdir"] == ["a.csv", "sub/b.csv"] and seen["stat"] == 4 and seen["columns"] == ["x"]
    assert (tmp_path / "copy.csv").read_text() == "x\n1\n"
    assert (seen["kind"], seen["suffix"], seen["meta"], seen["str"]) == ("file", ".csv", None, str(folder / "a.csv"))
    assert seen["error"] == "input 'data': as_df cannot read format 'avro' (csv, parquet, json)"


def test_typed_inputs_and_returns_by_type(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "cfg.json").write_text('{"a": 1}')
    (tmp_path / "rows.json").write_text("[1, 2]")
    (tmp_path / "note.txt").write_text("hello")

    @pg.handler(outputs=["config:file", "array", None, "frame"])
    def typed(cfg: dict[str, int], rows: list[int], note: str, raw: bytes, where: Path) -> tuple[Any, ...]:
        assert where.read_text() == "hello" and raw == b"hello"
        return cfg | {"n": len(rows)}, np.arange(10) + 0.5, "skipped", pd.DataFrame({"note": [note]})

    result = _run(
        backend,
        typed,
        inputs={
            "cfg": str(tmp_path / "cfg.json"),
            "rows": str(tmp_path / "rows.json"),
            "note": str(tmp_path / "note.txt"),
            "raw": str(tmp_path / "note.txt"),
            "where": str(tmp_path / "note.txt"),
        },
    )
    assert sorted(result.outputs) == ["array", "config", "frame"] and result.results == {}
    assert json.loads(_bytes(backend, result.outputs["config"])) == {"a": 1, "n": 2}
    assert np.load(io.BytesIO(_bytes(backend, result.outputs["array"]))).tolist() == [i + 0.5 for i in range(10)]
    assert pd.read_parquet(io.BytesIO(_bytes(backend, result.outputs["frame"])))["note"].tolist() == ["hello"]


def test_unhinted_returns_are_logged_by_type(backend: pg.Backend) -> None:
    def frame() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    result = _run(backend, frame)
    assert result.results == {} and list(result.outputs) == ["return"]
    assert pd.read_parquet(io.BytesIO(_bytes(backend, result.outputs["return"])))["a"].tolist() == [1]
    assert _run(backend, lambda: 3).results == {"return": 3}


def test_a_json_input_of_the_wrong_shape_fails_the_run(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "rows.json").write_text("[1, 2]")

    def wants_dict(cfg: dict[str, int]) -> None:
        return None

    result = pg.run(wants_dict, inputs={"cfg": str(tmp_path / "rows.json")}, backend=backend)
    assert result.state == "FAIL" and result.error == "ConfigError: input 'cfg' holds a JSON list, not a dict"


def test_log_dataset_stores_an_existing_local_file_instead_of_the_frame(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "written.csv").write_text("x\n7\n")

    def data(context: pg.Context) -> None:
        context.log_dataset("df", pd.DataFrame({"x": [7]}), local_path=str(tmp_path / "written.csv"))

    result = _run(backend, data)
    assert _bytes(backend, result.outputs["df"]) == b"x\n7\n"
