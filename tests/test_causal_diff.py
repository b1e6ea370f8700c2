"""Causal diff (`graph/causal_diff.py`): real prepare -> train runs made with the SDK, projected into
each store, and the exact causes found for a changed param, input file, code, and a change that
did not propagate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import provgraph as pg
from provgraph.api.app import create_app
from provgraph.api.auth import TokenStore
from provgraph.api.server import ServerThread
from provgraph.events.errors import ConfigError, NotFound
from provgraph.events.serde import loads
from provgraph.events.settings import Settings
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.causal_diff import CausalDiff, causal_diff
from provgraph.graph.contract import LineageStore
from provgraph.graph.ids import NodeId, dataset_node_id, parse_node_id
from tests.helpers import graphql_data
from tests.test_cli import cli  # noqa: F401  (the CLI fixture)

PREPARE = """\
def main(ctx, raw, note: str = "x"):
    ctx.log_artifact("clean", body=raw.get().upper())
"""
TRAIN = """\
def main(ctx, clean, lr: float = 0.1):
    ctx.log_model("model", body=clean.get() + f" lr={lr}".encode(), framework="none")
"""
TRAIN_V2 = TRAIN.replace('f" lr={lr}"', 'f" lr={lr} v2"')
SNEAKY = """\
from pathlib import Path

def main(ctx, clean, lr: float = 0.1):
    untracked = (Path(__file__).parent / "untracked.txt").read_bytes()  # read behind provgraph's back
    ctx.log_model("model", body=clean.get() + untracked, framework="none")
"""


@dataclass
class Chain:
    """The URIs and run ids of one prepare -> train chain."""

    clean: str
    model: str
    prepare: str
    train: str


class Lab:
    """A project in a temporary home where prepare -> train chains run for real (embedded SDK)."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.settings = Settings(home=tmp_path / "home")
        self.backend = pg.Backend(self.settings)
        (tmp_path / "prepare.py").write_text(PREPARE)
        (tmp_path / "train.py").write_text(TRAIN)
        (tmp_path / "train_v2.py").write_text(TRAIN_V2)
        (tmp_path / "sneaky.py").write_text(SNEAKY)

    def raw(self, name: str, body: bytes) -> str:
        path = self.dir / name
        path.write_bytes(body)
        return str(path)

    def prepare(self, raw: str, **params: Any) -> tuple[str, str]:
        r = pg.run(
            f"{self.dir}/prepare.py:main", params, {"raw": raw}, project="lab", name="prepare", backend=self.backend
        )
        r.raise_for_state()
        return r.outputs["clean"], r.run_id

    def train(self, clean: str, code: str = "train.py", image: str | None = None, **params: Any) -> tuple[str, str]:
        handler = f"{self.dir}/{code}:main"
        r = pg.run(handler, params, {"clean": clean}, project="lab", name="train", image=image, backend=self.backend)
        r.raise_for_state()
        return r.outputs["model"], r.run_id

    def chain(self, raw: str, prepare: dict[str, Any] | None = None, **train: Any) -> Chain:
        clean, p = self.prepare(raw, **(prepare or {}))
        model, t = self.train(clean, **train)
        return Chain(clean, model, p, t)

    def close(self) -> None:
        self.backend.close()

    def project(self, store: LineageStore) -> None:
        """Every event the SDK logged, applied to `store` (the embedded graph, or Neo4j)."""
        self.close()
        log = SqliteEventLog(self.settings.events_db)
        try:
            store.apply([loads(r.body) for r in log.read()])
        finally:
            log.close()


def node(uri: str) -> NodeId:
    """A `store://p/key@version` URI as its dataset version node."""
    project, _, rest = uri.removeprefix("store://").partition("/")
    key, _, version = rest.partition("@")
    return NodeId.dataset(f"store://{project}", key, version)


def version(uri: str) -> str:
    return uri.rpartition("@")[2]


def file_version(store: LineageStore, path: str) -> str:
    latest = store.latest_version("file", path)
    assert latest is not None
    return dataset_node_id("file", path, latest.version)


