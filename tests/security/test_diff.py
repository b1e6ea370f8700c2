"""`diff` sees only what the token may see: another project's artifacts and runs are "no such node",
worded exactly as a node that does not exist, so ids cannot be probed."""

from __future__ import annotations

from typing import Any

from provgraph.graph.ids import dataset_node_id
from tests.helpers import graphql
from tests.test_causal_diff import DIFF, Chain, node, served_lab  # noqa: F401  (the served fixture)


def _error(body: dict[str, Any]) -> str:
    assert body["data"] is None, body
    message: str = body["errors"][0]["message"]
    return message


def test_a_foreign_token_gets_no_such_node(served_lab: tuple[str, str, str, Chain, Chain]) -> None:  # noqa: F811
    url, token, other, one, two = served_lab
    model = dataset_node_id(*node(one.model).key)
    assert _error(graphql(url, other, DIFF, a=one.model, b=two.model)) == f"no such node: {one.model}"
    assert _error(graphql(url, other, DIFF, a=model, b=two.model)) == f"no such node: {model}"
    assert _error(graphql(url, other, DIFF, a=f"run:{one.train}", b=f"run:{two.train}")) == (
        f"no such node: run:{one.train}"
    )
    # exactly as a run that does not exist, for the owner too
    assert _error(graphql(url, token, DIFF, a=f"run:{one.train}", b="run:nope")) == "no such node: run:nope"
    missing = "store://lab/model@sha256:" + "0" * 64
    assert _error(graphql(url, token, DIFF, a=one.model, b=missing)) == (
        f"no such node: {dataset_node_id(*node(missing).key)}"
    )
