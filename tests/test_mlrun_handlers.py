"""MLRun handlers (tests/fixtures/mlrun_handlers.py, written in MLRun's documented idioms) run unchanged.

This module runs twice: here, where MLRun is not installed (the handlers' `import mlrun` finds
provgraph's compatibility module), and inside a virtual environment with the real MLRun release
(tests/test_mlrun_real.py runs it there with `--noconftest`). It therefore needs no shared fixture.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
import provgraph._backend
from provgraph.events.settings import load_settings

REAL_MLRUN = importlib.util.find_spec("mlrun") is not None
"""True inside the venv with the real MLRun (checked before any run could make the compat module importable)."""

HANDLERS = Path(__file__).parent / "fixtures" / "mlrun_handlers.py"


def spec(name: str) -> str:
    return f"{HANDLERS}:{name}"


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pg.Backend]:
    """An embedded backend in a fresh home, also the process default (for `provgraph.get_dataitem`)."""
    for name in [n for n in os.environ if n.startswith("PROVGRAPH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    b = pg.Backend(load_settings())
    monkeypatch.setattr(provgraph._backend, "_default", b)
    yield b
    b.close()


def facets(backend: pg.Backend, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run's `provgraph_labels` run facets and its outputs' `provgraph_artifact` facets, from the event log."""
    backend.transport.flush()
    with sqlite3.connect(backend.settings.events_db) as db:
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM events WHERE run_id = ?", (run_id,))]
    labels = [b["run"]["facets"]["provgraph_labels"] for b in bodies if "provgraph_labels" in b["run"]["facets"]]
    artifacts = [o["facets"]["provgraph_artifact"] for b in bodies for o in b.get("outputs") or []]
    return labels, artifacts


def stored(backend: pg.Backend, uri: str) -> bytes:
    return backend.artifacts.get_bytes(uri.rpartition("@")[2])


def completed(result: pg.RunResult) -> pg.RunResult:
    assert result.error is None, result.error
    return result.raise_for_state()


def test_artifact_path_local_path_and_labels(backend: pg.Backend) -> None:
    result = completed(pg.run(spec("write_report"), params={"rows": 2}, backend=backend))
    assert result.results == {"labels": {"framework": "sklearn"}, "uid_is_run": True}
    assert stored(backend, result.outputs["report"]) == b"row 0\nrow 1"
    assert [p.name for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("provgraph-artifacts-*")] == []
    run = backend.graph().run(result.run_id)
    assert run is not None and [(o.binding, o.name) for o in run.outputs] == [("report", "report")]
    labels, artifacts = facets(backend, result.run_id)
    assert [(f["labels"], f["annotations"]) for f in labels] == [({"framework": "sklearn"}, {"owner": "data-team"})]
    assert [(a["format"], a["labels"], a["meta"]) for a in artifacts] == [
        ("txt", {"stage": "eval"}, {"mlrun_kind": "artifact"})
    ]


def test_log_model_with_body_model_file_and_metrics(backend: pg.Backend, capfd: pytest.CaptureFixture[str]) -> None:
    result = completed(pg.run(spec("train_model"), params={"n_estimators": 3}, backend=backend))
    assert pickle.loads(stored(backend, result.outputs["model"])) == {"weights": [0.5, 0.5, 0.5]}
    assert result.results == {"accuracy": 0.9, "n": 3}
    assert 'training {"n_estimators": 3}' in capfd.readouterr().err
    run = backend.graph().run(result.run_id)
    assert run is not None and run.outputs[0].kind == "model"
    _, [model] = facets(backend, result.run_id)
    assert (model["format"], model["framework"], model["labels"]) == ("pkl", "sklearn", {"framework": "custom"})
    assert model["meta"] == {
        "mlrun_kind": "model",
        "model_file": "model.pkl",
        "algorithm": "weights",
        "metrics": {"accuracy": 0.9, "n": 3},
        "parameters": {"n_estimators": 3},
    }