def causes(d: CausalDiff) -> list[tuple[str, str, str, Any, Any]]:
    return [(c.kind, c.job, c.key, c.a, c.b) for c in d.causes]


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


def test_a_changed_param_is_the_cause_and_an_unchanged_upstream_is_not(lab: Lab, store: LineageStore) -> None:
    raw = lab.raw("raw.csv", b"a,b\n1,2\n")
    one = lab.chain(raw, lr=0.1)
    two = lab.chain(raw, prepare={"note": "y"}, lr=0.05)  # prepare's note changes nothing it writes
    assert version(one.clean) == version(two.clean)
    lab.project(store)
    d = causal_diff(store, node(one.model), node(two.model))
    assert not d.same_content and not d.partial
    assert causes(d) == [("param", "train", "lr", 0.1, 0.05)]
    assert (d.causes[0].run_a, d.causes[0].run_b) == (one.train, two.train)
    # the note changed upstream but its output hashed the same: "no effect", not a cause
    assert [(c.kind, c.job, c.key, c.a, c.b, c.run_a, c.run_b) for c in d.no_effect] == [
        ("param", "prepare", "note", "x", "y", one.prepare, two.prepare)
    ]
    assert d.summary() == (
        f"model@{version(two.model)[:19]}… differs from model@{version(one.model)[:19]}…"
        " because train's param lr 0.1 → 0.05"
    )


def test_a_changed_input_file_is_found_two_runs_up(lab: Lab, store: LineageStore) -> None:
    one = lab.chain(lab.raw("raw.csv", b"a,b\n1,2\n"))
    first_raw = lab.dir / "raw.csv"
    two = lab.chain(lab.raw("raw.csv", b"a,b\n1,3\n"))
    lab.project(store)
    history = store.dataset("file", str(first_raw))
    assert history is not None
    old, new = (dataset_node_id("file", str(first_raw), v.version) for v in history.versions)
    d = causal_diff(store, node(one.model), node(two.model))
    assert causes(d) == [("input", "prepare", "raw", old, new)]
    assert d.no_effect == []
    assert d.summary().endswith(
        f" because prepare read raw.csv {parse_node_id(old).key[2][:19]}… → {parse_node_id(new).key[2][:19]}…"
    )


def test_param_and_input_together_as_the_issue_tells_it(lab: Lab, store: LineageStore) -> None:
    one = lab.chain(lab.raw("raw.csv", b"1\n"), lr=0.1)
    two = lab.chain(lab.raw("raw.csv", b"2\n"), lr=0.05)
    lab.project(store)
    d = causal_diff(store, node(one.model), node(two.model))
    assert [(c.kind, c.job, c.key) for c in d.causes] == [("param", "train", "lr"), ("input", "prepare", "raw")]
    assert " because train's param lr 0.1 → 0.05 and prepare read raw.csv sha256:" in d.summary()


def test_changed_code_is_the_cause(lab: Lab, store: LineageStore) -> None:
    raw = lab.raw("raw.csv", b"1\n")
    one = lab.chain(raw)
    two = lab.chain(raw, code="train_v2.py")
    lab.project(store)
    d = causal_diff(store, node(one.model), node(two.model))
    first, second = (store.run(r) for r in (one.train, two.train))
    assert first is not None and second is not None and first.code_hash != second.code_hash
    assert causes(d) == [("code", "train", "code_hash", first.code_hash, second.code_hash)]


