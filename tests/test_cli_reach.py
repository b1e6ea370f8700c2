"""The CLI names any node the API can name: ids with `://` namespaces, --namespace/--name, name
fragments and run-id prefixes (several matches: listed, exit 1); facets in `show`; column lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provgraph.events.settings import Settings
from provgraph.events.transport.sqlite import SqliteEventLog
from tests.facet_events import DB, mart_run, model_run
from tests.test_cli import cli  # noqa: F401  (the fixture)


@pytest.fixture
def seeded(cli, tmp_path: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    log = SqliteEventLog(Settings(home=tmp_path / "home").events_db)
    log.append([*model_run("stg-1"), *model_run("stg-2", 60, "select 2"), *mart_run()])
    log.close()
    return cli


def test_any_spelling_of_a_dataset_starts_the_same_walk(seeded) -> None:  # type: ignore[no-untyped-def]
    roots = {
        json.loads(seeded("lineage", *args, "--json").stdout)["root"]
        for args in (
            (f"dataset:{DB}:mart",),
            ("--namespace", DB, "--name", "mart"),
            ("mart",),  # a fragment matching job shop.mart too: the exact dataset name wins
        )
    }
    assert roots == {f"dataset:{DB}:mart"}
    walk = json.loads(seeded("lineage", f"dataset:{DB}:mart@unversioned", "--json").stdout)
    assert {n["props"]["name"] for n in walk["nodes"] if n["kind"] == "datasetVersion"} >= {"mart", "stg"}


def test_several_matches_are_listed_and_exit_1(seeded) -> None:  # type: ignore[no-untyped-def]
    proc = seeded("lineage", "shop.", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "  job:dbt:shop.mart",
        "  job:dbt:shop.stg",
        "error: 'shop.' matches 2 nodes; pass one of the ids listed above",
    ]
    runs = seeded("show", "stg-", ok=False)
    assert (runs.returncode, runs.stderr.splitlines()[:2]) == (1, ["  run:stg-1", "  run:stg-2"])
    assert json.loads(seeded("show", "mart-", "--json").stdout)["run_id"] == "mart-1"  # a unique prefix
    none = seeded("show", "zzz", ok=False)
    assert (none.returncode, none.stderr) == (1, "error: nothing matches 'zzz' (try `provgraph search`)\n")


def test_show_prints_facets_of_runs_jobs_and_datasets(seeded) -> None:  # type: ignore[no-untyped-def]
    out = seeded("show", "stg-1").stdout
    for line in (
        "error     division by zero",
        "language  SQL",
        "at line 3",
        f"quality   pass  not_null  {DB}:raw.id",
        f"quality   FAIL  row_count  {DB}:raw",
        "job type  DBT MODEL BATCH",
        "source    https://git.example/shop models/stg.sql  branch main version abc123",
        "sql (duckdb)",
        "    select 2",  # the job's latest SQL (stg-2 ran later)
        "schema    raw: id INTEGER, addr STRUCT, addr.city VARCHAR",
    ):
        assert line in out, (line, out)
    shown = json.loads(seeded("show", "run:stg-1", "--json").stdout)
    assert shown["facets"]["run:stg-1"]["error"] == {
        "message": "division by zero",
        "programming_language": "SQL",
        "stack_trace": "at line 3",
    }
    assert shown["facets"]["job:dbt:shop.stg"]["sql"] == {"query": "select 2", "dialect": "duckdb"}
    job = json.loads(seeded("show", "job:dbt:shop.stg", "--json").stdout)
    assert (job["run_count"], job["facets"]["sql"]["query"]) == (2, "select 2")
    dataset = json.loads(seeded("show", "--namespace", DB, "--name", "stg", "--json").stdout)
    assert dataset["versions"][0]["schema"] == [
        {"name": "id", "type": "INTEGER", "description": None},
        {"name": "amount_usd", "type": "DOUBLE", "description": None},
    ]


def test_column_lineage_and_search_from_the_cli(seeded) -> None:  # type: ignore[no-untyped-def]
    walk = json.loads(seeded("lineage", "mart", "--column", "total", "--json").stdout)
    assert [n["field"] for n in walk["nodes"]] == ["total", "amount_usd", "id", "amount", "id"]
    assert walk["partial"] is False
    tree = seeded("lineage", "mart", "--column", "total").stdout
    assert "duckdb://warehouse:stg amount_usd  DIRECT/AGGREGATION" in tree
    assert "duckdb://warehouse:raw amount  DIRECT/IDENTITY" in tree
    hits = [json.loads(line) for line in seeded("search", "stg", "--json").stdout.splitlines()]
    assert [h["id"] for h in hits] == ["job:dbt:shop.stg", "run:stg-2", "run:stg-1", f"dataset:{DB}:stg"]
    assert seeded("search", "stg", "--kind", "dataset").stdout == f"dataset:{DB}:stg\n"


def test_token_list_and_spool_status_speak_json(cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    cli("token", "create", "--project", "dbt", "--name", "ci")
    (token,) = [json.loads(line) for line in cli("token", "list", "--json").stdout.splitlines()]
    assert (token["name"], token["projects"], token["active"], token["revoked_at"]) == ("ci", ["dbt"], True, None)
    status = json.loads(cli("spool", "status", "--json").stdout)
    assert (status["records"], status["bytes"], status["segments"]) == (0, 0, 0)
