"""The byte screen that lets `serde.loads` skip the storable-value walk refuses and accepts exactly what
the walk does.

`values.json_is_storable` may only say True for JSON whose every value passes `storable_problem`:
events are generated as JSON text with the values the walk refuses (NUL, lone surrogates, integers
one past 64 bits, number texts that overflow a float, NaN/Infinity literals, nesting past 64) and
the ones it accepts, written as raw number tokens and by several encoders, at many places (typed
fields, free JSON, keys, unknown facets), and `serde.loads` must answer exactly as validation
with the walk (`RunEvent.model_validate_json` without the screen's context) does.
"""

from __future__ import annotations

import json
import math
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
import pytest
from annotated_types import Ge, Le
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from provgraph.events.errors import ContractError
from provgraph.events.facets.values import INT64_MAX, INT64_MIN, MAX_JSON_DEPTH, json_is_storable, storable_problem
from provgraph.events.model import RunEvent
from provgraph.events.serde import dumps, loads, refusal
from provgraph.events.synthetic import workload

RAW = "\x01raw:"
"""A string that `encode` writes as the JSON text after the prefix, unquoted (a raw number token)."""

number_texts = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,5})?", fullmatch=True)
edge_numbers = st.sampled_from(
    [
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
        "99999999999999999999", "1e308", "1.7976931348623157e308", "1.8e308", "1E+309", "-1e400", "1e-400",
        "0.000000000000000000001", "123456789012345678.5e99", "1e0308", "1e99", "NaN", "Infinity", "-Infinity",
    ]
)  # fmt: skip
bad_strings = st.sampled_from(["nul\x00", "\ud800", "a\udfffb", "\x00"])
plain = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
tricky = st.sampled_from(["sha256:1e400", ":1e999", "NaN", "Infinity", "caf\u00e9", "\n"])
texts = st.one_of(plain, plain, plain, st.text(max_size=8), bad_strings, tricky)  # mostly what passes the screen
raw_numbers = st.one_of(number_texts, edge_numbers).map(lambda t: RAW + t)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT64_MIN - 2, INT64_MAX + 2),
    st.sampled_from([INT64_MIN - 1, INT64_MAX + 1, 2**70, 1e308]),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.floats(),
    texts,
    raw_numbers,
    raw_numbers,
)
free_json = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=4,
)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def bodies() -> st.SearchStrategy[dict[str, Any]]:
    base = st.sampled_from([orjson.loads(dumps(e)) for e in workload(3, namespace="screen")])
    places = st.sampled_from(
        [
            ("run", "facets", "provgraph_params", "params"),
            ("run", "facets", "provgraph_results", "results"),
            ("run", "facets", "vendor_x"),
            ("job", "facets", "vendor_y"),
            ("run", "facets", "provgraph_runtime"),
        ]
    )
    typed = st.sampled_from(
        [
            ("run", "runId"),
            ("job", "name"),
            ("run", "facets", "provgraph_runtime", "pid"),
            ("run", "facets", "provgraph_runtime", "pidStart"),
            ("run", "facets", "provgraph_runtime", "heartbeatS"),
            ("run", "facets", "provgraph_event", "seq"),
            ("producer",),
        ]
    )
    deep = st.integers(MAX_JSON_DEPTH - 6, MAX_JSON_DEPTH + 2).map(nested)
    edit = st.one_of(
        st.tuples(places, texts, st.one_of(free_json, deep)),  # a key and a value in free JSON
        st.tuples(typed, st.none(), leaves),  # a typed field's value
    )
    return st.tuples(base, st.lists(edit, min_size=1, max_size=2)).map(apply_edits)


def apply_edits(args: tuple[dict[str, Any], list[tuple[tuple[str, ...], str | None, Any]]]) -> dict[str, Any]:
    body, edits = args
    body = dict(json.loads(json.dumps(body)))
    for path, key, value in edits:
        node = body
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if key is None:
            node[path[-1]] = value
        else:
            target = node.setdefault(path[-1], {})
            if isinstance(target, dict):
                target[key] = value
    return body