def test_a_changed_environment_is_the_cause_and_without_any_change_it_is_unexplained(
    lab: Lab, store: LineageStore
) -> None:
    raw = lab.raw("raw.csv", b"1\n")
    clean, _ = lab.prepare(raw)
    (lab.dir / "untracked.txt").write_bytes(b"libfoo 1")
    one, first = lab.train(clean, code="sneaky.py", image="trainer:1")
    (lab.dir / "untracked.txt").write_bytes(b"libfoo 2")  # the new image ships another library
    two, second = lab.train(clean, code="sneaky.py", image="trainer:2")
    (lab.dir / "untracked.txt").write_bytes(b"libfoo 3")  # nothing provgraph sees changed
    three, third = lab.train(clean, code="sneaky.py", image="trainer:2")
    lab.project(store)
    d = causal_diff(store, node(one), node(two))
    assert causes(d) == [("environment", "train", "image", "trainer:1", "trainer:2")]
    assert (d.causes[0].run_a, d.causes[0].run_b) == (first, second)
    assert d.summary().endswith(" because train's image trainer:1 → trainer:2")
    odd = causal_diff(store, node(two), node(three))
    assert [(c.kind, c.job, c.key, c.run_a, c.run_b) for c in odd.causes] == [
        ("unexplained", "train", "model", second, third)
    ]
    assert odd.summary().endswith(
        " because train wrote a different model from the same code, params, inputs and environment"
    )


def test_identical_content_and_two_runs(lab: Lab, store: LineageStore) -> None:
    raw = lab.raw("raw.csv", b"1\n")
    one = lab.chain(raw)
    two = lab.chain(raw, prepare={"note": "z"})
    assert one.model == two.model
    three = lab.chain(raw, lr=0.2)
    lab.project(store)
    same = causal_diff(store, node(one.model), node(two.model))
    assert same.same_content and same.causes == [] and same.summary().endswith(": same content")
    # two runs whose outputs are equal: same content, their differences had no effect
    runs = causal_diff(store, NodeId.run(one.train), NodeId.run(two.train))
    assert runs.same_content and runs.causes == []
    assert [(c.kind, c.job, c.key) for c in runs.no_effect] == [("param", "prepare", "note")]
    assert causal_diff(store, NodeId.run(one.prepare), NodeId.run(one.prepare)).same_content
    differing = causal_diff(store, NodeId.run(one.train), NodeId.run(three.train))
    assert causes(differing) == [("param", "train", "lr", 0.1, 0.2)]
    assert differing.summary() == f"run {three.train} differs from run {one.train} because train's param lr 0.1 → 0.2"


def test_a_root_artifact_no_run_wrote_differs_by_content(lab: Lab, store: LineageStore) -> None:
    raw = lab.raw("raw.csv", b"1\n")
    lab.chain(raw)
    first = file_version(lab.backend.graph(), raw)
    lab.chain(lab.raw("raw.csv", b"2\n"))
    second = file_version(lab.backend.graph(), raw)
    lab.project(store)
    d = causal_diff(store, parse_node_id(first), parse_node_id(second))
    assert causes(d) == [("input", "", "", first, second)]
    assert d.summary().split(" because ")[1].startswith("content raw.csv sha256:")


def test_bad_and_missing_nodes(lab: Lab, store: LineageStore) -> None:
    one = lab.chain(lab.raw("raw.csv", b"1\n"))
    lab.project(store)
    with pytest.raises(ConfigError) as mixed:
        causal_diff(store, node(one.model), NodeId.run(one.train))
    assert str(mixed.value) == (
        "diff compares two dataset versions (dataset:<ns>:<name>@<version>, store://…) or two runs"
    )
    missing = NodeId.dataset("store://lab", "model", "sha256:" + "0" * 64)
    with pytest.raises(NotFound) as absent:
        causal_diff(store, node(one.model), missing)
    assert str(absent.value) == f"no such node: {dataset_node_id(*missing.key)}"
    with pytest.raises(NotFound) as no_run:
        causal_diff(store, NodeId.run(one.train), NodeId.run("nope"))
    assert str(no_run.value) == "no such node: run:nope"
    # a dataset named without a version is its latest
    latest = causal_diff(store, node(one.model), NodeId.dataset("store://lab", "model"))
    assert latest.same_content


# -- the CLI and GraphQL ---------------------------------------------------------------------------


