"""primitives.rounding: correct rounding (nearest, ties to even) of exact values, against IEEE 754 facts."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.floatbits import FLOAT32, FLOAT64
from primitives.rounding import round_fraction, round_mpf, round_ratio

SETTINGS = settings(max_examples=300, deadline=None)

F = Fraction
TWO = F(2)
FLOAT32_MAX = float(np.finfo(np.float32).max)  # (2 - 2^-23) * 2^127
FLOAT64_MAX = float(np.finfo(np.float64).max)


def same(a: float, b: float) -> bool:
    """Equal including the sign of zero (and NaN equal to NaN)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def is_float32(value: float) -> bool:
    return math.isinf(value) or float(np.float32(value)) == value


# ----------------------------------------------------------------------------- halfway cases
@pytest.mark.parametrize(
    ("exact", "expected"),
    [
        (1 + TWO**-24, 1.0),  # tie, 1.0 is even
        (1 + 3 * TWO**-24, 1 + 2.0**-22),  # tie between 1+2^-23 (odd) and 1+2^-22 (even)
        (1 + TWO**-24 + TWO**-80, 1 + 2.0**-23),  # just above a tie rounds up
        (1 + TWO**-24 - TWO**-80, 1.0),  # just below a tie rounds down
        (2 - TWO**-24, 2.0),  # tie at a binade edge: 2 - 2^-23 (mantissa 0xffffff) is odd, 2.0 is even
        (2 - TWO**-24 - TWO**-90, 2 - 2.0**-23),
        (2 - TWO**-25, 2.0),
        (TWO**-150, 0.0),  # half the smallest subnormal: tie to even (zero)
        (3 * TWO**-150, 2.0**-148),  # tie between 2^-149 (odd) and 2^-148 (even)
        (5 * TWO**-150, 2.0**-148),  # tie between 2*2^-149 (even) and 3*2^-149
        (TWO**-150 + TWO**-200, 2.0**-149),  # just above the tie rounds up
        (TWO**-151, 0.0),
        (TWO**-126 - TWO**-150, 2.0**-126),  # tie between the largest subnormal (odd) and 2^-126
        # 1/3 = 1.010101...b * 2^-2: the 23 kept fraction bits end in 0, the rest is 2/3 ulp: up
        (F(1, 3), float.fromhex("0x1.555556p-2")),
        (F(2, 3), float.fromhex("0x1.555556p-1")),
        (F(1, 10), float.fromhex("0x1.99999ap-4")),  # 0.1 = 0x1.999999...p-4: 0x1.999998 + 0.6 ulp
    ],
)
def test_float32_rounding_facts(exact, expected):
    assert same(round_fraction(exact, FLOAT32), expected)
    assert same(round_fraction(-exact, FLOAT32), -expected)  # sign preserved, also -0.0
    assert same(round_ratio(exact.numerator, exact.denominator, FLOAT32, negative=True), -expected)


def test_overflow_threshold_float32():
    first_inf = TWO**128 - TWO**103  # the midpoint between float32 max and 2^128: ties away from odd max
    assert round_fraction(first_inf, FLOAT32) == math.inf
    assert round_fraction(-first_inf, FLOAT32) == -math.inf
    just_below = first_inf - TWO**-60
    assert round_fraction(just_below, FLOAT32) == FLOAT32_MAX
    assert round_fraction(-just_below, FLOAT32) == -FLOAT32_MAX
    assert round_fraction(F(FLOAT32_MAX), FLOAT32) == FLOAT32_MAX
    assert round_fraction(TWO**200, FLOAT32) == math.inf


def test_underflow_keeps_sign():
    assert same(round_fraction(-(TWO**-160), FLOAT32), -0.0)
    assert same(round_fraction(TWO**-160, FLOAT32), 0.0)
    assert same(round_ratio(1, 2**1000, FLOAT32, negative=True), -0.0)
    assert same(round_ratio(0, 7, FLOAT32, negative=True), -0.0)
    assert same(round_fraction(F(0), FLOAT32), 0.0)


def test_round_ratio_refuses_bad_arguments():
    with pytest.raises(ValueError):
        round_ratio(-1, 1)
    with pytest.raises(ValueError):
        round_ratio(1, 0)


@pytest.mark.parametrize(
    ("exact", "expected"),
    [
        (1 + TWO**-53, 1.0),
        (1 + 3 * TWO**-53, 1 + 2.0**-51),
        (1 + TWO**-53 + TWO**-200, 1 + 2.0**-52),
        (TWO**-1075, 0.0),
        (3 * TWO**-1075, 2.0**-1073),
        (TWO**-1075 + TWO**-1100, 5e-324),
        (TWO**1024 - TWO**970 - TWO**900, FLOAT64_MAX),
        (TWO**1024 - TWO**970, math.inf),
        (F(1, 10), 0.1),
        (F(1, 3), 1 / 3),
    ],
)
def test_float64_rounding_facts(exact, expected):
    assert same(round_fraction(exact, FLOAT64), expected)
    assert same(round_fraction(-exact, FLOAT64), -expected)


