"""Option values coerced without pydantic where typer's own coercion could change nothing (cli/_params.py)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._coercion import build_runtime_param, resolve_type_descriptor
from typer.models import OptionInfo

from provgraph.cli._params import PlainParam

CASES: list[tuple[Any, dict[str, Any], Any]] = [
    (str, {}, "text"),
    (str, {}, ""),
    (str, {}, 5),
    (str, {}, b"bytes"),
    (int, {"min": 1, "max": 10_000}, 20),
    (int, {"min": 1, "max": 10_000}, 1),
    (int, {"min": 1, "max": 10_000}, 10_000),
    (int, {"min": 1, "max": 10_000}, 0),
    (int, {"min": 1, "max": 10_000}, 10_001),
    (int, {"min": 1, "max": 10_000}, "7"),
    (int, {"min": 1, "max": 10_000}, " 7 "),
    (int, {"min": 1, "max": 10_000}, "seven"),
    (int, {"min": 1, "max": 10_000}, True),
    (int, {"min": 1, "max": 10_000}, 3.0),
    (int, {"min": 1, "clamp": True}, -5),
    (int, {}, -(2**70)),
    (int, {"parser": lambda text: int(text) * 2}, 4),
    (float, {"min": 0}, 10.0),
    (float, {"min": 0}, -0.5),
    (float, {"min": 0}, math.inf),
    (float, {"min": 0}, math.nan),
    (float, {"min": 0}, 3),
    (float, {}, "1e3"),
    (datetime, {}, "2026-03-01"),
    (datetime, {}, "notadate"),
    (datetime, {}, datetime(2026, 3, 1)),
    (Path, {}, "a/b"),
    (list[str], {}, ("a", "b")),
    (bool, {}, "yes"),
]


def coerce(runtime: Any, value: Any) -> tuple[str, Any]:
    try:
        out = runtime.coerce(value, param=DummyParam(), ctx=None)
    except typer.BadParameter as exc:
        return "error", exc.message
    return type(out).__name__, repr(out)


class DummyParam:
    """What `coerce` reads of a click parameter."""

    multiple = False
    nargs = 1


@pytest.mark.parametrize(("annotation", "info", "value"), CASES)
def test_plain_coercion_is_typers(annotation: Any, info: dict[str, Any], value: Any) -> None:
    """Every value gets what typer's pydantic adapter gives it (the value, its type, or the same error)."""
    descriptor = resolve_type_descriptor(annotation, OptionInfo(**info))
    assert coerce(PlainParam.of(descriptor), value) == coerce(build_runtime_param(descriptor), value)
