"""What functions and hub runs record is read back the same from both graph stores: the
registration run and its definition output, `function list`/`show`, and a run's `function`."""

from __future__ import annotations

from pathlib import Path

import provgraph as pg
from provgraph._function import list_functions, register, show
from provgraph.events.transport.memory import MemoryTransport
from provgraph.graph.contract import LineageStore

SOURCE = "def add(context, a: int = 1, b: int = 2):\n    return {'sum': a + b}\n"


def test_functions_and_function_runs_project_into_both_stores(
    settings: pg.Settings, store: LineageStore, tmp_path: Path
) -> None:
    code = tmp_path / "add.py"
    code.write_text(SOURCE)
    transport = MemoryTransport()
    backend = pg.Backend(settings, transport=transport, graph=store)
    first = register(f"{code}:add", backend, project="fx", params={"b": 5})
    store.apply(transport.events)
    code.write_text(SOURCE.replace("a + b", "a + b + 0"))
    second = register(f"{code}:add", backend, project="fx")
    store.apply(transport.events)

    assert [(f.name, f.function_hash) for f in list_functions(backend, "fx")] == [("add", second.function_hash)]
    assert show("add", backend, "fx").definition == second.definition
    assert show("add", backend, "fx", first.function_hash).definition["params"] == {"b": 5}
    versions = store.dataset("store://fx", "functions/add")
    assert versions is not None
    assert sorted(v.version for v in versions.versions) == sorted([first.function_hash, second.function_hash])

    result = pg.run(f"function://add@{first.function_hash}", project="fx", backend=backend).raise_for_state()
    store.apply(transport.events)
    assert result.results == {"sum": 6}
    run = store.run(result.run_id)
    assert run is not None and run.job_version is not None
    assert run.runtime["function"] == {
        "name": "add",
        "version": first.function_hash,
        "function_hash": first.function_hash,
        "hub_source": None,
        "hub_url": None,
        "code_hash": run.job_version.code_hash,
        "requirements": [],
        "isolated": False,
    }
