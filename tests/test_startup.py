"""Start-up: what `import provgraph` and the CLI load, and that lazy commands are the real ones.

Real behaviour, not timing: a fresh interpreter's `sys.modules` after the command (bench/bench_import.py
prints the walls).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from provgraph._environment import name_and_version, packages_digest
from provgraph.cli import app
from provgraph.cli._commands import COMMANDS

HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "httpx",
    "neo4j",
    "aiokafka",
    "confluent_kafka",
    "faststream",
    "kubernetes",
    "strawberry",
    "starlette",
    "fastapi",
    "uvicorn",
    "fsspec",
    "yaml",
)
"""Third-party packages no start-up path below needs."""

PYDANTIC = ("pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection")
"""pydantic and what it imports: the event contract's models."""

LOADED = """
import json, sys
{code}
print(json.dumps(sorted(sys.modules)))
"""
CLI = """
from provgraph.cli import main
sys.argv = ["provgraph", *{args!r}]
try:
    main()
except SystemExit:
    pass
"""


def loaded(code: str, tmp_path: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(tmp_path / "home"), COLUMNS="200", NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-c", LOADED.format(code=code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_import_provgraph_loads_no_third_party_package(tmp_path: Path) -> None:
    modules = loaded("import provgraph", tmp_path)
    assert heavy(modules) == [] and "pydantic" not in modules
    assert sorted(m for m in modules if m.startswith("provgraph")) == ["provgraph"]


def test_help_imports_no_command_module_and_no_settings(tmp_path: Path) -> None:
    modules = loaded(CLI.format(args=["--help"]), tmp_path)
    assert heavy(modules) == [] and "pydantic" not in modules
    assert not {m for m in modules if m.startswith(RICH_HELP_MODULES)}
    assert sorted(m for m in modules if m.startswith("provgraph")) == [
        "provgraph",
        "provgraph.cli",
        "provgraph.cli._commands",
        "provgraph.cli._help",
    ]
    assert not {m for m in modules if m.split(".")[0] in ("typer", "click", "subprocess")}  # typer: not at all


def test_runs_loads_its_own_module_only(tmp_path: Path) -> None:
    modules = loaded(CLI.format(args=["runs"]), tmp_path)
    assert heavy(modules) == []
    commands = {m for m in modules if m.startswith("provgraph.cli.") and not m.startswith("provgraph.cli._")}
    assert commands == {"provgraph.cli.runs"}  # (`show`'s helpers load with `show`)
    assert "provgraph.graph.facets" not in modules  # the facet views: a graph read for runs draws none
    assert not {"provgraph._execution", "provgraph._run", "provgraph._context"} & modules  # no SDK to list runs
    # nor the wire model: the read path names states and job names (`events.states`), and events are validated
    # (`serde.loads`) only when the log has some to project; `values` (the views' floats) loads alone
    wire = {m for m in modules if m == "provgraph.events.model" or m.startswith("provgraph.events.facets.")}
    assert wire == {"provgraph.events.facets.values"}
    assert "tomllib" not in modules  # settings parse TOML only when a config file exists
    third_party = {m.split(".")[0] for m in modules if not m.startswith("_")} - set(sys.stdlib_module_names)
    assert third_party == {"provgraph", "typer", "shellingham", "annotated_doc", "rich", "orjson", "apsw", *PYDANTIC}


UNBUILT = """
import pydantic
from provgraph.events import facets, model
from provgraph.graph import views
classes = [c for m in (facets, model, views) for c in vars(m).values() if isinstance(c, type)]
print(json.dumps(sorted(c.__name__ for c in classes if issubclass(c, pydantic.BaseModel) and c.__pydantic_complete__)))
"""


def test_runs_builds_no_validator_it_does_not_use(tmp_path: Path) -> None:
    """`runs` imports the event model and every read view, but validates only settings and the runs it
    lists: the others' validators are built on first use (`defer_build`), not when their modules load."""
    proc = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + CLI.format(args=["runs"]) + UNBUILT],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")},
            "PROVGRAPH_HOME": str(tmp_path),
        },
        check=True,
    )
    assert json.loads(proc.stdout.splitlines()[-1]) == []  # an empty home: not even a run view


def module_of(command: Any) -> str:
    """The module defining a command; for a group (no callback), its first command's."""
    while command.callback is None:
        command = next(iter(command.commands.values()))
    return str(command.callback.__module__).removeprefix("provgraph.cli.")