def test_dir_artifact_is_a_manifest_of_its_files_hashes(backend: pg.Backend) -> None:
    result = completed(pg.run(spec("extract_dir"), backend=backend))
    manifest = json.loads(stored(backend, result.outputs["content"]))
    files = manifest["files"]
    assert sorted(files) == ["a.txt", "nested/b.txt"]
    assert backend.artifacts.get_bytes(files["a.txt"]) == b"alpha"
    assert backend.artifacts.get_bytes(files["nested/b.txt"]) == b"beta"


def test_plot_artifact_from_a_matplotlib_figure(backend: pg.Backend) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is not installed in this environment (it is in the real-MLRun venv)")
    result = completed(pg.run(spec("plot"), backend=backend))
    html = stored(backend, result.outputs["curve"]).decode()
    assert "<h3" in html and "Curve" in html and 'src="data:image/png;base64,iVBORw0KGgo' in html


def test_parquet_dataset_read_back_through_an_mlrun_store_uri(backend: pg.Backend) -> None:
    made = completed(pg.run(spec("make_dataset"), params={"rows": 5}, backend=backend))
    assert stored(backend, made.outputs["data"]).startswith(b"PAR1")  # parquet, MLRun's default
    _, [data] = facets(backend, made.run_id)
    assert data["format"] == "parquet" and data["meta"]["schema"] == {"x": "int64", "label": "int64"}
    assert data["meta"]["preview"][:2] == [[0, 0], [1, 1]] and data["meta"]["stats"]["x"]["max"] == 4.0
    assert data["meta"]["label_column"] == "label" and data["meta"]["length"] == 5
    read = completed(pg.run(spec("read_dataset"), inputs={"data": "store://datasets/default/data"}, backend=backend))
    assert read.results == {"columns": ["x", "label"], "suffix": ".parquet", "local_suffix": ".parquet"}
    outside = pg.get_dataitem("store://datasets/default/data")
    assert list(outside.as_df()["x"]) == [0, 1, 2, 3, 4]


def test_typed_handler_dataframe_in_dataset_result_and_array_out(backend: pg.Backend) -> None:
    import pandas as pd

    made = completed(pg.run(spec("make_dataset"), params={"rows": 5}, backend=backend))
    result = completed(
        pg.run(spec("clean"), params={"factor": 3}, inputs={"df": made.outputs["data"]}, backend=backend)
    )
    assert result.results == {"count": 4, "squares": [0, 1, 4]}  # an array of < 10 elements is a result
    clean = pd.read_parquet(io.BytesIO(stored(backend, result.outputs["clean"])))
    assert list(clean["x"]) == [3, 6, 9, 12]
    run = backend.graph().run(result.run_id)
    assert run is not None and {o.binding: o.kind for o in run.outputs} == {"clean": "data"}


def test_hub_style_type_check_on_a_dataitem_input(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "table.csv").write_text("x,label\n1,0\n2,1\n3,1\n")
    result = completed(pg.run(spec("summarize"), inputs={"table": str(tmp_path / "table.csv")}, backend=backend))
    assert result.results == {"rows": 3, "label_mean": pytest.approx(2 / 3)}
    assert stored(backend, result.outputs["summary"]).startswith(b",x,label\ncount,3.0,3.0")


