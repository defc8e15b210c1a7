"""The math form of a program: a sympy expression for humans (pretty text and LaTeX), never for code.

Shared sub-expressions are expanded and sympy may reorder terms, so this form shows what a program
means, not how it rounds; code generation walks the SSA program itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sympy

from primitives.floatbits import bits_to_float
from primitives.program import Operand, Program, Ref

SYMPY_OPS: Mapping[str, Callable[..., sympy.Expr]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "fma": lambda a, b, c: a * b + c,
    "neg": lambda a: -a,
    "sqrt": lambda a: sympy.sqrt(a),
}

_DIGITS = {"float32": 9, "float64": 17}  # enough significant digits to identify the constant


def to_sympy(program: Program, symbol: sympy.Symbol | None = None) -> sympy.Expr:
    """The program's output as a sympy expression in ``x`` (constants as decimal Floats)."""
    x = sympy.Symbol("x", real=True) if symbol is None else symbol
    fmt = program.format
    digits = _DIGITS[program.dtype]
    values: list[sympy.Expr | None] = [x]

    def operand(a: Operand) -> sympy.Expr:
        if isinstance(a, Ref):
            value = values[a.index]
            assert value is not None  # live code only reads live registers
            return value
        return sympy.Float(bits_to_float(a.bits, fmt), digits)

    for ins, alive in zip(program.body, program.live, strict=True):
        values.append(SYMPY_OPS[ins.op](*(operand(a) for a in ins.args)) if alive else None)
    return operand(program.out)


def to_pretty(program: Program) -> str:
    """Multi-line unicode rendering of ``to_sympy``."""
    return sympy.pretty(to_sympy(program), use_unicode=True)


def to_latex(program: Program) -> str:
    """LaTeX of ``to_sympy`` (for papers and notebooks)."""
    return sympy.latex(to_sympy(program))