def encode(body: dict[str, Any], style: int) -> bytes:
    """JSON bytes as different producers write them; RAW strings become bare tokens."""
    if style == 0:
        text = json.dumps(body, allow_nan=True)  # ASCII: non-ASCII and NUL as \\u escapes
    elif style == 1:
        text = json.dumps(body, allow_nan=True, ensure_ascii=False, indent=1)
    else:
        text = json.dumps(body, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    for raw in _raws(body):
        text = text.replace(json.dumps(raw, ensure_ascii=style == 0), raw[len(RAW) :], 1)
    return text.encode("utf-8", "surrogatepass")


def _raws(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith(RAW) else []
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in _raws(v)]
    if isinstance(value, list):
        return [r for v in value for r in _raws(v)]
    return []


def walked(raw: bytes) -> RunEvent | str:
    """What validation answers with the storable-value walk always run (the code before the screen)."""
    try:
        return RunEvent.model_validate_json(raw)
    except ValidationError as exc:
        return str(refusal(exc))


def screened(raw: bytes) -> RunEvent | str:
    try:
        return loads(raw)
    except ContractError as exc:
        return str(exc)


@given(body=bodies(), style=st.integers(0, 2))
@settings(max_examples=400, deadline=None)
def test_loads_refuses_and_accepts_exactly_what_the_walk_does(body: dict[str, Any], style: int) -> None:
    raw = encode(body, style)
    expected, got = walked(raw), screened(raw)
    assert got == expected
    if isinstance(got, RunEvent):
        assert storable_problem(got) is None
    elif json_is_storable(raw):  # refused although screened: only by pydantic itself, never by the walk
        assert "is outside the signed 64-bit range" not in got and "is not a JSON number" not in got
        assert "nested deeper" not in got and "NUL" not in got and "UTF-8" not in got


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("9223372036854775808", "integer 9223372036854775808 is outside the signed 64-bit range"),
        ("-9223372036854775809", "integer -9223372036854775809 is outside the signed 64-bit range"),
        ("1e309", "Infinity is not a JSON number"),
        ("-1E+400", "-Infinity is not a JSON number"),
        ("1" * 400 + ".5", "Infinity is not a JSON number"),
        ("NaN", "NaN is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ('"a\\u0000"', "string contains a NUL character"),
        ('"\\ud800"', None),  # the JSON parser refuses a lone surrogate escape itself
        ('"a\x00"', None),  # and a raw control character
        (json.dumps(nested(MAX_JSON_DEPTH)), "nested deeper than 64 levels"),
    ],
)
def test_the_screen_sends_every_refused_kind_of_value_to_the_walk(token: str, problem: str | None) -> None:
    event = dumps(next(workload(1)))
    raw = event.replace(b'"params":{', b'"params":{"bad":' + token.encode() + b",", 1)
    assert problem is None or not json_is_storable(raw)  # None: the parser refuses it, screened or not
    at = r"run\.facets\.provgraph_params\.params\.bad[.0-9]*: "
    with pytest.raises(
        ContractError, match=at + problem if problem else "Invalid JSON: .*(surrogate|hex escape|control)"
    ):
        loads(raw)


def test_the_sdks_events_pass_the_screen() -> None:
    """The screen is for speed: what the SDK writes (hex digests, times, small numbers) passes it."""
    raws = [dumps(e) for e in workload(200)]
    assert sum(map(json_is_storable, raws)) >= 0.95 * len(raws)


def _trusted(annotation: Any, metadata: list[Any], model: type[BaseModel], name: str) -> list[str]:
    """Why a field's type lets a value the walk refuses through validation of screened JSON ([] if none)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = [m for info in args[1:] for m in (getattr(info, "metadata", None) or [info])]
        return _trusted(args[0], metadata + inner, model, name)
    if origin in (typing.Union, types.UnionType, list, dict, tuple):
        if origin is dict and args and args[0] is not str:
            return [f"{model.__name__}.{name}: keys {args[0]}"]
        return [why for a in args if a is not type(None) for why in _trusted(a, metadata, model, name)]
    if origin is typing.Literal or annotation in (str, bool, datetime, Any) or annotation is type(None):
        return []  # strings are screened for escapes; Any is free JSON, screened as a whole
    if isinstance(annotation, type) and issubclass(annotation, Enum | BaseModel):
        return _model_fields(annotation) if issubclass(annotation, BaseModel) else []
    if annotation is int:
        ges = [int(m.ge) for m in metadata if isinstance(m, Ge)]  # type: ignore[call-overload]
        les = [int(m.le) for m in metadata if isinstance(m, Le)]  # type: ignore[call-overload]
        ok = bool(ges and les) and max(ges) >= INT64_MIN and min(les) <= INT64_MAX
        return [] if ok else [f"{model.__name__}.{name}: int not bounded to 64 bits"]
    if annotation is float:
        finite = any(getattr(m, "allow_inf_nan", None) is False for m in metadata)
        ok = finite or name in getattr(model, "NON_FINITE_FIELDS", ())
        return [] if ok else [f"{model.__name__}.{name}: float that may be NaN/Infinity"]
    return [f"{model.__name__}.{name}: {annotation!r} is not a type the screen knows"]


_seen: set[type[BaseModel]] = set()


def _model_fields(model: type[BaseModel]) -> list[str]:
    if model in _seen:
        return []
    _seen.add(model)
    return [why for n, f in model.model_fields.items() for why in _trusted(f.annotation, list(f.metadata), model, n)]


def test_every_typed_field_of_the_event_bounds_what_the_screen_does_not_look_at() -> None:
    """The screen reads number tokens, not what lax validation makes of strings ("9_223_..." to an int,
    "inf" to a float): every int field must be bounded to 64 bits and every float finite or a WireFloat."""
    _seen.clear()
    assert _model_fields(RunEvent) == []
