"""Correct rounding (to nearest, ties to even) of exact values to a binary float format.

One routine serves both the exact oracle (rational results of single ops) and the references
(high-precision mpmath values): the exact value is rounded once, straight to the target format,
so there is never a double rounding through float64.
"""

from __future__ import annotations

import math
from fractions import Fraction

from primitives.floatbits import FLOAT32, FloatFormat


def _floor_log2(num: int, den: int) -> int:
    """floor(log2(num / den)) for positive integers."""
    e = num.bit_length() - den.bit_length()
    if e >= 0:
        if num < (den << e):
            e -= 1
    elif (num << -e) < den:
        e -= 1
    return e


def round_ratio(num: int, den: int, fmt: FloatFormat = FLOAT32, negative: bool = False) -> float:
    """Round the exact value (-1)^negative * num / den to ``fmt``, ties to even.

    Handles subnormals (gradual underflow), underflow to a signed zero and overflow to a signed
    infinity exactly as IEEE 754 round-to-nearest-even does. ``num`` >= 0, ``den`` > 0.
    The result is a Python float holding exactly the rounded ``fmt`` value.
    """
    if num < 0 or den <= 0:
        raise ValueError("round_ratio needs num >= 0 and den > 0")
    sign = -1.0 if negative else 1.0
    if num == 0:
        return math.copysign(0.0, sign)
    exponent = max(_floor_log2(num, den), fmt.emin)
    quantum = exponent - (fmt.precision - 1)  # value of one unit in the last place
    if quantum <= 0:
        scaled_num, scaled_den = num << -quantum, den
    else:
        scaled_num, scaled_den = num, den << quantum
    mantissa, remainder = divmod(scaled_num, scaled_den)
    twice = 2 * remainder
    if twice > scaled_den or (twice == scaled_den and mantissa & 1):
        mantissa += 1
    # mantissa * 2^quantum; a carry to 2^precision is still exact one binade up.
    if mantissa.bit_length() + quantum > fmt.emax + 1:
        return math.copysign(math.inf, sign)
    return math.copysign(math.ldexp(mantissa, quantum), sign)


def round_fraction(value: Fraction, fmt: FloatFormat = FLOAT32) -> float:
    """Round an exact rational to ``fmt`` (a zero Fraction rounds to +0)."""
    return round_ratio(abs(value.numerator), value.denominator, fmt, value < 0)


def round_mpf(value, fmt: FloatFormat = FLOAT32) -> float:
    """Round an mpmath ``mpf`` exactly (no intermediate float64) to ``fmt``.

    The mpf's own binary value (mantissa * 2^exponent) is what gets rounded, so a value that
    sits exactly on a halfway point between two floats is rounded to even, as it must be.
    """
    import mpmath

    if mpmath.isnan(value):
        return math.nan
    if mpmath.isinf(value):
        return math.inf if value > 0 else -math.inf
    sign, man, exp, _ = value._mpf_
    man = int(man)
    if man == 0:
        return 0.0
    # Values far outside the format's range: skip the huge shifts, the result is known.
    top = exp + man.bit_length() - 1
    if top > fmt.emax + 1:
        return -math.inf if sign else math.inf
    if top < fmt.emin - fmt.precision - 1:
        return -0.0 if sign else 0.0
    if exp >= 0:
        return round_ratio(man << exp, 1, fmt, bool(sign))
    return round_ratio(man, 1 << -exp, fmt, bool(sign))