# ----------------------------------------------------------------------------- against numpy
def _float32_midpoints():
    """float64 values at, just above and just below float32 halfway points (all float32 ranges)."""
    bits = st.integers(0, 0x7F7FFFFE)  # finite, non-negative, with a finite successor

    def build(args):
        b, steps, negative = args
        lo = float(np.uint32(b).view(np.float32))
        hi = float(np.uint32(b + 1).view(np.float32))
        mid = (lo + hi) / 2  # exact in float64 (25 significant bits at most)
        value = mid
        for _ in range(abs(steps)):
            value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
        return -value if negative else value

    return st.tuples(bits, st.integers(-2, 2), st.booleans()).map(build)


float64_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e39, 1e39, allow_nan=False),
    st.floats(-1e-37, 1e-37, allow_nan=False),
    _float32_midpoints(),
)


@SETTINGS
@given(float64_values)
def test_round_fraction_matches_numpy_cast(value):
    with np.errstate(over="ignore"):
        expected = float(np.float32(value))
    got = round_fraction(F(value), FLOAT32)
    if value == 0:
        assert same(got, 0.0)  # a zero Fraction has no sign
    else:
        assert same(got, expected)
        assert same(round_ratio(abs(F(value)).numerator, F(value).denominator, FLOAT32, value < 0), expected)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_round_fraction_float64_is_identity_on_floats(value):
    got = round_fraction(F(value), FLOAT64)
    assert got == value and (value == 0 or same(got, value))


fractions_in_range = st.builds(
    lambda n, d, e: F(n, d) * TWO**e,
    st.integers(1, 2**70),
    st.integers(1, 2**70),
    st.integers(-200, 100),
)


@SETTINGS
@given(fractions_in_range)
def test_round_fraction_is_nearest_with_ties_to_even(exact):
    """Independent check for arbitrary rationals: no float32 is closer, and ties pick the even one."""
    if exact >= F(FLOAT32_MAX):
        return
    r = round_fraction(exact, FLOAT32)
    assert is_float32(r) and math.isfinite(r) and r >= 0
    r32 = np.float32(r)
    up = float(np.nextafter(r32, np.float32(np.inf)))
    down = float(np.nextafter(r32, np.float32(-np.inf)))
    d = abs(exact - F(r))
    assert math.isinf(up) or d <= abs(exact - F(up))
    assert d <= abs(exact - F(down))
    tie = (math.isfinite(up) and d == abs(exact - F(up))) or d == abs(exact - F(down))
    if tie:
        assert int(r32.view(np.uint32)) % 2 == 0


# ----------------------------------------------------------------------------- mpmath values
def _mpf_exact(man: int, exp: int):
    """man * 2^exp as an mpf, exactly (the working precision holds every bit of man)."""
    with mpmath.workprec(max(man.bit_length(), 1) + 10):
        value = mpmath.ldexp(mpmath.mpf(man), exp)
    sign, mant, e, _ = value._mpf_
    assert (-1) ** sign * int(mant) * F(2) ** e == F(man) * F(2) ** exp  # really exact
    return value


@SETTINGS
@given(st.integers(-(2**150), 2**150), st.integers(-420, 200))
def test_round_mpf_equals_round_fraction_float32(man, exp):
    with mpmath.workprec(200):
        value = _mpf_exact(man, exp)
        got = round_mpf(value, FLOAT32)
    expected = round_fraction(F(man) * F(2) ** exp, FLOAT32)
    assert same(got, expected)


@SETTINGS
@given(st.integers(-(2**150), 2**150), st.integers(-1250, 1100))
def test_round_mpf_equals_round_fraction_float64(man, exp):
    with mpmath.workprec(200):
        value = _mpf_exact(man, exp)
        got = round_mpf(value, FLOAT64)
    expected = round_fraction(F(man) * F(2) ** exp, FLOAT64)
    assert same(got, expected)


def test_round_mpf_halfway_and_special_values():
    with mpmath.workprec(200):
        tie = _mpf_exact(2**24 + 1, -24)  # 1 + 2^-24
        assert round_mpf(tie, FLOAT32) == 1.0
        above = _mpf_exact(2**100 + 2**76 + 1, -100)  # 1 + 2^-24 + 2^-100
        assert round_mpf(above, FLOAT32) == 1 + 2.0**-23
        assert same(round_mpf(_mpf_exact(-1, -160), FLOAT32), -0.0)
        assert round_mpf(_mpf_exact(1, 128), FLOAT32) == math.inf
        assert round_mpf(_mpf_exact(-1, 500), FLOAT32) == -math.inf
        assert round_mpf(mpmath.mpf(0), FLOAT32) == 0.0
        assert round_mpf(mpmath.inf, FLOAT32) == math.inf
        assert round_mpf(-mpmath.inf, FLOAT32) == -math.inf
        assert math.isnan(round_mpf(mpmath.nan, FLOAT32))
        # sqrt(2) at 200 bits: the float32 neighbours are known from its hex expansion 0x1.6a09e667f3bcc9...
        assert round_mpf(mpmath.sqrt(2), FLOAT32) == float.fromhex("0x1.6a09e6p+0")
        assert round_mpf(mpmath.sqrt(2), FLOAT64) == math.sqrt(2)
