from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provgraph.graph.contract import LineageStore
from tests.stores import STORE_FACTORIES, store_params


@pytest.fixture(params=store_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LineageStore]:
    factory, _ = STORE_FACTORIES[request.param]
    s = factory(request, tmp_path)
    s.reset()
    yield s
    s.close()
