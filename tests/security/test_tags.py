"""The `tag` mutation and the registry queries: only a token of the artifact's project may tag it
or see it; the version must exist; a malformed alias is refused; nothing of a refusal is recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph._tags import tag_event
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.admission import check_tag
from provgraph.events.artifacts import sha256_bytes
from provgraph.events.errors import ContractError, Forbidden
from provgraph.events.facets import ParamsRunFacet, TagRunFacet
from provgraph.events.facets.tag_run import TAG_JOB
from provgraph.events.model import Dataset, Job, RunEvent
from provgraph.events.settings import Settings
from provgraph.events.synthetic import content_hash
from tests.helpers import graphql

TAG = """mutation($d: String!, $a: String!, $v: String) {
  tag(dataset: $d, alias: $a, version: $v) { dataset alias version by runId }
}"""
SHOW = """query($u: String!) { artifact(uri: $u) {
  uri kind versionCount aliases { alias version } versions { version { version } producedBy aliases }
  tagHistory { alias version by } } }"""
LIST = """query($p: String!, $t: String) { artifacts(project: $p, tag: $t) { uri aliases { alias version } } }"""


def train(ctx: pg.Context, body: str = "w1") -> None:
    ctx.log_model("model", body=body.encode(), framework="none")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, str, list[str], list[str]]]:
    """(url, token of demo, token of other, [v1, v2] of store://demo/model, [run ids])."""
    settings = Settings(home=tmp_path / "home")
    backend = pg.Backend(settings)
    try:
        runs = [pg.run(train, params={"body": b}, project="demo", backend=backend) for b in ("w1", "w2")]
    finally:
        backend.close()
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["demo"], name="demo")[1]
    other = tokens.create(["other"], name="other")[1]
    tokens.close()
    versions = [sha256_bytes(b"w1"), sha256_bytes(b"w2")]
    with ServerThread(create_app(settings)) as url:
        yield url, token, other, versions, [r.run_id for r in runs]


def test_a_token_tags_its_projects_artifact_and_reads_the_history(
    served: tuple[str, str, str, list[str], list[str]],
) -> None:
    url, token, _, (v1, v2), (r1, r2) = served
    moved = graphql(url, token, TAG, d="store://demo/model", a="production", v=v1)["data"]["tag"]
    assert {k: moved[k] for k in ("dataset", "alias", "version")} == {
        "dataset": "store://demo/model",
        "alias": "production",
        "version": v1,
    }
    assert moved["by"].startswith("token:")
    graphql(url, token, TAG, d="store://demo/model", a="production")  # no version: the latest
    graphql(url, token, TAG, d="store://demo/model:production", a="previous", v=None)  # from an alias
    shown = graphql(url, token, SHOW, u="store://demo/model")["data"]["artifact"]
    assert shown["aliases"] == [{"alias": "previous", "version": v2}, {"alias": "production", "version": v2}]
    assert [(v["version"]["version"], v["producedBy"], v["aliases"]) for v in shown["versions"]] == [
        (v1, r1, []),
        (v2, r2, ["previous", "production"]),
    ]
    assert [(m["alias"], m["version"]) for m in shown["tagHistory"]] == [
        ("production", v1),
        ("production", v2),
        ("previous", v2),
    ]
    listed = graphql(url, token, LIST, p="demo", t="production")["data"]["artifacts"]
    assert [a["uri"] for a in listed] == ["store://demo/model"]
    # MLRun's form, pinned by the producing run's uid
    by_uid = graphql(url, token, TAG, d=f"store://models/demo/model@{r1}", a="first")["data"]["tag"]
    assert (by_uid["alias"], by_uid["version"]) == ("first", v1)


def test_another_projects_token_can_neither_tag_nor_see(served: tuple[str, str, str, list[str], list[str]]) -> None:
    url, token, other, (v1, _), _ = served
    refused = graphql(url, other, TAG, d="store://demo/model", a="production", v=v1)
    assert refused["data"] is None
    assert refused["errors"][0]["message"] == "no such artifact: store://demo/model"
    assert graphql(url, other, SHOW, u="store://demo/model")["errors"][0]["message"] == (
        "no such artifact: store://demo/model"
    )
    assert graphql(url, other, LIST, p="demo")["data"]["artifacts"] == []
    assert graphql(url, token, SHOW, u="store://demo/model")["data"]["artifact"]["tagHistory"] == []


def test_a_missing_version_or_a_malformed_alias_is_refused(served: tuple[str, str, str, list[str], list[str]]) -> None:
    url, token, _, _, _ = served
    missing = content_hash("never logged")
    got = graphql(url, token, TAG, d="store://demo/model", a="production", v=missing)
    assert got["errors"][0]["message"] == f"no version {missing} of artifact 'model' in project 'demo'"
    absent = graphql(url, token, TAG, d="store://demo/nothing", a="production")
    assert absent["errors"][0]["message"] == "no artifact 'nothing' in project 'demo'"
    for alias in ("Production", "latest", "a b", "x" * 64, "1st", "prod\n", ""):
        bad = graphql(url, token, TAG, d="store://demo/model", a=alias)
        assert bad["data"] is None
        assert bad["errors"][0]["message"] == (
            f"bad alias {alias!r}: lower-case letters, digits, '_', '.', '-', starting with a letter,"
            " at most 63 characters, and not 'latest'"
        )
    assert graphql(url, token, SHOW, u="store://demo/model")["data"]["artifact"]["tagHistory"] == []


V = sha256_bytes(b"w1")


def _event(**changes: Any) -> RunEvent:
    """A well-formed tag event of project demo, with `changes` to its facet, job or parts."""
    facet = TagRunFacet(namespace="store://demo", name="model", version=V, alias="production", by="ann@host")
    event = tag_event(facet, "demo")
    facets = event.run.facets.model_copy(update=changes.pop("facets", {}))
    return event.model_copy(update={"run": event.run.model_copy(update={"facets": facets}), **changes})


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (
            _event(job=Job(namespace="other", name=TAG_JOB)),
            Forbidden,
            "may not tag store://demo/model: only the artifact's project (store://other) tags it",
        ),
        (_event(job=Job(namespace="demo", name="train")), ContractError, "belongs to runs of job 'provgraph.tag'"),
        (_event(facets={"tag": None}), ContractError, "a run of job 'provgraph.tag' carries the provgraph_tag facet"),
        (
            _event(facets={"params": ParamsRunFacet(params={"alias": "production"})}),
            ContractError,
            "a tag run's provgraph_params are its tag",
        ),
        (
            _event(inputs=[Dataset(namespace="store://demo", name="model")]),
            ContractError,
            "a tag run reads and writes no datasets",
        ),
    ],
)
def test_the_write_rules_refuse_malformed_or_foreign_tag_events(
    event: RunEvent, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as err:
        check_tag(event)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", "sha256:abc", "version 'sha256:abc' is not a content hash"),
        ("alias", "Prod", "alias 'Prod': lower-case letters"),
        ("alias", "latest", "alias 'latest': lower-case letters"),
    ],
)
def test_the_write_rules_refuse_a_bad_version_or_alias(field: str, value: str, message: str) -> None:
    tag = _event().run.facets.tag
    assert tag is not None
    event = _event(facets={"tag": tag.model_copy(update={field: value})})
    with pytest.raises(ContractError) as err:
        check_tag(event)
    assert message in str(err.value)


def test_a_well_formed_tag_event_is_admitted() -> None:
    check_tag(_event())