def test_cli_diff_tree_and_json(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    lab = Lab(tmp_path)  # the CLI's home: tmp_path/home
    raw = lab.raw("raw.csv", b"1\n")
    one = lab.chain(raw, lr=0.1)
    two = lab.chain(lab.raw("raw.csv", b"2\n"), lr=0.05)
    same = lab.chain(lab.raw("raw.csv", b"2\n"), prepare={"note": "q"}, lr=0.05)
    lab.close()
    lines = cli("diff", one.model, two.model).stdout.splitlines()
    assert lines[0] == f"model@{version(two.model)[:19]}… differs from model@{version(one.model)[:19]}… because"
    assert lines[1] == "├── train's param lr 0.1 → 0.05"
    assert lines[2].startswith("└── prepare read raw.csv sha256:") and len(lines) == 3
    got = json.loads(cli("diff", one.model, two.model, "--json").stdout)
    assert [(c["kind"], c["job"], c["key"], c["a"], c["b"]) for c in got["causes"]] == [
        ("param", "train", "lr", 0.1, 0.05),
        ("input", "prepare", "raw", got["causes"][1]["a"], got["causes"][1]["b"]),
    ]
    assert got["causes"][1]["a"].startswith(f"dataset:file:{raw}@sha256:") and got["same_content"] is False
    out = cli("diff", two.model, same.model, "--json").stdout
    assert json.loads(out)["same_content"] is True
    assert cli("diff", two.model, same.model).stdout == (
        f"model@{version(same.model)[:19]}… and model@{version(two.model)[:19]}…: same content\n"
    )
    runs = json.loads(cli("diff", f"run:{two.train}", same.train, "--json").stdout)
    assert runs["same_content"] is True and [(c["job"], c["key"]) for c in runs["no_effect"]] == [("prepare", "note")]
    bad = cli("diff", one.model, "store://lab/nope", ok=False)
    assert (bad.returncode, bad.stderr) == (1, "error: no such node: dataset:store://lab:nope\n")


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def served_lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, str, Chain, Chain]]:
    """(url, token of lab, token of other, two chains differing in lr) on a server over each store."""
    lab = Lab(tmp_path)
    raw = lab.raw("raw.csv", b"1\n")
    one, two = lab.chain(raw, lr=0.1), lab.chain(raw, prepare={"note": "y"}, lr=0.05)
    lab.close()
    settings = lab.settings
    if request.param == "neo4j":
        from provgraph.graph.neo4j_store import Neo4jLineageStore

        settings = Settings(home=tmp_path / "home", store="neo4j", neo4j_uri=request.getfixturevalue("neo4j"))
        graph = Neo4jLineageStore.from_settings(settings)
        try:
            graph.reset()
            lab.project(graph)
        finally:
            graph.close()
    tokens = TokenStore(settings.tokens_db)
    token = tokens.create(["lab"], name="lab")[1]
    other = tokens.create(["other"], name="other")[1]
    tokens.close()
    with ServerThread(create_app(settings)) as url:
        yield url, token, other, one, two


DIFF = """query($a: ID!, $b: ID!) { diff(a: $a, b: $b) {
  a b sameContent summary partial partialReasons
  causes { kind job namespace key a b runA runB text }
  noEffect { kind job key a b }
} }"""


def test_graphql_diff(served_lab: tuple[str, str, str, Chain, Chain]) -> None:
    url, token, _, one, two = served_lab
    got = graphql_data(url, token, DIFF, a=one.model, b=dataset_node_id(*node(two.model).key))["diff"]
    assert got["a"] == dataset_node_id(*node(one.model).key) and got["sameContent"] is False
    assert got["causes"] == [
        {
            "kind": "param",
            "job": "train",
            "namespace": "lab",
            "key": "lr",
            "a": 0.1,
            "b": 0.05,
            "runA": one.train,
            "runB": two.train,
            "text": "train's param lr 0.1 → 0.05",
        }
    ]
    assert got["noEffect"] == [{"kind": "param", "job": "prepare", "key": "note", "a": "x", "b": "y"}]
    assert got["summary"].endswith(" because train's param lr 0.1 → 0.05") and got["partial"] is False
    runs = graphql_data(url, token, DIFF, a=f"run:{one.train}", b=f"run:{two.train}")["diff"]
    assert [c["text"] for c in runs["causes"]] == ["train's param lr 0.1 → 0.05"]
