"""The run query language: what it accepts, and one clear line for what it does not."""

from __future__ import annotations

import pytest

from provgraph.events.model import RunState
from provgraph.graph.contract import Condition, RunFilter
from provgraph.graph.run_query import QueryError, merge, parse


def test_conditions_fields_and_values() -> None:
    base, conds = parse(
        "metrics.accuracy > 0.9 and params.lr = 0.01 AND params.opt != 'a b' and params.flag = true"
        " and state = fail and job = train and project = demo and started >= 2026-03-01"
        ' and ended < "2026-03-02T10:00:00+02:00"'
    )
    assert base == RunFilter(project="demo", job="train", state=RunState.FAIL)
    assert conds == (
        Condition("metric", "accuracy", ">", 0.9),
        Condition("param", "lr", "=", 0.01),
        Condition("param", "opt", "!=", "a b"),
        Condition("param", "flag", "=", "true"),
        Condition("started", "", ">=", "2026-03-01T00:00:00+00:00"),
        Condition("ended", "", "<", "2026-03-02T08:00:00+00:00"),
    )
    assert parse("params.name = adam_v2")[1] == (Condition("param", "name", "=", "adam_v2"),)
    assert parse("params.n <= -3e2")[1] == (Condition("param", "n", "<=", -300.0),)
    assert parse(r"params.q = 'it\'s'")[1] == (Condition("param", "q", "=", "it's"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the query is empty: write conditions such as `metrics.accuracy > 0.9 and params.lr = 0.01`"),
        ("params.lr >", "the query ends in the middle of a condition ('params.lr >'): expected FIELD OP VALUE"),
        ("params.lr = 1 or params.lr = 2", "expected `and` at character 15, got 'or' (only `and` joins conditions)"),
        ("params.lr = 1 params.x = 2", "expected `and` at character 15, got 'params.x'"),
        (
            "tags.team = a",
            "unknown field 'tags.team' at character 1: use params.<key>, metrics.<key> or labels.<key>",
        ),
        ("labels.a/b/c = x", "'labels.a/b/c' at character 1: a label key is letters, digits, _ - . and one /"),
        (
            "colour = red",
            "unknown field 'colour' at character 1: use params.<key>, metrics.<key>, labels.<key>, state, job,"
            " project, started or ended",
        ),
        ("metrics.acc > high", "metrics.acc compares with a number, not 'high'"),
        ("state != FAIL", "state supports only `=` (got '!=')"),
        (
            "state = done",
            "'done' is not a run state; use one of START, RUNNING, COMPLETE, FAIL, ABORT, OTHER, REQUESTED, LOST",
        ),
        ("job = a and job = b", "job is given twice"),
        ("started > yesterday", "started compares with an ISO time such as 2026-03-01 or 2026-03-01T12:00:00Z"),
        ("params.lr = = 1", "expected a value at character 13, got '='"),
        ("params.lr ~ 1", "cannot read the query at character 11: '~ 1'"),
        ("params.lr = 1e999", "the number at character 13 is too large"),
        ("params.lr = 'open", 'cannot read the query at character 13: "\'open"'),
        ("params.x = 1 and " * 17 + "params.y = 1", "at most 16 param, metric, label and time conditions"),
        ("x" * 2001, "the query is 2001 characters long; the limit is 2000"),
    ],
)
def test_mistakes_are_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        parse(text)
    assert str(err.value) == message


def test_options_and_query_may_agree_not_differ() -> None:
    assert merge(RunFilter(job="train"), RunFilter(job="train", project="p")) == RunFilter(job="train", project="p")
    with pytest.raises(QueryError) as err:
        merge(RunFilter(state=RunState.FAIL), RunFilter(state=RunState.COMPLETE))
    assert str(err.value) == "state is 'FAIL' in the options and 'COMPLETE' in the query"


def test_compare_marks_what_differs() -> None:
    from provgraph.graph.compare import compare
    from provgraph.graph.views import DatasetRef, RunView

    def view(run_id: str, lr: float, version: str) -> RunView:
        return RunView(
            run_id=run_id,
            namespace="p",
            job_name="train",
            state=RunState.COMPLETE,
            params={"lr": lr, "seed": 1},
            metrics={"loss": float("nan")},
            inputs=[DatasetRef(namespace="file", name="/d.csv", version=version, binding="data")],
            runtime={"python": "3.11.7", "pid": int(lr * 100)},
        )

    c = compare([view("a", 0.1, "sha256:1"), view("b", 0.05, "sha256:2")])
    assert c.run_ids == ["a", "b"]
    assert [(r.section, r.key, r.values) for r in c.rows if r.differs] == [
        ("params", "lr", [0.1, 0.05]),
        ("inputs", "data", ["file//d.csv@sha256:1", "file//d.csv@sha256:2"]),
    ]
    same = {(r.section, r.key): r.values for r in c.rows if not r.differs}
    assert same[("params", "seed")] == [1, 1] and same[("metrics", "loss")] == ["NaN", "NaN"]
    assert same[("environment", "python")] == ["3.11.7", "3.11.7"] and ("environment", "pid") not in same


def test_label_conditions_are_text() -> None:
    assert parse("labels.team = vision and labels.v = 2 and labels.app.kubernetes.io/name != 'a b'")[1] == (
        Condition("label", "team", "=", "vision"),
        Condition("label", "v", "=", "2"),
        Condition("label", "app.kubernetes.io/name", "!=", "a b"),
    )
    assert parse("labels.n >= 1.50")[1] == (Condition("label", "n", ">=", "1.50"),)
