"""MLRun's packaging and run-context behaviour an outside review found provgraph departing from: the
DataFrame index, returned objects of unknown types, path hints, non-finite results, str-default
inputs, param priority and coercion, `update_artifact`, `log_dataset` writer keywords, `context.artifacts`."""

from __future__ import annotations

import io
import json
import logging
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import provgraph as pg
from provgraph._execution import effective_params
from provgraph.events.model import RunState
from tests.test_mlrun_context import _bytes, _run


class Fitted:
    """A stand-in for a fitted model: an object no packager knows (module level, so it pickles)."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fitted) and other.weights == self.weights

    __hash__ = None  # type: ignore[assignment]


def _output_facets(backend: pg.Backend, run_id: str, key: str) -> list[dict[str, Any]]:
    backend.transport.flush()
    with sqlite3.connect(backend.settings.events_db) as db:
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM events WHERE run_id = ?", (run_id,))]
    return [o["facets"]["provgraph_artifact"] for b in bodies for o in b.get("outputs") or [] if o["name"] == key]


INDEXED = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="day"))


def test_the_dataframe_index_is_kept_as_mlrun_keeps_it(backend: pg.Backend) -> None:
    def tables(context: pg.Context) -> pd.DataFrame:
        context.log_dataset("pq", INDEXED)
        context.log_dataset("csv", INDEXED, format="csv")
        context.log_dataset("rows", pd.DataFrame({"v": [1, 2]}), format="csv")
        context.log_dataset("dropped", INDEXED, format="csv", index=False)
        return INDEXED

    result = _run(backend, tables)
    assert pd.read_parquet(io.BytesIO(_bytes(backend, result.outputs["pq"]))).equals(INDEXED)
    assert pd.read_parquet(io.BytesIO(_bytes(backend, result.outputs["return"]))).equals(INDEXED)
    assert _bytes(backend, result.outputs["csv"]).decode().splitlines() == ["day,v", "a,1.0", "b,2.0"]
    assert _bytes(backend, result.outputs["rows"]).decode().splitlines() == ["v", "1", "2"]  # a RangeIndex is not
    assert _bytes(backend, result.outputs["dropped"]).decode().splitlines() == ["v", "1.0", "2.0"]


def test_log_dataset_passes_writer_keywords_for_its_format(
    backend: pg.Backend, caplog: pytest.LogCaptureFixture
) -> None:
    def tables(context: pg.Context) -> None:
        frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
        context.log_dataset("semi", frame, format="csv", sep=";")
        context.log_dataset("pq", frame, sep=";", compression="gzip")

    with caplog.at_level(logging.WARNING, "provgraph"):
        result = _run(backend, tables)
    assert _bytes(backend, result.outputs["semi"]).decode().splitlines() == ["a;b", "1;3", "2;4"]
    assert pd.read_parquet(io.BytesIO(_bytes(backend, result.outputs["pq"]))).to_dict("list") == {
        "a": [1, 2],
        "b": [3, 4],
    }
    assert "log_dataset('pq'): sep not used when writing parquet" in caplog.text


def test_returned_objects_of_unknown_types_are_pickled_and_collections_are_results(backend: pg.Backend) -> None:
    stamp = pd.Timestamp("2024-05-01T12:00:00")

    @pg.handler(outputs=["model", "when", "tags", "pair", "raw"])
    def train(context: pg.Context) -> tuple[Any, ...]:
        return Fitted([0.5, 1.5]), stamp, {"b", "a"}, (1, 2), bytearray(b"xy")

    result = _run(backend, train)
    assert pickle.loads(_bytes(backend, result.outputs["model"])) == Fitted([0.5, 1.5])
    assert pickle.loads(_bytes(backend, result.outputs["when"])) == stamp
    assert _bytes(backend, result.outputs["raw"]) == b"xy"
    assert result.results == {"tags": ["a", "b"], "pair": [1, 2]}
    assert [f["format"] for f in _output_facets(backend, result.run_id, "model")] == ["pkl"]


def test_path_hints_store_the_file_or_folder_a_str_names(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.txt").write_text("A")
    (tmp_path / "report.txt").write_text("report")

    @pg.handler(outputs=["folder:path", "file:file", "single:path", "text:file"])
    def save(context: pg.Context) -> tuple[str, ...]:
        return str(tmp_path / "plots"), str(tmp_path / "report.txt"), str(tmp_path / "report.txt"), "just text"

    result = _run(backend, save)
    assert _bytes(backend, result.outputs["file"]) == b"report"
    assert _bytes(backend, result.outputs["single"]) == b"report"
    assert _bytes(backend, result.outputs["text"]) == b"just text"  # not a file: its text, as before
    assert result.results == {}
    (folder,) = _output_facets(backend, result.run_id, "folder")
    assert folder["format"] == "dir" and list(folder["meta"]["files"]) == ["a.txt"]

    @pg.handler(outputs=["gone:path"])
    def missing(context: pg.Context) -> str:
        return str(tmp_path / "nope")

    failed = pg.run(missing, backend=backend)
    assert failed.state == RunState.FAIL
    assert f"output 'gone': path {str(tmp_path / 'nope')!r} does not exist" in str(failed.error)


def test_non_finite_results_are_recorded_as_text_with_a_warning(
    backend: pg.Backend, caplog: pytest.LogCaptureFixture
) -> None:
    def scores(context: pg.Context) -> None:
        context.log_result("loss", float("nan"))
        context.log_results({"best": float("inf"), "fine": 0.5})
        context.log_result("curve", {"points": [1.0, float("-inf")]})

    with caplog.at_level(logging.WARNING, "provgraph"):
        result = _run(backend, scores)
    assert result.state == RunState.COMPLETE
    assert result.results == {"loss": "NaN", "best": "Infinity", "fine": 0.5, "curve": {"points": [1.0, "-Infinity"]}}
    for key in ("loss", "best", "curve"):
        assert f"result {key!r} holds NaN or Infinity" in caplog.text
    assert "'fine'" not in caplog.text


def test_an_unannotated_input_with_a_str_default_gets_its_local_path(backend: pg.Backend, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a;b\n1;2\n")
    seen: dict[str, Any] = {}

    def prepare(context, data_path="", sep=","):  # type: ignore[no-untyped-def]
        seen["path"], seen["sep"] = data_path, sep
        seen["rows"] = pd.read_csv(data_path, sep=sep).to_dict("list")

    result = _run(backend, prepare, inputs={"data_path": str(data)}, params={"sep": ";"})
    assert isinstance(seen["path"], str) and seen["rows"] == {"a": [1], "b": [2]}
    run = backend.graph().run(result.run_id)
    assert run is not None and [i.name for i in run.inputs] == [str(data)]


def test_a_param_wins_over_an_input_of_the_same_name(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("input")
    seen: dict[str, Any] = {}

    def both(context: pg.Context, x: Any = None) -> None:
        seen["x"] = x

    _run(backend, both, params={"x": 7}, inputs={"x": str(tmp_path / "x.txt")})
    assert seen["x"] == 7


def test_a_fractional_value_for_an_int_param_is_refused(backend: pg.Backend) -> None:
    def fit(context: pg.Context, k: int = 1) -> None:
        pass

    with pytest.raises(pg.ConfigError, match=r"param k=2\.7 is not a valid int"):
        pg.run(fit, params={"k": 2.7}, backend=backend)
    assert effective_params(fit, {"k": 2.0}, {}) == {"k": 2}


def test_a_str_param_keeps_the_text_typed_on_the_command_line() -> None:
    def tagged(context: pg.Context, version: str = "", name: str = "", n: int = 0) -> None:
        pass

    got = effective_params(
        tagged, {"version": 1.1, "name": 100000.0, "n": 3}, {}, texts={"version": "1.10", "name": "1e5", "n": "3"}
    )
    assert got == {"version": "1.10", "name": "1e5", "n": 3}


def test_update_artifact_re_records_the_same_version_with_new_labels(backend: pg.Backend) -> None:
    def notes(context: pg.Context) -> None:
        art = context.log_artifact("notes", body=b"v1", format="txt")
        art.labels = {"stage": "b"}
        assert context.update_artifact(art).digest == art.digest

    result = _run(backend, notes)
    logged = _output_facets(backend, result.run_id, "notes")
    assert [f.get("labels") for f in logged] == [None, {"stage": "b"}]
    assert len({f["uri"] for f in logged}) == 1


def test_context_artifacts_lists_what_was_logged_in_mlruns_shape(backend: pg.Backend) -> None:
    seen: dict[str, Any] = {}

    def logs(context: pg.Context) -> None:
        assert context.artifacts == []
        context.log_artifact("notes", body=b"hi", labels={"a": 1})
        context.log_dataset("table", pd.DataFrame({"x": [1]}))
        seen["artifacts"], seen["uris"] = context.artifacts, context.artifact_uris

    result = _run(backend, logs)
    notes, table = seen["artifacts"]
    assert (notes["kind"], notes["metadata"]["key"], notes["metadata"]["labels"]) == ("artifact", "notes", {"a": "1"})
    assert (table["kind"], table["spec"]["format"], table["uri"]) == ("dataset", "parquet", result.outputs["table"])
    assert seen["uris"] == result.outputs


def test_a_str_db_key_is_the_key_an_output_is_recorded_under(backend: pg.Backend) -> None:
    """MLRun registers an artifact under its `db_key` (`apply_mlrun` logs key "model", db_key the
    model's name), and its `store://models/<project>/<db_key>` URIs name that."""

    def trains(context: pg.Context) -> None:
        context.log_model("model", body=b"weights", db_key="iris_lr")
        context.log_artifact("plain", body=b"x", db_key=True)

    result = _run(backend, trains)
    assert set(result.outputs) == {"iris_lr", "plain"}
    assert _bytes(backend, result.outputs["iris_lr"]) == b"weights"

    def reads(model: pg.DataItem) -> dict[str, int]:
        return {"size": len(model.get())}

    again = _run(backend, reads, inputs={"model": "store://models/default/iris_lr"})
    assert again.results == {"size": len(b"weights")}
