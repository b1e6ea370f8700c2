"""Exports the JSON Schema of provgraph's custom facets and of run requests into `events/schema/`.

Non-Python producers validate against these files. `python -m provgraph.events.schema_export export`
rewrites them; `check` (used by the tests) fails when they are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from provgraph.events.facets import CUSTOM_FACETS
from provgraph.events.request import RunRequest

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
"""Resolved: in the strict editable install this file is a symlink, and a new schema belongs in the source tree."""


def _schema(model: type[BaseModel], url: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    schema["$id"] = url
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["additionalProperties"] = True
    return schema


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every custom facet (by its versioned schema URL) and RunRequest."""
    out = {}
    for facet in CUSTOM_FACETS:
        name = facet.SCHEMA_URL.rsplit("/", 2)
        out[f"{name[-2]}/{name[-1]}"] = _schema(facet, facet.SCHEMA_URL)
    out["1-0-0/RunRequest.json"] = _schema(RunRequest, "https://provgraph.dev/spec/requests/1-0-0/RunRequest.json")
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def stale() -> list[str]:
    return [
        name
        for name, schema in schemas().items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != render(schema)
    ]


def export() -> list[str]:
    written = []
    for name, schema in schemas().items():
        path = SCHEMA_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema))
        written.append(name)
    return written


if __name__ == "__main__":
    if sys.argv[1:] == ["export"]:
        print("\n".join(export()))
    elif sys.argv[1:] == ["check"]:
        names = stale()
        print("stale: " + ", ".join(names) if names else "schemas are current")
        sys.exit(1 if names else 0)
    else:
        print("usage: python -m provgraph.events.schema_export export|check")
        sys.exit(2)
