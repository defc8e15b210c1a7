"""The op table: the single source of truth for every operation a program may contain.

Everything that has to know about ops (the numba interpreter, the exact oracle, the cost model,
the math form and every code emitter) keys its own implementation by ``OpSpec.name``; a test checks
that each of them covers every row of ``OPS`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One row of the op table.

    Attributes:
        name: the op's name in programs, JSON and the text form.
        arity: number of operands.
        opcode: the integer the numba interpreter dispatches on (stable, part of the encoding).
        cost: default weight in the cost model (a weighted op count; FMA counts as one op).
        commutative: True when the first two operands can be swapped without changing the
            result bit for bit (true for IEEE add, mul and the product inside fma).
        meaning: the real-number meaning, as a formula in the operands a, b, c.
    """

    name: str
    arity: int
    opcode: int
    cost: float
    commutative: bool
    meaning: str


OPS: tuple[OpSpec, ...] = (
    OpSpec("add", 2, 0, 1.0, True, "a + b"),
    OpSpec("sub", 2, 1, 1.0, False, "a - b"),
    OpSpec("mul", 2, 2, 1.0, True, "a * b"),
    OpSpec("div", 2, 3, 1.0, False, "a / b"),
    OpSpec("fma", 3, 4, 1.0, True, "a * b + c"),
    OpSpec("neg", 1, 5, 1.0, False, "-a"),
    OpSpec("sqrt", 1, 6, 1.0, False, "sqrt(a)"),
)

OP_BY_NAME: Mapping[str, OpSpec] = MappingProxyType({op.name: op for op in OPS})
OP_NAMES: tuple[str, ...] = tuple(op.name for op in OPS)
MAX_ARITY: int = max(op.arity for op in OPS)


class UnknownOpError(ValueError):
    """An op name that is not in the op table."""


def get_op(name: str) -> OpSpec:
    """The table row for ``name``; a clear error naming the known ops otherwise."""
    try:
        return OP_BY_NAME[name]
    except KeyError:
        known = ", ".join(OP_NAMES)
        raise UnknownOpError(f"unknown op {name!r} (known ops: {known})") from None
