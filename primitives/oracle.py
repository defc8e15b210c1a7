"""The slow exact oracle: evaluates a program with rational arithmetic and one correct rounding per op.

It exists to check the fast interpreter bit for bit (tests only; it is far too slow for search).
Each op computes the exact real result of its operands (Fractions; an exact integer square root
for sqrt) and rounds it once to the format, to nearest with ties to even. IEEE 754 special cases
are handled explicitly: signed zeros (x - x = +0, -0 + -0 = -0, signs of products and quotients),
infinities, NaN (0 * inf, inf - inf, 0/0, inf/inf, sqrt of a negative, fma(0, inf, c)), gradual
underflow through the subnormals and overflow to infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction

from primitives.floatbits import FLOAT32, FloatFormat, bits_to_float, float_to_bits
from primitives.program import Const, Operand, Program
from primitives.rounding import _floor_log2, round_fraction, round_ratio

NAN = math.nan
INF = math.inf


def _neg_sign(v: float) -> bool:
    return math.copysign(1.0, v) < 0


def _exact_sum(a: float, b: float, fmt: FloatFormat) -> float:
    """Round a + b for finite a, b (IEEE zero-sign rules for an exact zero sum)."""
    total = Fraction(a) + Fraction(b)
    if total == 0:
        both_negative = _neg_sign(a) and _neg_sign(b) and a == 0 and b == 0
        return -0.0 if both_negative else 0.0
    return round_fraction(total, fmt)


def op_add(fmt: FloatFormat, a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return NAN
    if math.isinf(a) or math.isinf(b):
        if math.isinf(a) and math.isinf(b) and (a > 0) != (b > 0):
            return NAN
        return a if math.isinf(a) else b
    return _exact_sum(a, b, fmt)


def op_sub(fmt: FloatFormat, a: float, b: float) -> float:
    return op_add(fmt, a, -b)


def op_mul(fmt: FloatFormat, a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return NAN
    negative = _neg_sign(a) != _neg_sign(b)
    if math.isinf(a) or math.isinf(b):
        if a == 0 or b == 0:
            return NAN
        return -INF if negative else INF
    product = Fraction(a) * Fraction(b)
    if product == 0:
        return -0.0 if negative else 0.0
    return round_ratio(abs(product.numerator), product.denominator, fmt, negative)


def op_div(fmt: FloatFormat, a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return NAN
    negative = _neg_sign(a) != _neg_sign(b)
    if math.isinf(a):
        return NAN if math.isinf(b) else (-INF if negative else INF)
    if math.isinf(b):
        return -0.0 if negative else 0.0
    if b == 0:
        return NAN if a == 0 else (-INF if negative else INF)
    if a == 0:
        return -0.0 if negative else 0.0
    quotient = Fraction(a) / Fraction(b)
    return round_ratio(abs(quotient.numerator), quotient.denominator, fmt, negative)


def op_fma(fmt: FloatFormat, a: float, b: float, c: float) -> float:
    if math.isnan(a) or math.isnan(b) or math.isnan(c):
        return NAN
    product_negative = _neg_sign(a) != _neg_sign(b)
    if math.isinf(a) or math.isinf(b):
        if a == 0 or b == 0:
            return NAN
        if math.isinf(c) and (c < 0) != product_negative:
            return NAN
        return -INF if product_negative else INF
    if math.isinf(c):
        return c
    product = Fraction(a) * Fraction(b)
    total = product + Fraction(c)
    if total == 0:
        if product == 0 and c == 0:
            return -0.0 if (product_negative and _neg_sign(c)) else 0.0
        return 0.0
    return round_fraction(total, fmt)


def op_neg(fmt: FloatFormat, a: float) -> float:
    return -a


def op_sqrt(fmt: FloatFormat, a: float) -> float:
    if math.isnan(a) or a < 0:
        return NAN
    if a == 0 or math.isinf(a):
        return a
    value = Fraction(a)
    exponent = _floor_log2(value.numerator, value.denominator) // 2  # floor(log2 sqrt(a))
    quantum = exponent - (fmt.precision - 1)
    scaled = value / Fraction(2) ** (2 * quantum)  # sqrt(scaled) = sqrt(a) / 2^quantum
    floor_scaled = scaled.numerator // scaled.denominator
    mantissa = math.isqrt(floor_scaled)  # floor(sqrt(scaled))
    # Round: compare sqrt(scaled) with mantissa + 1/2, i.e. 4 * scaled with (2m + 1)^2.
    lhs, rhs = 4 * scaled, (2 * mantissa + 1) ** 2
    if lhs > rhs or (lhs == rhs and mantissa & 1):
        mantissa += 1
    return round_ratio(mantissa * 2 ** max(quantum, 0), 2 ** max(-quantum, 0), fmt)


EXACT_OPS: Mapping[str, Callable[..., float]] = {
    "add": op_add,
    "sub": op_sub,
    "mul": op_mul,
    "div": op_div,
    "fma": op_fma,
    "neg": op_neg,
    "sqrt": op_sqrt,
}


def oracle_evaluate(program: Program, xs: Iterable[float], fmt: FloatFormat | None = None) -> list[float]:
    """Evaluate ``program`` at each x exactly, rounding every op to ``fmt`` (default: its own).

    Each x must be representable in ``fmt``. Returns Python floats holding exact format values.
    """
    fmt = program.format if fmt is None else fmt
    if fmt.precision < program.format.precision:
        raise ValueError(f"cannot evaluate a {program.dtype} program in {fmt.name}")
    const_values = {b: bits_to_float(b, program.format) for b in program.constants()}

    def value(operand: Operand, regs: list[float]) -> float:
        return const_values[operand.bits] if isinstance(operand, Const) else regs[operand.index]

    results = []
    for x in xs:
        x = float(x)
        if not math.isnan(x):
            float_to_bits(x, fmt)  # representability check
        regs = [x]
        for ins, alive in zip(program.body, program.live, strict=True):
            regs.append(EXACT_OPS[ins.op](fmt, *(value(a, regs) for a in ins.args)) if alive else NAN)
        results.append(value(program.out, regs))
    return results


def same_float(a: float, b: float, fmt: FloatFormat = FLOAT32) -> bool:
    """Bitwise equality, except that every NaN equals every NaN (payloads are not specified)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return float_to_bits(a, fmt) == float_to_bits(b, fmt)
