"""Handlers defined in a notebook or REPL: the run snapshots the imports, helpers and literals the
handler uses from its namespace, so `reproduce` (in a fresh interpreter) works; what cannot be
recorded is refused when the run starts, naming it.

The notebook is executed the way IPython runs a cell: the cell's source is registered in
`linecache` under a file name that does not exist, then compiled and executed in an interactive
module without a `__file__`."""

from __future__ import annotations

import linecache
import re
import sys
import textwrap
from collections.abc import Iterator
from types import ModuleType

import pytest

import provgraph as pg
from provgraph.events.errors import ConfigError

CELL_1 = """
import json
import math as m
from hashlib import sha256

SCALE = 3
WEIGHTS = {"a": [0.5, 0.5]}


class Doubler:
    def twice(self, x):
        return 2 * scaled(x)


def scaled(x):
    return x * SCALE
"""

CELL_2 = """
items = object()  # a notebook variable named like an attribute the handler uses: not captured


def handler(context, n: int = 2):
    assert {"a": 1}.items()
    payload = json.dumps({"n": Doubler().twice(n), "w": WEIGHTS["a"]}, sort_keys=True)
    return {"payload": payload, "h": sha256(payload.encode()).hexdigest()[:12], "pi": round(m.pi, 2)}
"""


@pytest.fixture
def notebook() -> Iterator[ModuleType]:
    module = ModuleType("provgraph_test_notebook")
    module.__dict__["__builtins__"] = __builtins__
    sys.modules[module.__name__] = module
    names = []
    for i, cell in enumerate((CELL_1, CELL_2)):
        name = f"<ipython-input-{i + 1}-0123456789ab>"
        names.append(name)
        text = textwrap.dedent(cell).lstrip()
        linecache.cache[name] = (len(text), None, text.splitlines(keepends=True), name)
        exec(compile(text, name, "exec"), module.__dict__)
    yield module
    sys.modules.pop(module.__name__)
    for name in names:
        linecache.cache.pop(name, None)


def run_cell(notebook: ModuleType, cell: str) -> None:
    name = f"<ipython-input-9-{abs(hash(cell))}>"
    linecache.cache[name] = (len(cell), None, cell.splitlines(keepends=True), name)
    exec(compile(cell, name, "exec"), notebook.__dict__)


def test_a_notebook_handler_snapshots_what_it_uses_and_reproduces(backend: pg.Backend, notebook: ModuleType) -> None:
    result = pg.run(notebook.handler, params={"n": 5}, backend=backend).raise_for_state()
    assert result.results["payload"] == '{"n": 30, "w": [0.5, 0.5]}' and result.results["pi"] == 3.14
    run = backend.graph().run(result.run_id)
    assert run is not None and run.job_version is not None and run.job_version.entrypoint == "handler.py:handler"
    source = backend.artifacts.get_bytes(run.job_version.code_hash).decode()
    assert "import json\nimport math as m\n" in source
    assert re.search(r"^from _?hashlib import (openssl_)?sha256( as sha256)?$", source, re.M)
    assert "SCALE = 3\nWEIGHTS = {'a': [0.5, 0.5]}" in source
    assert source.index("def scaled") < source.index("class Doubler") < source.index("def handler")
    # before: reproducing failed with NameError: name 'json' is not defined
    again = pg.reproduce(result.run_id, backend=backend)
    assert again.state == "COMPLETE", again.error
    assert again.verdict is not None and again.verdict.verdict == "REPRODUCED"


def test_what_cannot_be_recorded_is_refused_before_the_run(backend: pg.Backend, notebook: ModuleType) -> None:
    run_cell(notebook, "connection = object()\n\ndef uses_it(context):\n    return {'c': str(connection)}\n")
    with pytest.raises(ConfigError, match=r"'uses_it' uses 'connection' \(object\) from the interactive namespace"):
        pg.run(notebook.uses_it, backend=backend)
    run_cell(notebook, "def outer():\n    k = 2\n    def inner(context):\n        return {'k': k}\n    return inner\n")
    with pytest.raises(ConfigError, match="is nested in another function; define it at the top level"):
        pg.run(notebook.outer(), backend=backend)
    assert backend.graph().runs() == []  # nothing was recorded as if it could be reproduced
