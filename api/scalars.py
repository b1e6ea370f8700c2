"""GraphQL scalars beyond the built-in ones."""

from __future__ import annotations

from typing import NewType

import strawberry

Long = NewType("Long", int)
"""Any integer the contract accepts (64 bits): GraphQL's `Int` is 32 bits, and a value it cannot
represent fails the whole field (a metric step of 2^31, a log offset past 2 GiB)."""


def _parse_long(value: object) -> int:
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise ValueError(f"Long cannot represent {value!r}: expected an integer of at most 64 bits")
    return value


LONG = strawberry.scalar(
    name="Long",
    serialize=int,
    parse_value=_parse_long,
    description="A 64-bit integer (byte sizes, offsets, metric steps, counts), sent as a JSON number.",
)
