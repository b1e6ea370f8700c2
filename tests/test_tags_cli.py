"""`provgraph tag`, `artifacts list|show` and `store://p/key:alias` as an input, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provgraph.events.artifacts import sha256_bytes
from tests.test_cli import cli  # noqa: F401  (the CLI fixture)

JOBS = """\
def train(ctx, body: str = "w1"):
    ctx.log_model("model", body=body.encode(), framework="none")

def serve(ctx, model):
    assert model.get() == b"w1"
"""


@pytest.mark.slow
def test_tag_then_resolve_list_and_show(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    (tmp_path / "job.py").write_text(JOBS)
    cli("run", "job.py:train")
    cli("run", "job.py:train", "-p", "body=w2")
    v1, v2 = sha256_bytes(b"w1"), sha256_bytes(b"w2")
    moved = json.loads(cli("tag", f"store://default/model@{v1}", "production", "--json").stdout)
    assert (moved["dataset"], moved["alias"], moved["version"]) == ("store://default/model", "production", v1)
    assert "@" in moved["by"]  # user@host
    cli("run", "job.py:serve", "-i", "model=store://default/model:production")  # reads v1: a consumer of v1 below
    assert cli("get", "store://default/model:production").stdout == "w1"
    assert cli("get", "store://default/model").stdout == "w2"  # no alias: the latest
    listed = json.loads(cli("artifacts", "list", "--kind", "model", "--json").stdout)
    assert [(a["uri"], a["versions"], a["aliases"]) for a in listed] == [
        ("store://default/model", 2, {"production": v1})
    ]
    assert json.loads(cli("artifacts", "list", "--tag", "staging", "--json").stdout) == []
    shown = json.loads(cli("artifacts", "show", "store://default/model", "--json").stdout)
    assert [(v["version"], v["aliases"], len(v["consumers"])) for v in shown["version_list"]] == [
        (v1, ["production"], 1),
        (v2, [], 0),
    ]
    assert [(m["alias"], m["version"]) for m in shown["tag_history"]] == [("production", v1)]
    bad = cli("tag", "store://default/model", "Prod", ok=False)
    assert bad.returncode == 1
    assert bad.stderr == (
        "error: bad alias 'Prod': lower-case letters, digits, '_', '.', '-', starting with a letter,"
        " at most 63 characters, and not 'latest'\n"
    )
    missing = cli("get", "store://default/model:staging", ok=False)
    assert missing.stderr == (
        "error: no artifact store://default/model:staging (see `provgraph lineage` or `provgraph show RUN_ID`)\n"
    )
