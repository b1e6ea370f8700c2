"""The CLI shows issue 11's semantics: attempted outputs in `show`, `lineage --include-failed`
and `--as-of`, and `provgraph doctor` listing incomplete runs."""

from __future__ import annotations

import json
from pathlib import Path

from provgraph.events.settings import Settings
from provgraph.events.transport.sqlite import SqliteEventLog
from provgraph.graph.projection import minted_version
from tests.contract.test_truth_contract import WH, _t
from tests.test_api_truth import seed
from tests.test_cli import cli  # noqa: F401 (the fixture)


def _seed(tmp_path: Path) -> None:
    log = SqliteEventLog(Settings(home=tmp_path / "home").events_db)
    log.append(seed())
    log.close()


def test_show_marks_attempted_outputs_and_incompleteness(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _seed(tmp_path)
    out = cli("show", "bad-3").stdout
    assert f"output    -: {WH} orders  run-70bd63b2748" in out
    assert "attempted (the run did not complete: not written)" in out
    assert "attempted" not in cli("show", "day-1").stdout
    assert "incomplete sequenceGap, noStart (missing events 1)" in cli("show", "gappy").stdout


def test_lineage_include_failed_and_as_of(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _seed(tmp_path)
    plain = json.loads(cli("lineage", "run:bad-3", "--downstream", "--json").stdout)
    assert plain["edges"] == [] and plain["partial_reasons"] == []
    failed = json.loads(cli("lineage", "run:bad-3", "--downstream", "--include-failed", "--json").stdout)
    assert [(e["kind"], e["target"]) for e in failed["edges"]] == [
        ("ATTEMPTED", f"dataset:{WH}:orders@{minted_version('bad-3')}")
    ]
    tree = cli("lineage", "run:bad-3", "--downstream", "--include-failed").stdout
    assert "(attempted, not written)" in tree
    then = json.loads(
        cli("lineage", "run:day-2", "--downstream", "--as-of", _t(35).strftime("%Y-%m-%dT%H:%M:%S"), "--json").stdout
    )
    assert then["edges"] == []
    now = json.loads(cli("lineage", "run:day-2", "--downstream", "--json").stdout)
    assert [e["kind"] for e in now["edges"]] == ["WROTE"]
    assert now["depth"] == 5  # the API's default too


def test_doctor_lists_incomplete_runs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _seed(tmp_path)
    lines = cli("doctor", "--json").stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "run_id": "gappy",
            "project": "dbt",
            "job": "job",
            "state": "COMPLETE",
            "missing": [1],
            "reasons": ["sequenceGap", "noStart"],
        }
    ]
    table = cli("doctor").stdout
    assert "gappy" in table and "sequenceGap, noStart" in table
    assert cli("doctor", "--project", "nobody").stdout.strip() == "every run is complete"
