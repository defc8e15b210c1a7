"""Building a straight-line program instruction by instruction (the seed families' shared helper)."""

from __future__ import annotations

import math

from primitives.floatbits import float_to_bits, get_format
from primitives.program import Const, Instr, Operand, Ref


class ProgramBuilder:
    """The body of one program under construction, with its float format; ``const`` rounds a value
    to that format (None where it is not finite) and ``emit`` appends an instruction."""

    def __init__(self, dtype: str) -> None:
        self.fmt = get_format(dtype)
        self.body: list[Instr] = []

    def const(self, value: float) -> Const | None:
        rounded = float(self.fmt.dtype.type(value))
        return Const(float_to_bits(rounded, self.fmt)) if math.isfinite(rounded) else None

    def emit(self, op: str, *args: Operand) -> Ref:
        self.body.append(Instr(op, tuple(args)))
        return Ref(len(self.body))
