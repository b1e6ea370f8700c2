"""Registered functions: versioned by the hash of their definition, recorded as events (a run of
`provgraph.function.register` whose output is the definition), listed, shown and run as
`function://name[@version]`, and reproduced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import provgraph as pg
from provgraph._function import REGISTER_JOB, list_functions, register, show
from provgraph.events.errors import ConfigError, NotFound

GREET = '''
def greet(context, who: str = "world", times: int = 1):
    """Greet someone, several times."""
    return {"greeting": " ".join([f"hello {who}"] * times)}
'''


def test_register_list_show_run_and_reproduce(backend: pg.Backend, tmp_path: Path) -> None:
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    first = register(f"{code}:greet", backend, params={"times": 2})
    assert first.run_id is not None and first.definition == {
        "name": "greet",
        "description": "Greet someone, several times.",
        "filename": "greet.py",
        "handler": "greet",
        "code_hash": backend.artifacts.put_bytes(GREET.encode())[0],
        "requirements": [],
        "image": None,
        "params": {"times": 2},
        "kind": "job",
    }
    assert register(f"{code}:greet", backend, params={"times": 2}).run_id is None  # same definition: nothing new
    record = backend.graph().run(first.run_id)
    assert record is not None and record.job_name == REGISTER_JOB and record.state == "COMPLETE"
    assert [(o.namespace, o.name, o.version) for o in record.outputs] == [
        ("store://default", "functions/greet", first.function_hash)
    ]

    code.write_text(GREET.replace("hello", "hi"))
    second = register(f"{code}:greet", backend, params={"times": 2}, image="registry.example/greet:1")
    assert second.function_hash != first.function_hash
    assert [(f.name, f.function_hash) for f in list_functions(backend)] == [("greet", second.function_hash)]
    assert show("greet", backend).definition["code_hash"] == second.definition["code_hash"]
    assert show("greet", backend, version=first.function_hash).definition == first.definition

    result = pg.run("function://greet", params={"who": "ann"}, backend=backend).raise_for_state()
    assert result.job == "greet" and result.results == {"greeting": "hi ann hi ann"}
    run = backend.graph().run(result.run_id)
    assert run is not None and run.job_version is not None
    assert run.runtime["function"]["function_hash"] == second.function_hash
    assert run.runtime["function"]["code_hash"] == run.job_version.code_hash == second.definition["code_hash"]
    assert run.params == {"who": "ann", "times": 2}
    assert run.runtime["image"] == "registry.example/greet:1"  # the function's image, unless the run names one
    old = pg.run(f"function://greet@{first.function_hash}", backend=backend).raise_for_state()
    assert old.results == {"greeting": "hello world hello world"}
    again = pg.reproduce(result.run_id, backend=backend)
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED"

    with pytest.raises(NotFound, match="no function 'nope' in project default"):
        pg.run("function://nope", backend=backend)
    with pytest.raises(ConfigError, match="is not a function URI"):
        pg.run("function://greet@sha256:../../x", backend=backend)
    with pytest.raises(ConfigError, match="has no function 'missing'"):
        register(f"{code}:missing", backend)


def test_cli_register_list_show_run(tmp_path: Path) -> None:
    code = tmp_path / "greet.py"
    code.write_text(GREET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(tmp_path / "home"), COLUMNS="250", NO_COLOR="1")
    bin_ = Path(sys.executable).parent / "provgraph"

    def cli(*args: str) -> str:
        done = subprocess.run([str(bin_), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "function greet sha256:" in cli("function", "register", "greet.py:greet", "-p", "times=3")
    listed = [json.loads(line) for line in cli("function", "list", "--json").splitlines()]
    assert [f["name"] for f in listed] == ["greet"]
    shown = json.loads(cli("function", "show", "greet"))
    assert shown["version"] == listed[0]["version"] and shown["params"] == {"times": 3}
    assert 'result  greeting = "hello bo hello bo hello bo"' in cli("run", "function://greet", "-p", "who=bo")
