"""Artifact metadata as users see it: GraphQL `artifact(uri) { versions { meta } }` on both stores, and
`provgraph artifacts show` (readable and `--json`) for what `log_dataset`/`log_model` recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgraph.api.app import create_app
from provgraph.api.server import ServerThread
from provgraph.events.facets import ArtifactDatasetFacet, DatasetVersionDatasetFacet
from provgraph.events.model import Dataset, DatasetFacets
from provgraph.events.synthetic import content_hash, run_events
from tests.contract.test_artifact_meta_contract import ODD
from tests.test_api import Api, make_tokens, store_settings
from tests.test_cli import cli  # noqa: F401  (the CLI fixture)

V1 = content_hash("model-1")
SHOW = "query($u: String!) { artifact(uri: $u) { versions { version { version } framework meta } } }"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)], ids=["sqlite", "neo4j"]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    facets = DatasetFacets(
        version=DatasetVersionDatasetFacet(dataset_version=V1),
        artifact=ArtifactDatasetFacet(kind="model", framework="sklearn", meta=ODD),
    )
    events = run_events("train", namespace="demo", outputs=[Dataset(namespace="store://demo", name="m", facets=facets)])
    settings = store_settings(request.param, tmp_path_factory.mktemp(f"meta-{request.param}"), request, events)
    tokens = make_tokens(settings)
    with ServerThread(create_app(settings)) as url:
        yield Api(url, request.param, tokens)


def test_graphql_gives_each_versions_metadata_as_logged(api: Api) -> None:
    (version,) = api.data(SHOW, u="store://demo/m")["artifact"]["versions"]
    assert version == {"version": {"version": V1}, "framework": "sklearn", "meta": ODD}
    assert api.error(SHOW, token="other", u="store://demo/m") == "no such artifact: store://demo/m"


JOBS = """\
import pandas as pd

def prepare(ctx):
    df = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", "a"]})
    ctx.log_dataset("table", df, stats=True, preview=2)

def train(ctx):
    ctx.log_model("model", body=b"w", framework="sklearn", metrics={"accuracy": 0.9}, parameters={"lr": 0.01})
"""


@pytest.mark.slow
def test_artifacts_show_prints_dataset_and_model_metadata(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    (tmp_path / "job.py").write_text(JOBS)
    cli("run", "job.py:prepare")
    cli("run", "job.py:train")
    (table,) = json.loads(cli("artifacts", "show", "store://default/table", "--json").stdout)["version_list"]
    assert table["format"] == "parquet"
    meta = table["meta"]
    assert (meta["schema"], meta["length"], meta["header"]) == ({"x": "int64", "label": "str"}, 3, ["x", "label"])
    assert meta["preview"] == [[1, "a"], [2, "b"]]
    assert meta["stats"]["x"]["mean"] == 2.0 and meta["stats"]["label"]["top"] == "a"
    (model,) = json.loads(cli("artifacts", "show", "store://default/model", "--json").stdout)["version_list"]
    assert model["framework"] == "sklearn"
    assert {k: model["meta"][k] for k in ("metrics", "parameters")} == {
        "metrics": {"accuracy": 0.9},
        "parameters": {"lr": 0.01},
    }
    shown = cli("artifacts", "show", "store://default/model").stdout
    assert f"metadata of {model['version']}\n" in shown
    assert "  framework: sklearn\n" in shown and '  metrics: {"accuracy": 0.9}\n' in shown
    assert '  parameters: {"lr": 0.01}\n' in shown
    shown = cli("artifacts", "show", "store://default/table").stdout
    assert "  schema:\n    label: str\n    x: int64\n" in shown
    assert '  preview: [[1, "a"], [2, "b"]]\n' in shown
