"""Option values without pydantic where typer's pydantic adapter could change nothing.

typer 0.29 coerces every parameter value through a pydantic `TypeAdapter` it builds on first use,
even a default or an option left out: any typer command imports pydantic (~280M instructions with its
first adapter) before it runs. `plain_params` gives a command's parameters a coercion that returns a
value the adapter would return unchanged (`None`, a `str` for `str`, an `int` or `float` within
`min`/`max` for that type) as is, and hands anything else (text for a number or a date, a list, a
path, a parser) to typer's own coercion, built then: same values, same error messages.
It sets typer 0.29's private `_runtime_param` (typer is pinned below 0.30 for it; tests/test_cli_params.py
compares every case with typer's own coercion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import _TyperParameter

if TYPE_CHECKING:
    from typer import _click as click


@dataclass(frozen=True)
class PlainParam(RuntimeParam):
    """typer's coercion of one parameter, its pydantic adapter built only for a value it could change
    or refuse."""

    descriptor: TypeDescriptor

    @classmethod
    def of(cls, descriptor: TypeDescriptor) -> PlainParam:
        return cls(descriptor.parameter_info, descriptor.annotation, descriptor)

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: click.Context) -> Any:
        info, kind = self.parameter_info, self.annotation
        if info.parser is None and not info.clamp and type(value) is kind:
            if kind is str:
                return value
            if (
                kind in (int, float)
                and (info.min is None or value >= info.min)
                and (info.max is None or value <= info.max)
            ):
                return value
        return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def plain_params(command: click.Command, ctx: click.Context, *, subcommands: bool = True) -> None:
    """Give `command`'s parameters (its help option too; for a group, its subcommands' unless not
    `subcommands`) the coercion of `PlainParam`; a file parameter keeps typer's."""
    for param in command.get_params(ctx):
        if not isinstance(param, _TyperParameter) or param._runtime_param is not None:
            continue
        if param.type_descriptor.file_annotation is None:
            param._runtime_param = PlainParam.of(param.type_descriptor)
    for sub in getattr(command, "commands", {}).values() if subcommands else ():
        plain_params(sub, ctx)
