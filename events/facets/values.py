"""Values every store can hold: signed 64-bit integers, and floats whose non-finite values travel
as explicit strings.

JSON has no NaN or Infinity (orjson writes them as `null`, SQLite turns NaN into NULL), yet a
diverging loss is legitimate data. A `WireFloat` is a Python float in the model and, on the wire
and in both stores, a JSON number when finite, else one of the strings "NaN", "Infinity",
"-Infinity". Neo4j and SQLite integers are signed 64-bit, so every integer field is bounded to that.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer, WithJsonSchema

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]

NON_FINITE: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    """A JSON-safe float: the number itself when finite, else "NaN", "Infinity" or "-Infinity"."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: float | int | str) -> float:
    """The inverse of `encode_float`; any other string is refused."""
    if isinstance(value, str):
        try:
            return NON_FINITE[value]
        except KeyError:
            raise ValueError(f"expected a number or one of {', '.join(NON_FINITE)}, got {value[:40]!r}") from None
    return float(value)


def _parse(value: Any) -> Any:
    return decode_float(value) if isinstance(value, str) else value


WireFloat = Annotated[
    float,
    BeforeValidator(_parse),
    PlainSerializer(encode_float, return_type=float | str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"enum": list(NON_FINITE)}],
            "description": 'A number; non-finite values are the strings "NaN", "Infinity", "-Infinity".',
        }
    ),
]


MAX_JSON_DEPTH = 64
"""Nesting of an event, models and free JSON together (orjson stops at 255; stores and GraphQL
clients recurse too)."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A float field that is not a `WireFloat`: pydantic refuses NaN/±Infinity (also from strings such as
"inf", or a number too large for a float) at the field, so `json_is_storable` need not look at it."""

_NUMBERS = bytes.maketrans(b"123456789E+,[", b"000000000e-::")
_BLANKS = b" \t\n\r"


def json_is_storable(data: bytes) -> bool:
    """True when every value JSON `data` can validate into passes `storable_problem`; False says nothing.

    A screen over the bytes, in C (`bytes` methods), for the validation of an untrusted record: the
    walk costs ~30 us per event in Python, this ~3 us. It relies on what the JSON parser refuses
    (raw control characters, invalid UTF-8) and on typed fields that bound themselves (`Int64`,
    `FiniteFloat`, `WireFloat`; tests/test_storable_screen.py checks every field of the event model),
    and says False, sending the event through the walk, when the text holds:
    - a `\\u` escape (the only way to write NUL or a lone surrogate in valid JSON);
    - `NaN` or `Infinity` anywhere (the parser's non-finite literals);
    - 19 digits in a row (every integer outside 64 bits has them, and so does a float mantissa
      large enough to overflow);
    - a number after `:`, `,` or `[` with an exponent of 3 or more digits (one of 2 digits on a
      mantissa of at most 18 digits stays below 1e118: finite);
    - more than `MAX_JSON_DEPTH` opening brackets (nesting can be no deeper than their count).
    Matches inside strings only make it say False more often.
    """
    if b"\\u" in data or b"NaN" in data or b"Infinity" in data:
        return False
    if data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH:
        return False
    numbers = data.translate(_NUMBERS, _BLANKS)  # digits -> 0, E -> e, + -> -, ",[" -> ":", no blanks
    return b"0" * 19 not in numbers and _LONG_EXPONENT.search(numbers) is None


_LONG_EXPONENT = re.compile(rb":[-.0]+e-?000")
"""In the translated text: a number after `:` (or `,`, `[`) whose exponent has 3 or more digits. Hex
strings (ids, digests) hold `e` and 3 digits often; one regex scan in C tells them apart."""


def storable_problem(value: Any, path: str = "", *, known: object = None) -> str | None:
    """Why `value` (a model, or free JSON inside one) cannot be stored as it is, or None.

    No string anywhere may hold NUL (U+0000) or a lone surrogate (not UTF-8). Free JSON (params,
    results, unknown facets) must be plain JSON: string keys, signed 64-bit integers, finite
    floats. NaN/Infinity are refused there rather than encoded, because a string "NaN" in free
    JSON is a legitimate different value; only `WireFloat` fields (metric values) carry non-finite
    floats. The answer names the path. Every event is checked, so the walk builds no path and
    allocates nothing until it finds a problem. `known`: an object inside `value` already found
    storable (immutable, at the same place), not walked again.
    """
    found = _problem(value, 0, known)
    if found is None:
        return None
    message, where = found
    for part in reversed(where):
        path = path + part if part == KEY else f"{path}.{part}" if path else part
    return f"{path}: {message}"


def storable_at(value: Any, depth: int) -> bool:
    """True when `value`, found `depth` levels inside an event, passes the walk `storable_problem`
    gives the event (the depth counts towards `MAX_JSON_DEPTH`)."""
    return _problem(value, depth) is None


Found = tuple[str, list[str]]
"""A problem and the path to it, innermost part first (appended on the way out of the walk)."""
KEY = " (a key)"
"""The path part saying the problem is in the key of the object the path names."""


def _problem(value: Any, depth: int, known: object = None) -> Found | None:
    if depth > MAX_JSON_DEPTH:
        return f"nested deeper than {MAX_JSON_DEPTH} levels", []
    if value is None or value is True or value is False:
        return None
    if isinstance(value, str):
        return _string_problem(value)
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return f"integer {_short(value)} is outside the signed 64-bit range the stores hold", []
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return (
            f"{encode_float(value)} is not a JSON number; record it with log_metric"
            " (metric values keep NaN and ±Infinity) or pass a string"
        ), []
    if isinstance(value, BaseModel):
        return _model_problem(value, depth, known)
    if isinstance(value, dict | list | tuple):
        return _container_problem(value, depth, known)
    return f"a {type(value).__name__} is not JSON (use strings, numbers, booleans, lists, objects)", []


def _container_problem(
    value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int, known: object = None
) -> Found | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} is not a string", []
            if found := _string_problem(key):
                return found[0], [KEY]
            if item is None or (type(item) is str and item.isascii() and "\x00" not in item):
                continue  # the usual leaf, without a call
            if found := _problem(item, depth + 1, known):
                found[1].append(key)
                return found
        return None
    for i, item in enumerate(value):
        if found := _problem(item, depth + 1, known):
            found[1].append(str(i))
            return found
    return None


def _string_problem(text: str) -> Found | None:
    if "\x00" in text:  # SQLite's JSON and string functions stop at NUL: ids would not be found
        return "string contains a NUL character (U+0000)", []
    if text.isascii() or _utf8(text):
        return None
    return "string is not valid UTF-8 (lone surrogate)", []


def _model_problem(model: BaseModel, depth: int, known: object = None) -> Found | None:
    finite_ok: frozenset[str] = getattr(type(model), "NON_FINITE_FIELDS", frozenset())  # WireModel's: a plain lookup
    for name, item in model.__dict__.items():
        if item is None or item is known or (type(item) is str and item.isascii() and "\x00" not in item):
            continue  # the usual field, without a call
        if name in finite_ok or isinstance(item, datetime):  # typed fields pydantic has validated
            continue
        if found := _problem(item, depth + 1, known):
            field = type(model).model_fields.get(name)
            found[1].append(field.alias or name if field else name)
            return found
    for key, item in (model.__pydantic_extra__ or {}).items():
        if found := _problem(item, depth + 1, known):
            found[1].append(key)
            return found
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(number: int) -> str:
    return str(number) if number.bit_length() <= 128 else f"of {number.bit_length()} bits"
