"""primitives.ulp: ulp32 and the ULP/relative error metric, against the documented definition."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.floatbits import FLOAT32
from primitives.rounding import round_fraction
from primitives.ulp import inv_rel_scale, inv_ulp32, ulp32, ulp32_array, ulp_error

SETTINGS = settings(max_examples=300, deadline=None)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _from_bits(bits: int) -> float:
    return float(np.uint32(bits).view(np.float32))


finite_float32 = st.integers(0, 2**32 - 1).filter(lambda b: (b >> 23) & 0xFF != 0xFF).map(_from_bits)


def gap_above(v: float) -> float:
    """Independent ulp32: distance from |v| to the next float32 of larger magnitude (numpy)."""
    a = np.float32(abs(v))
    return float(np.nextafter(a, np.float32(np.inf))) - float(a)


# ----------------------------------------------------------------------------- ulp32
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, 2.0**-23),
        (1.0 - 2.0**-24, 2.0**-24),  # nextafter(1, 0)
        (2.0, 2.0**-22),
        (1.5, 2.0**-23),
        (0.5, 2.0**-24),
        (3.0, 2.0**-22),
        (0.0, 2.0**-149),
        (-0.0, 2.0**-149),
        (2.0**-149, 2.0**-149),
        (2.0**-127, 2.0**-149),
        (2.0**-126 - 2.0**-149, 2.0**-149),  # largest subnormal
        (2.0**-126, 2.0**-149),  # smallest normal
        (2.0**-125, 2.0**-148),
        (FLOAT32_MAX, 2.0**104),
        (2.0**127, 2.0**104),
        (-1.0, 2.0**-23),
        (-FLOAT32_MAX, 2.0**104),
        (-(2.0**-140), 2.0**-149),
    ],
)
def test_ulp32_known_values(value, expected):
    assert ulp32(value) == expected
    assert ulp32_array(np.array([value], dtype=np.float32))[0] == expected


def test_ulp32_at_nextafter_one():
    below_one = float(np.nextafter(np.float32(1.0), np.float32(0.0)))
    assert below_one == 1.0 - 2.0**-24
    assert ulp32(below_one) == 2.0**-24


def test_ulp32_of_every_subnormal_exponent_is_the_smallest_step():
    for k in range(0, 23):
        assert ulp32(2.0 ** (-149 + k)) == 2.0**-149
        assert ulp32(-(2.0 ** (-149 + k))) == 2.0**-149


def test_ulp32_refuses_non_float32_and_non_finite():
    with pytest.raises(ValueError):
        ulp32(0.1)
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            ulp32(bad)
    with pytest.raises(ValueError):
        ulp32_array(np.array([1.0, np.inf], dtype=np.float32))


@SETTINGS
@given(finite_float32)
def test_ulp32_is_the_gap_above(value):
    # no finite float above FLOAT32_MAX: its gap is the one to 2^128
    expected = 2.0**104 if abs(value) == FLOAT32_MAX else gap_above(value)
    assert ulp32(value) == expected
    assert ulp32(-value) == expected


@SETTINGS
@given(st.lists(finite_float32, min_size=1, max_size=100))
def test_ulp32_array_agrees_with_scalar(values):
    arr = np.array(values, dtype=np.float32)
    got = ulp32_array(arr)
    assert got.dtype == np.float64
    assert got.tolist() == [ulp32(v) for v in values]
    assert inv_ulp32(arr).tolist() == [1.0 / ulp32(v) for v in values]


# ----------------------------------------------------------------------------- ulp_error
positive_reals = st.builds(
    lambda m, e: Fraction(m, 2**60) * Fraction(2) ** e,
    st.integers(2**60, 2**61 - 1),  # [1, 2) with 60 fraction bits
    st.integers(-140, 126),
)


def _pair(exact: Fraction) -> tuple[float, float]:
    """The float64 pair hi + lo (exact for these values: 61 bits fit in 106)."""
    hi = float(exact)
    lo = float(exact - Fraction(hi))
    assert Fraction(hi) + Fraction(lo) == exact
    return hi, lo


@SETTINGS
@given(positive_reals, st.booleans())
def test_correctly_rounded_output_is_within_half_an_ulp(exact, negative):
    if negative:
        exact = -exact
    y = round_fraction(exact, FLOAT32)
    hi, lo = _pair(exact)
    err = ulp_error(y, hi, lo, rounded_ref=y)
    assert 0.0 <= err <= 0.5
    # the exact error, independently: |y - f| / (gap above |RN32(f)|)
    expected = abs(Fraction(y) - exact) / Fraction(gap_above(y) if abs(y) < FLOAT32_MAX else 2.0**104)
    assert abs(err - float(expected)) <= 1e-12


@SETTINGS
@given(positive_reals, st.sampled_from([-1, 1]))
def test_output_one_float_away(exact, direction):
    """One float off the correctly rounded y: between 0.5 and 1.5 ULP (0.5 only at an exact tie).

    The exception is stepping down from a normal power of two: the float below is only half a unit
    away there (the unit is the ULP above), so the error is between 0.25 and 1.
    """
    y = np.float32(round_fraction(exact, FLOAT32))
    other = float(np.nextafter(y, np.float32(np.inf * direction)))
    hi, lo = _pair(exact)
    err = ulp_error(other, hi, lo, rounded_ref=float(y))
    unit = Fraction(gap_above(float(y)))
    expected = abs(Fraction(other) - exact) / unit
    assert abs(err - float(expected)) <= 1e-12 * float(expected)
    mantissa_bits = int(y.view(np.uint32)) & 0x7FFFFF
    if direction < 0 and mantissa_bits == 0 and float(y) > 2.0**-126:
        assert 0.25 <= err <= 1.0
    else:
        tie = abs(Fraction(float(y)) - exact) == unit / 2
        assert (err == 0.5) if tie else (0.5 < err <= 1.5)


def test_result_rounding_up_to_a_power_of_two_uses_the_ulp_above():
    f = 2.0 - 2.0**-30  # rounds to 2.0 in float32
    assert float(np.float32(f)) == 2.0
    # measured in ulp32(2.0) = 2^-22, not in the 2^-23 spacing below 2
    assert ulp_error(2.0, f) == 2.0**-30 / 2.0**-22
    assert ulp_error(2.0 - 2.0**-23, f) == (2.0**-23 - 2.0**-30) / 2.0**-22


def test_rounded_ref_argument_is_used_for_the_scale():
    assert ulp_error(1.0, 1.0, 0.0, rounded_ref=2.0) == 0.0
    assert ulp_error(1.0 + 2.0**-23, 1.0, 0.0) == 1.0
    assert ulp_error(1.0 + 2.0**-23, 1.0, 0.0, rounded_ref=2.0) == 0.5


def test_ulp_error_scale_uses_the_rounding_of_the_whole_pair():
    """ulp32(RN32(f)) with f = hi + lo: hi alone may sit exactly on a float32 halfway point.

    f = 2 - 2^-24 - 2^-80 lies just below the midpoint of 2 - 2^-23 and 2, so RN32(f) = 2 - 2^-23 and
    the unit is ulp32(2 - 2^-23) = 2^-23. For y = 2 - 2^-23: |y - f| = 2^-24 - 2^-80, i.e. just under
    0.5 ULP: y is the correctly rounded result. (Rounding hi = 2 - 2^-24 alone gives 2.0 by ties to
    even, and a unit twice too large.)
    """
    hi, lo = 2.0 - 2.0**-24, -(2.0**-80)
    y = 2.0 - 2.0**-23
    assert round_fraction(Fraction(hi) + Fraction(lo), FLOAT32) == y
    expected = float((Fraction(2**-24) - Fraction(2) ** -80) / Fraction(2) ** -23)
    assert ulp_error(y, hi, lo) == pytest.approx(expected, rel=1e-12)


def test_zero_and_subnormal_results_use_the_smallest_step():
    assert ulp_error(2.0**-149, 0.0) == 1.0
    assert ulp_error(0.0, 2.0**-150 + 2.0**-160) == pytest.approx(0.5 + 2.0**-11)
    assert ulp_error(3 * 2.0**-149, 2.0**-149) == 2.0


@pytest.mark.parametrize("y", [math.inf, -math.inf, math.nan])
def test_non_finite_output_has_infinite_error(y):
    assert ulp_error(y, 1.0) == math.inf
    assert ulp_error(y, 0.0) == math.inf


def test_error_is_symmetric_in_sign():
    assert ulp_error(-1.0 - 2.0**-23, -1.0) == 1.0
    assert ulp_error(-1.0, -1.0 - 2.0**-24) == 0.5


# ----------------------------------------------------------------------------- relative scale
def test_inv_rel_scale():
    ref = np.array([2.0, -0.25, 2.0**-1000, 3.0], dtype=np.float64)
    assert inv_rel_scale(ref).tolist() == [0.5, 4.0, 2.0**1000, 1 / 3.0]
    zero = inv_rel_scale(np.array([0.0, -0.0]))
    assert np.all(np.isfinite(zero))
    assert np.all(zero == np.finfo(np.float64).max)
    # a subnormal float64 whose reciprocal overflows: huge but finite too
    tiny = inv_rel_scale(np.array([5e-324]))
    assert np.isfinite(tiny[0]) and tiny[0] >= 1e300
