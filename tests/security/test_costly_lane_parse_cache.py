"""Choosing a request's lane parses its query on the event loop; long texts must not be kept.

Bodies may be up to 4 MiB: caching every distinct text would let a client pin 256 x 4 MiB.
"""

from __future__ import annotations

from pathlib import Path

from provgraph.api import limits
from provgraph.api.limits import CACHED_QUERY_CHARS, Lanes
from provgraph.api.root import build_schema
from provgraph.events.settings import Settings

LINEAGE = '{ lineage(node: "run:r1", depth: 2) { nodes { id } } }'


def test_long_query_texts_are_costed_but_not_cached(tmp_path: Path) -> None:
    lanes = Lanes(Settings(home=tmp_path))
    schema = build_schema()._schema
    long_lineage = LINEAGE + "#" + "x" * CACHED_QUERY_CHARS  # a comment: same operation, long text
    limits._cached_parse.cache_clear()
    assert lanes.costly(schema, long_lineage, None) is True
    assert limits._cached_parse.cache_info().currsize == 0
    assert lanes.costly(schema, '{ run(id: "r1") { runId } }', None) is False
    assert lanes.costly(schema, LINEAGE, None) is True
    assert limits._cached_parse.cache_info().currsize == 2


def test_unparsable_and_missing_queries_take_the_cheap_lane(tmp_path: Path) -> None:
    """Execution then answers them with its own precise error."""
    lanes = Lanes(Settings(home=tmp_path))
    schema = build_schema()._schema
    assert lanes.costly(schema, "{ lineage(", None) is False
    assert lanes.costly(schema, None, None) is False
    assert lanes.costly(schema, "{ a " * 3000 + "}" * 3000, None) is False  # past MAX_TOKENS
