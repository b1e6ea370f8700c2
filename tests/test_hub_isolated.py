"""Isolated environments: a hub function whose requirements are missing here runs in a cached
virtual environment built with the repository's uv, and reproduces there."""

from __future__ import annotations

from pathlib import Path

import pytest

import provgraph as pg
from provgraph._environment import packages_digest
from provgraph._hub import add_source
from provgraph._isolated import env_key, missing
from provgraph.events.errors import ConfigError, ReproduceRefused
from provgraph.graph.views import RunView
from tests.helpers import wait_for
from tests.hubkit import REQUIREMENT, build_hub

UV = Path(__file__).resolve().parent.parent / ".tools" / "bin" / "uv"


@pytest.fixture
def isolated_backend(settings: pg.Settings, tmp_path: Path) -> pg.Backend:
    build_hub(str(tmp_path / "hub"))
    add_source(settings, "local", str(tmp_path / "hub"))
    return pg.Backend(settings.model_copy(update={"uv": UV}))


def test_missing_requirements_refuse_or_run_in_a_cached_environment(isolated_backend: pg.Backend) -> None:
    backend = isolated_backend
    assert missing([REQUIREMENT, "pydantic>=2", "pydantic<1", 'nothing-here; python_version < "3"']) == [
        REQUIREMENT,
        "pydantic<1",
    ]
    with pytest.raises(ConfigError, match=r"hub://needs-req needs inflection==0\.5\.1, not installed here"):
        pg.run("hub://needs-req", backend=backend)

    result = pg.run("hub://needs-req", params={"text": "HubFunctionName"}, isolated=True, backend=backend)
    assert result.raise_for_state().results == {"snake": "hub_function_name", "version": "0.5.1"}
    run = backend.graph().run(result.run_id)
    assert run is not None
    assert run.runtime["function"]["isolated"] is True
    assert run.runtime["function"]["requirements"] == [REQUIREMENT]
    assert run.runtime["packages_digest"] not in (None, packages_digest())  # the environment's own digest
    assert run.params == {"text": "HubFunctionName"}

    envs = backend.settings.home / "envs"
    marker = envs / env_key([REQUIREMENT]) / ".provgraph-env.json"
    built = marker.stat().st_mtime_ns
    # the setting isolates when requirements are missing; the environment is reused, not rebuilt
    missing_backend = pg.Backend(backend.settings.model_copy(update={"isolated": "missing"}))
    again = pg.run("hub://needs-req", params={"text": "MyName"}, backend=missing_backend).raise_for_state()
    assert again.results == {"snake": "my_name", "version": "0.5.1"}
    assert marker.stat().st_mtime_ns == built
    assert sorted(p.name for p in envs.iterdir() if p.is_dir()) == [env_key([REQUIREMENT])]

    reproduced = pg.reproduce(result.run_id, backend=backend)
    assert reproduced.verdict is not None and reproduced.verdict.verdict == "REPRODUCED"
    rerun = backend.graph().run(reproduced.run_id)
    assert rerun is not None and rerun.runtime["function"]["isolated"] is True
    assert rerun.runtime["packages_digest"] == run.runtime["packages_digest"]

    # a server reproduces it in the environment already built, and builds none itself
    started = pg.request_reproduction(result.run_id, backend)
    done = wait_for("the server's reproduction", lambda: _ended(backend, started))
    assert done.state == "COMPLETE" and done.reproduces is not None and done.reproduces.verdict == "REPRODUCED"
    marker.unlink()
    with pytest.raises(ReproduceRefused, match=r"isolated environment \(inflection==0\.5\.1\) that is not built here"):
        pg.request_reproduction(result.run_id, backend)


def _ended(backend: pg.Backend, run_id: str) -> RunView | None:
    run = backend.graph().run(run_id)
    return run if run is not None and run.state.is_terminal else None