def test_a_tracked_run_loads_no_store_and_no_client(tmp_path: Path) -> None:
    """The first run in a process: the SDK, the event model and the log; no graph store, no clients."""
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "job.py").write_text(
        "def job(ctx, data):\n    ctx.log_artifact('out', body=data.get()[::-1])\n    ctx.log_result('n', 1)\n"
    )
    run = "import provgraph as pg; pg.run('job.py:job', inputs={'data': 'data.csv'}).raise_for_state()"
    modules = loaded(run, tmp_path)
    third_party = {m.split(".")[0] for m in modules if not m.startswith(("_", "provgraph_handler_"))}  # (the job)
    third_party -= set(sys.stdlib_module_names)
    assert third_party == {"provgraph", "orjson", *PYDANTIC}  # a local input and store: no fsspec
    graph = sorted(m for m in modules if m.startswith("provgraph.graph"))
    assert graph == ["provgraph.graph", "provgraph.graph.ids", "provgraph.graph.liveness"]
    assert not {"tomllib", "difflib"} & modules  # no config file to parse, no misspelt setting to suggest for


def test_commands_table_is_what_the_modules_define() -> None:
    """Names, modules and one-line help of `cli/_commands.py` against the commands themselves."""
    for module in {m for m, _ in COMMANDS.values()}:
        importlib.import_module(f"provgraph.cli.{module}")
    commands = get_command(app).commands  # type: ignore[attr-defined]
    defined = {name: (module_of(c), inspect.cleandoc(c.help or "").split("\n\n")[0]) for name, c in commands.items()}
    assert defined == COMMANDS


RICH_HELP_MODULES = ("typer.rich_utils", "rich.markdown", "markdown_it", "pygments", "rich.traceback", "attr")
"""typer's rich help module and what it imports: `provgraph --help` draws its help without them (cli/_help.py)."""

TYPER_HELP = """
from typer.core import TyperGroup
from provgraph.cli._app import LazyGroup
LazyGroup.format_help = TyperGroup.format_help
"""
"""The root help drawn by typer itself (what cli/_help.py must equal)."""


@pytest.mark.parametrize("colour", [{"NO_COLOR": "1"}, {"FORCE_COLOR": "1", "COLUMNS": "90"}])
@pytest.mark.parametrize("args", [["--help"], [], ["hub", "--help"], ["runs", "--help"]])
def test_lazy_help_is_the_eager_help(tmp_path: Path, args: list[str], colour: dict[str, str]) -> None:
    """The help printed from the table equals the help typer prints with every module imported and
    its own rich help module drawing it (the root help's escape codes included, in colour)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_") and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    env.update({"PROVGRAPH_HOME": str(tmp_path / "home"), "COLUMNS": "200", **colour})
    eager = "".join(f"import provgraph.cli.{m}\n" for m in sorted({m for m, _ in COMMANDS.values()}))
    outputs = [
        subprocess.run(
            [sys.executable, "-c", f"import sys\n{code}{CLI.format(args=args)}"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        for code in ("", eager + TYPER_HELP)
    ]
    assert outputs[0] == outputs[1] and "Usage: provgraph" in re.sub(r"\x1b\[[0-9;]*m", "", outputs[0])
    assert ("\x1b[" in outputs[0]) == ("FORCE_COLOR" in colour)


METADATA_HEADERS = [
    "Metadata-Version: 2.1\nName: a\nVersion: 1\n\nName: b\nVersion: 2\n",
    "name:a\r\nVERSION:  2 \r\n\r\nName: body",
    "Name: x\n y\nVersion: 3\n",
    "Name: a\nName: b\nVersion: 1\nVersion: 2",
    "",
    "Version: 1",
    "Summary: s\nnot a header line\nName: late",
    "Name: a\r b\rVersion: 9\r\rName: z",
    " lead\nName: q",
    "Name:\t\tt\n\tcont\r\n more\nVersion:1\n",
    "Name: a\r\n b\r\n\r\nVersion: 1",
    ":x\nName: n",
    "Name : spaced\nVersion: 1",
    "Name: \u00fc\nVersion: 1\n\n",
    "Name: a\nVersion: 1\n b\nName: c\nVersion: 2\n",
    "Version: 1\r\nName: a\r\n\tfold\r\nName: b\r\n",
    "Name: a\nVersion: 1\nSummary: " + "x" * 5000 + "\nbad line\n",
]


@pytest.mark.parametrize("text", METADATA_HEADERS)
def test_metadata_headers_are_read_as_the_email_parser_reads_them(text: str) -> None:
    """`packages_digest` scans only the header block; it must read what `Distribution.metadata` reads."""
    import email

    message = email.message_from_string(text)
    assert name_and_version(text) == (message["Name"], message["Version"])


def test_packages_digest_is_the_digest_of_what_importlib_metadata_reads() -> None:
    """The fast scan gives the digest recorded before it (over this very environment)."""
    from importlib import metadata

    versions: dict[str, str] = {}
    for d in metadata.distributions():
        if d.metadata["Name"]:
            versions.setdefault(d.metadata["Name"].lower(), d.version)
    names = "\n".join(sorted(f"{name}=={version}" for name, version in versions.items()))
    assert packages_digest() == "sha256:" + hashlib.sha256(names.encode()).hexdigest()
