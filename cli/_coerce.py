"""Option values without pydantic: the plain cases of typer's coercion, the rest still typer's.

typer 0.29 coerces every option value that is not `None` (so every option with a default, such as
`runs --limit 20`) through a pydantic `TypeAdapter` built for that option: importing pydantic and
building the adapters cost more than the rest of `provgraph runs`. Most values are plain: a `str`
from the command line, an `int` or a `float` in its simplest spelling within the option's bounds, a
list of strings, a default of the right type. For those the answer is known without pydantic and
is the one pydantic gives; anything else (another spelling, a value out of bounds, a date, a path, a
choice) goes to typer's own coercion, so what is accepted and every error message stay typer's.
tests/test_startup.py checks the plain answers against typer's adapters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args, get_origin

from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import _TyperParameter

if TYPE_CHECKING:
    from typer import _click as click
    from typer._coercion import TypeDescriptor

PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
"""Digits only, no sign but `-`, no leading zero, no `_`, no spaces: `int()` and pydantic agree."""
PLAIN_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")
"""A decimal without exponent, `inf` or `nan`: both parse it to the nearest double."""


class _Typer:
    """The answer is typer's (its pydantic adapter): the value is not one of the plain cases."""


TYPERS = _Typer()


@dataclass(frozen=True)
class PlainParam(RuntimeParam):
    """Coerces the plain cases itself; hands any other value to the coercion typer would have built."""

    plain: Callable[[Any], Any]

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: click.Context) -> Any:
        out = self.plain(value)
        if out is TYPERS:
            out = build_runtime_param(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)
        return out


def _text(value: Any) -> Any:
    return value if type(value) is str else TYPERS


def _flag(value: Any) -> Any:
    return value if type(value) is bool else TYPERS


def _texts(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
        return list(value)
    return TYPERS


def _number(kind: type[int] | type[float], low: float | None, high: float | None) -> Callable[[Any], Any]:
    spelling = PLAIN_INT if kind is int else PLAIN_FLOAT

    def plain(value: Any) -> Any:
        if type(value) is str and spelling.fullmatch(value):
            value = kind(value)
        elif type(value) is not kind or (kind is float and not math.isfinite(value)):
            return TYPERS
        if (low is not None and value < low) or (high is not None and value > high):
            return TYPERS  # typer says which bound
        return value

    return plain


def _typers(value: Any) -> Any:
    return TYPERS


def plain_coercion(descriptor: TypeDescriptor) -> Callable[[Any], Any]:
    """The plain coercion of an option typed `descriptor`; `_typers` where every value is typer's (an
    option left out is still `None` without building typer's coercion, which typer would build)."""
    info = descriptor.parameter_info
    if info.parser is not None or descriptor.file_annotation is not None or descriptor.is_path:
        return _typers
    annotation = descriptor.annotation
    if annotation is str:
        return _text
    if annotation is bool:
        return _flag
    if annotation in (int, float) and not info.clamp:
        return _number(annotation, info.min, info.max)
    if get_origin(annotation) is list and get_args(annotation) == (str,):  # type: ignore[comparison-overlap]
        return _texts
    return _typers


def _runtime_param(param: _TyperParameter) -> RuntimeParam:
    if param._runtime_param is None:
        descriptor = param.type_descriptor
        param._runtime_param = PlainParam(descriptor.parameter_info, descriptor.annotation, plain_coercion(descriptor))
    return param._runtime_param


def install() -> None:
    """Every typer parameter of this process (each command's, the help options typer adds when it parses)
    coerces through `PlainParam`: typer builds its coercion on first use, so this replaces that builder."""
    _TyperParameter.get_runtime_param = _runtime_param  # type: ignore[method-assign, assignment]