def test_describe_signature_a_dataitem_in_a_union_is_a_dataitem(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x\n1\n2\n")
    inputs = {"table": str(tmp_path / "t.csv"), "other": str(tmp_path / "t.csv")}
    result = completed(pg.run(spec("describe_signature"), inputs=inputs, backend=backend))
    assert result.results == {"table_is_dataitem": True, "other_is_dataitem": True, "rows": 2}


def test_a_folder_input_keeps_its_trailing_slash(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "parts" / name).write_text("x\n1\n")
    result = completed(pg.run(spec("folder"), inputs={"df_artifact": f"{tmp_path}/parts/"}, backend=backend))
    assert result.results == {"is_folder": True, "files": ["a.csv", "b.csv"]}
    run = backend.graph().run(result.run_id)
    assert run is not None and [i.name for i in run.inputs] == [f"{tmp_path}/parts"]  # one dataset, slash or not


def test_numpy_values_inside_results_are_plain(backend: pg.Backend) -> None:
    result = completed(pg.run(spec("numpy_results"), backend=backend))
    assert result.results == {"predictions": [0, 1, 1], "scores": {"a": 0.5, "b": 2}, "best": 1}


def test_log_model_extra_data_stores_bytes_and_files(backend: pg.Backend) -> None:
    result = completed(pg.run(spec("model_with_extra_data"), backend=backend))
    assert set(result.outputs) == {"model", "model_notes", "model_readme", "importance", "matrix"}
    assert stored(backend, result.outputs["model_notes"]) == b"raw notes"
    assert stored(backend, result.outputs["model_readme"]) == b"how to use"
    assert stored(backend, result.outputs["matrix"]) == b"confusion matrix"
    _, artifacts = facets(backend, result.run_id)
    [model] = [a for a in artifacts if a["meta"].get("mlrun_kind") == "model"]
    assert model["meta"]["extra_data"] == {  # artifact objects by their provgraph URIs, logged or not
        "notes": result.outputs["model_notes"],
        "readme": result.outputs["model_readme"],
        "source": "s3://bucket/raw.csv",
        "importance": result.outputs["importance"],
        "matrix": result.outputs["matrix"],
    }


def test_remove_local_deletes_the_copy(backend: pg.Backend) -> None:
    made = completed(pg.run(spec("make_dataset"), backend=backend))
    result = completed(pg.run(spec("local_copy"), inputs={"data": made.outputs["data"]}, backend=backend))
    assert result.results == {"had_copy": True, "copy_left": False}


def test_object_outputs_are_pickled_and_small_arrays_are_results(backend: pg.Backend) -> None:
    import numpy as np

    result = completed(pg.run(spec("packed"), backend=backend))
    assert pickle.loads(stored(backend, result.outputs["model"])) == {"weights": [1, 2]}
    assert result.results == {"tiny": [0, 1, 2]}
    assert np.load(io.BytesIO(stored(backend, result.outputs["big"]))).tolist() == list(range(12))


def test_a_dataset_artifact_object_around_a_dataframe_is_a_table(backend: pg.Backend) -> None:
    import pandas as pd

    result = completed(pg.run(spec("dataset_object"), backend=backend))
    table = pd.read_parquet(io.BytesIO(stored(backend, result.outputs["dataset"])))
    assert table.to_dict("list") == {"x": [1, 2, 3], "label": [0, 1, 1]}
    run = backend.graph().run(result.run_id)
    assert run is not None and [o.kind for o in run.outputs] == ["data"]


def test_get_secret_from_the_environment_and_a_secrets_file(
    backend: pg.Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# run secrets\nPG_TEST_FILE_SECRET = from-file\n")
    monkeypatch.setenv("PG_TEST_ENV_SECRET", "from-env")
    with_file = pg.Backend(backend.settings.model_copy(update={"secrets_file": secrets}))
    try:
        result = completed(pg.run(spec("secrets"), backend=with_file))
    finally:
        with_file.close()
    assert result.results == {"env_secret_found": True, "file_secret_found": True, "missing_is_none": True}
    run = backend.graph().run(result.run_id)
    assert run is not None and "from-file" not in json.dumps(run.model_dump(mode="json"))


def test_params_that_do_not_fit_the_annotation_pass_as_parsed_and_unknown_ones_are_reported(
    backend: pg.Backend, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    result = completed(pg.run(spec("weighted"), params={"weight": [0.5, 0.5], "wieght": 1}, backend=backend))
    assert result.results == {"weight": "[0.5, 0.5]"}
    warned = caplog.text + capfd.readouterr().err
    assert "param wieght: weighted() has no such parameter (recorded, not passed; parameters: context, weight)" in (
        warned
    )


def test_dataitem_reads_ranges_and_get_dataitem_inside_a_run(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("abcdefgh")
    result = completed(pg.run(spec("reader"), inputs={"data": str(tmp_path / "notes.txt")}, backend=backend))
    assert result.results["head"] == "abcd" and result.results["same"] is True
    assert result.results["local_suffix"] == ".txt"
    run = backend.graph().run(result.run_id)
    assert run is not None and [i.name for i in run.inputs] == [str(tmp_path / "notes.txt")] * len(run.inputs)


def test_an_mlrun_handler_run_reproduces_in_a_fresh_interpreter(backend: pg.Backend) -> None:
    original = completed(pg.run(spec("train_model"), params={"n_estimators": 2}, backend=backend))
    again = pg.reproduce(original.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED", again.error


# -- the compatibility module (MLRun not installed) ------------------------------------------------

compat_only = pytest.mark.skipif(REAL_MLRUN, reason="the real MLRun is installed: no compatibility module")


def test_get_or_create_ctx_inside_a_run_is_the_runs_context(backend: pg.Backend) -> None:
    """`mlrun.get_or_create_ctx` in a handler (as scripts and `apply_mlrun` call it) answers the
    provgraph run's context, with real MLRun too (its own context would log where provgraph never
    reads), so what it logs is the run's."""
    result = pg.run(spec("script_style"), params={"epochs": 3}, backend=backend).raise_for_state()
    assert result.results == {"trained": True} and result.metrics == {"loss": 1 / 3}
    assert set(result.outputs) == {"notes"}
    assert not (Path.cwd() / "mlrun-sklearn").exists()


@compat_only
def test_an_mlrun_api_not_provided_names_what_is_missing(backend: pg.Backend) -> None:
    result = pg.run(spec("missing_api"), backend=backend)
    assert result.state == "FAIL"
    assert result.error == (
        "MissingMLRunAttribute: mlrun.import_function is not provided by provgraph's MLRun compatibility"
        " layer; install mlrun to use it (see docs/MLRUN.md)"
    )


@compat_only
def test_a_missing_mlrun_module_is_named(backend: pg.Backend, tmp_path: Path) -> None:
    (tmp_path / "fs.py").write_text("import mlrun.feature_store as fstore\n\ndef main():\n    return 1\n")
    with pytest.raises(pg.ConfigError) as err:
        pg.run(f"{tmp_path / 'fs.py'}:main", backend=backend)
    assert str(err.value) == (
        "importing fs.py failed: MissingMLRunAPI: module 'mlrun.feature_store' is not provided by provgraph's"
        " MLRun compatibility layer; install mlrun to use it (see docs/MLRUN.md)"
    )


@compat_only
def test_mlrun_is_not_importable_outside_a_run(backend: pg.Backend) -> None:
    completed(pg.run(spec("write_report"), backend=backend))
    with pytest.raises(ModuleNotFoundError, match="No module named 'mlrun'"):
        import mlrun  # noqa: F401
    assert not any(name == "mlrun" or name.startswith("mlrun.") for name in sys.modules)
    fresh = subprocess.run(
        [sys.executable, "-c", "import provgraph, provgraph.compat, provgraph.compat.mlrun\nimport mlrun"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fresh.returncode == 1 and "ModuleNotFoundError: No module named 'mlrun'" in fresh.stderr


@compat_only
def test_the_setting_turns_the_compatibility_module_off(backend: pg.Backend) -> None:
    off = pg.Backend(backend.settings.model_copy(update={"mlrun_compat": False}))
    try:
        with pytest.raises(pg.ConfigError) as err:
            pg.run(spec("write_report"), backend=off)
    finally:
        off.close()
    assert str(err.value) == "importing mlrun_handlers.py failed: ModuleNotFoundError: No module named 'mlrun'"


@compat_only
def test_compat_classes_are_provgraphs_own(backend: pg.Backend) -> None:
    from provgraph.compat import mlrun_importable

    with mlrun_importable():
        import mlrun
        import mlrun.artifacts
        import mlrun.datastore
        import mlrun.execution

        assert mlrun.DataItem is mlrun.datastore.DataItem is pg.DataItem
        assert mlrun.execution.MLClientCtx is mlrun.MLClientCtx is pg.Context
        assert mlrun.artifacts.PlotArtifact.kind == "plot"
        assert mlrun.__spec__ is not None and mlrun.__spec__.name == "provgraph.compat.mlrun"
