"""primitives.floatbits: exact bits, ordinals and hex-float text, checked against IEEE 754 facts."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.floatbits import (
    FLOAT32,
    FLOAT64,
    bits_to_float,
    float_to_bits,
    format_hex,
    from_ordinal,
    from_ordinals32,
    next_float,
    ordinal,
    ordinals32,
    parse_hex,
)

FLOAT32_MAX = float(np.finfo(np.float32).max)
SMALLEST_SUBNORMAL = 2.0**-149
SMALLEST_NORMAL = 2.0**-126

SETTINGS = settings(max_examples=300, deadline=None)


def _is_finite32(bits: int) -> bool:
    return (bits >> 23) & 0xFF != 0xFF


finite_bits32 = st.integers(0, 2**32 - 1).filter(_is_finite32)
finite_bits64 = st.integers(0, 2**64 - 1).filter(lambda b: (b >> 52) & 0x7FF != 0x7FF)


def f32(bits: int) -> float:
    """Independent decoding of a float32 bit pattern (struct, not numpy)."""
    return struct.unpack("<f", struct.pack("<I", bits))[0]


# ----------------------------------------------------------------------------- bits
@pytest.mark.parametrize(
    ("value", "bits"),
    [
        (0.0, 0x00000000),
        (-0.0, 0x80000000),
        (1.0, 0x3F800000),
        (-2.0, 0xC0000000),
        (0.5, 0x3F000000),
        (SMALLEST_SUBNORMAL, 0x00000001),
        (SMALLEST_NORMAL, 0x00800000),
        (FLOAT32_MAX, 0x7F7FFFFF),
        (math.inf, 0x7F800000),
        (-math.inf, 0xFF800000),
    ],
)
def test_known_float32_bit_patterns(value, bits):
    assert float_to_bits(value, FLOAT32) == bits
    back = bits_to_float(bits, FLOAT32)
    assert back == value and math.copysign(1.0, back) == math.copysign(1.0, value)


@pytest.mark.parametrize(
    ("value", "bits"),
    [(1.0, 0x3FF0000000000000), (-0.0, 0x8000000000000000), (5e-324, 1), (0.1, 0x3FB999999999999A)],
)
def test_known_float64_bit_patterns(value, bits):
    assert float_to_bits(value, FLOAT64) == bits
    back = bits_to_float(bits, FLOAT64)
    assert back == value and math.copysign(1.0, back) == math.copysign(1.0, value)


@SETTINGS
@given(finite_bits32)
def test_float32_bits_round_trip(bits):
    value = bits_to_float(bits, FLOAT32)
    assert value == f32(bits)
    assert float_to_bits(value, FLOAT32) == bits


@SETTINGS
@given(finite_bits64)
def test_float64_bits_round_trip(bits):
    value = bits_to_float(bits, FLOAT64)
    assert float_to_bits(value, FLOAT64) == bits


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float64_value_round_trip(value):
    back = bits_to_float(float_to_bits(value, FLOAT64), FLOAT64)
    assert back == value and math.copysign(1.0, back) == math.copysign(1.0, value)


@pytest.mark.parametrize(
    "value", [0.1, 1.0 + 2.0**-24, 2.0**-150, 1e300, FLOAT32_MAX * (1 + 2.0**-30), math.pi]
)
def test_non_float32_values_are_refused(value):
    with pytest.raises(ValueError):
        float_to_bits(value, FLOAT32)


@pytest.mark.parametrize("bits", [-1, 2**32])
def test_bits_out_of_range_are_refused_float32(bits):
    with pytest.raises(ValueError):
        bits_to_float(bits, FLOAT32)


def test_bits_out_of_range_are_refused_float64():
    with pytest.raises(ValueError):
        bits_to_float(2**64, FLOAT64)


# ----------------------------------------------------------------------------- ordinals
def _sorted_distinct_float32(values):
    # -0 and +0 compare equal; keep one zero so "sorted and distinct" is well defined
    arr = np.unique(np.asarray(values, dtype=np.float32))
    return arr


@SETTINGS
@given(st.lists(finite_bits32, min_size=2, max_size=50))
def test_ordinal_is_monotone_over_sorted_floats(bit_list):
    values = _sorted_distinct_float32([f32(b) for b in bit_list])
    ords = [ordinal(float_to_bits(float(v), FLOAT32), FLOAT32) for v in values]
    assert all(a < b for a, b in zip(ords, ords[1:], strict=False))


def test_both_zeros_have_ordinal_zero():
    assert ordinal(0x00000000, FLOAT32) == 0
    assert ordinal(0x80000000, FLOAT32) == 0
    assert ordinal(0x8000000000000000, FLOAT64) == 0
    assert from_ordinal(0, FLOAT32) == 0  # +0


def test_ordinal_of_small_values():
    assert ordinal(float_to_bits(SMALLEST_SUBNORMAL), FLOAT32) == 1
    assert ordinal(float_to_bits(-SMALLEST_SUBNORMAL), FLOAT32) == -1
    # 2^23 subnormal patterns below the smallest normal
    assert ordinal(float_to_bits(SMALLEST_NORMAL), FLOAT32) == 2**23


@SETTINGS
@given(finite_bits32)
def test_consecutive_float32_differ_by_one_ordinal(bits):
    value = np.float32(f32(bits))
    here = ordinal(float_to_bits(float(value)), FLOAT32)
    up = np.nextafter(value, np.float32(np.inf))
    down = np.nextafter(value, np.float32(-np.inf))
    if np.isfinite(up):
        assert ordinal(float_to_bits(float(up)), FLOAT32) == here + 1
    if np.isfinite(down):
        assert ordinal(float_to_bits(float(down)), FLOAT32) == here - 1


def test_zero_neighbours():
    # nextafter(+-0, +inf) is the smallest subnormal: ordinal 1; towards -inf: ordinal -1
    up = np.nextafter(np.float32(0.0), np.float32(1.0))
    down = np.nextafter(np.float32(0.0), np.float32(-1.0))
    assert ordinal(float_to_bits(float(up))) == 1
    assert ordinal(float_to_bits(float(down))) == -1


@SETTINGS
@given(finite_bits32)
def test_from_ordinal_inverts_ordinal_float32(bits):
    o = ordinal(bits, FLOAT32)
    back = from_ordinal(o, FLOAT32)
    if bits == 0x80000000:
        assert back == 0  # -0 comes back as +0
    else:
        assert back == bits


@SETTINGS
@given(finite_bits64)
def test_from_ordinal_inverts_ordinal_float64(bits):
    back = from_ordinal(ordinal(bits, FLOAT64), FLOAT64)
    assert back == (0 if bits == 1 << 63 else bits)


@SETTINGS
@given(st.lists(finite_bits32, min_size=1, max_size=64))
def test_vectorised_ordinals_agree_with_scalar(bit_list):
    values = np.array(bit_list, dtype=np.uint32).view(np.float32)
    vector = ordinals32(values)
    assert vector.dtype == np.int64
    assert vector.tolist() == [ordinal(b, FLOAT32) for b in bit_list]
    back = from_ordinals32(vector)
    assert back.dtype == np.float32
    expected = [from_ordinal(ordinal(b, FLOAT32), FLOAT32) for b in bit_list]
    assert back.view(np.uint32).tolist() == expected


@SETTINGS
@given(finite_bits32, st.integers(-1000, 1000))
def test_next_float_moves_by_ordinals(bits, steps):
    target = ordinal(bits, FLOAT32) + steps
    limit = ordinal(0x7F7FFFFF, FLOAT32)
    if abs(target) > limit:
        return
    moved = next_float(bits, steps, FLOAT32)
    assert ordinal(moved, FLOAT32) == target


def test_next_float_known_values():
    one = float_to_bits(1.0)
    assert bits_to_float(next_float(one)) == 1.0 + 2.0**-23
    assert bits_to_float(next_float(one, -1)) == 1.0 - 2.0**-24
    assert bits_to_float(next_float(0x80000000, 1)) == SMALLEST_SUBNORMAL
    assert bits_to_float(next_float(0, -1)) == -SMALLEST_SUBNORMAL
    assert (
        bits_to_float(next_float(float_to_bits(SMALLEST_NORMAL), -1)) == SMALLEST_NORMAL - SMALLEST_SUBNORMAL
    )
    assert bits_to_float(next_float(float_to_bits(1.0, FLOAT64), 1, FLOAT64), FLOAT64) == 1.0 + 2.0**-52


# ----------------------------------------------------------------------------- hex text
@SETTINGS
@given(finite_bits32)
def test_hex_round_trip_float32(bits):
    value = bits_to_float(bits, FLOAT32)
    text = format_hex(value, FLOAT32)
    back = parse_hex(text, FLOAT32)
    assert float_to_bits(back, FLOAT32) == bits
    # also a valid input to Python's own hex parser, with the same value
    assert float.fromhex(text) == value
    assert parse_hex(text + "f", FLOAT32) == value


@SETTINGS
@given(finite_bits64)
def test_hex_round_trip_float64(bits):
    value = bits_to_float(bits, FLOAT64)
    back = parse_hex(format_hex(value, FLOAT64), FLOAT64)
    assert float_to_bits(back, FLOAT64) == bits


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "0x1p+0"),
        (1.5, "0x1.8p+0"),
        (-0.0, "-0x0p+0"),
        (0.0, "0x0p+0"),
        (SMALLEST_SUBNORMAL, "0x1p-149"),
        (FLOAT32_MAX, "0x1.fffffep+127"),
        (-2.0, "-0x1p+1"),
        (0.75, "0x1.8p-1"),
    ],
)
def test_known_hex_spellings(value, text):
    assert format_hex(value, FLOAT32) == text
    back = parse_hex(text, FLOAT32)
    assert back == value and math.copysign(1.0, back) == math.copysign(1.0, value)


def test_format_hex_refuses_non_float32_and_non_finite():
    with pytest.raises(ValueError):
        format_hex(0.1, FLOAT32)
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            format_hex(value, FLOAT32)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x1.8p+0f", 1.5),
        ("0x1.8p+0F", 1.5),
        ("-0x1p-1f", -0.5),
        ("  0x1p+0  ", 1.0),
        ("0.5", 0.5),
        ("-3", -3.0),
        ("0X1P+1", 2.0),
    ],
)
def test_parse_hex_accepts(text, value):
    assert parse_hex(text, FLOAT32) == value


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "0x1p+128", "1e39", "-1e39"])
def test_parse_hex_refuses_non_finite(text):
    with pytest.raises(ValueError):
        parse_hex(text, FLOAT32)


@pytest.mark.parametrize("text", ["0.1", "0x1.000001p+0", "0x1p-150", "3.14159", "1e-46"])
def test_parse_hex_refuses_non_representable(text):
    with pytest.raises(ValueError, match="not exactly representable"):
        parse_hex(text, FLOAT32)


def test_parse_hex_float64_accepts_what_float32_refuses():
    assert parse_hex("0.1", FLOAT64) == 0.1
    assert parse_hex("0x1.000001p+0", FLOAT64) == 1.0 + 2.0**-24


@pytest.mark.parametrize("text", ["", "abc", "0x", "1.0.0", "0xzz"])
def test_parse_hex_refuses_garbage(text):
    with pytest.raises(ValueError):
        parse_hex(text, FLOAT32)


@pytest.mark.parametrize(("text", "meaning"), [("0x1.f", 1.9375), ("0x1f", 31.0), ("-0x1.ff", -1.99609375)])
def test_parse_hex_never_misreads_hex_digit_f_as_suffix(text, meaning):
    """A trailing 'f' that is a hex digit (no 'p' exponent) must not be dropped as a C suffix.

    The text denotes ``meaning`` (as float.fromhex reads it) and that value is float32; the parser
    may refuse the text (C requires a 'p' exponent in hex floats) but must never return another value.
    """
    assert float.fromhex(text) == meaning
    try:
        value = parse_hex(text, FLOAT32)
    except ValueError:
        return
    assert value == meaning
