"""Binary floating-point formats and exact conversions: bits, ordinals and hex-float text."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class FloatFormat:
    """An IEEE 754 binary interchange format.

    Attributes:
        name: "float32" or "float64" (also the numpy dtype name).
        precision: significand bits including the implicit one (24 or 53).
        emin: exponent of the smallest normal number (-126 or -1022).
        emax: exponent of the largest finite number (127 or 1023).
        width: total bits (32 or 64).
    """

    name: str
    precision: int
    emin: int
    emax: int
    width: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.name)

    @property
    def uint_dtype(self) -> np.dtype:
        return np.dtype(f"uint{self.width}")

    @property
    def sign_bit(self) -> int:
        return 1 << (self.width - 1)

    @property
    def exponent_mask(self) -> int:
        return ((1 << (self.width - self.precision)) - 1) << (self.precision - 1)


FLOAT32 = FloatFormat("float32", 24, -126, 127, 32)
FLOAT64 = FloatFormat("float64", 53, -1022, 1023, 64)
FORMATS = {fmt.name: fmt for fmt in (FLOAT32, FLOAT64)}


def get_format(name: str) -> FloatFormat:
    """The format called ``name`` ("float32" or "float64")."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown float format {name!r} (known: float32, float64)") from None


def float_to_bits(value: float, fmt: FloatFormat = FLOAT32) -> int:
    """Bit pattern of ``value``, which must be exactly representable in ``fmt`` (or a NaN)."""
    if fmt.width == 32:
        with np.errstate(over="ignore"):
            as32 = np.float32(value)
        if not (np.isnan(as32) or float(as32) == float(value)):
            raise ValueError(f"{float(value)!r} is not exactly representable as float32")
        return int(as32.view(np.uint32))
    return struct.unpack("<Q", struct.pack("<d", float(value)))[0]


def bits_to_float(bits: int, fmt: FloatFormat = FLOAT32) -> float:
    """The value with bit pattern ``bits``, as a Python float (exact for both formats)."""
    if not 0 <= bits < (1 << fmt.width):
        raise ValueError(f"bit pattern {bits} out of range for {fmt.name}")
    if fmt.width == 32:
        return float(np.uint32(bits).view(np.float32))
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def is_finite_bits(bits: int, fmt: FloatFormat = FLOAT32) -> bool:
    """True unless the bit pattern is an infinity or a NaN."""
    return (bits & fmt.exponent_mask) != fmt.exponent_mask


def ordinal(bits: int, fmt: FloatFormat = FLOAT32) -> int:
    """Position of a float in the total order of finite floats; -0 and +0 both map to 0.

    Consecutive floats have consecutive ordinals, so the ordinal distance of two floats is the
    number of representable values between them (plus one).
    """
    magnitude = bits & (fmt.sign_bit - 1)
    return -magnitude if bits & fmt.sign_bit else magnitude


def from_ordinal(value: int, fmt: FloatFormat = FLOAT32) -> int:
    """Inverse of ``ordinal`` (ordinal 0 gives +0)."""
    return (fmt.sign_bit | -value) if value < 0 else value


def ordinals32(values: np.ndarray) -> np.ndarray:
    """Vectorised ``ordinal`` for a float32 array (int64 result)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.int64)
    magnitude = bits & 0x7FFFFFFF
    return np.where(bits & 0x80000000, -magnitude, magnitude)


def from_ordinals32(ords: np.ndarray) -> np.ndarray:
    """Vectorised ``from_ordinal``: float32 array of the given ordinals."""
    ords = np.asarray(ords, dtype=np.int64)
    bits = np.where(ords < 0, 0x80000000 | -ords, ords).astype(np.uint32)
    return bits.view(np.float32)


def next_float(bits: int, steps: int = 1, fmt: FloatFormat = FLOAT32) -> int:
    """The float ``steps`` ordinals above (or below, if negative) a finite float."""
    return from_ordinal(ordinal(bits, fmt) + steps, fmt)


def format_hex(value: float, fmt: FloatFormat = FLOAT32) -> str:
    """Exact, shortest C99 hex-float text of a finite value, e.g. ``0x1.62e42ep-1``.

    The value must be exactly representable in ``fmt``; the text parses back to the same bits
    (``parse_hex``) and is a valid C literal once the ``f`` suffix is added for float32.
    """
    float_to_bits(value, fmt)  # representability check
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"no hex-float literal for non-finite value {value!r}")
    text = float(value).hex()  # '0x1.62e42e0000000p-1', '-0x0.0p+0'
    mantissa, exponent = text.split("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    if mantissa in ("0x0", "-0x0"):
        exponent = "+0"
    return f"{mantissa}p{exponent}"


def parse_hex(text: str, fmt: FloatFormat = FLOAT32) -> float:
    """Parse hex-float (or decimal) text that must denote a value exactly representable in ``fmt``.

    A trailing C ``f`` suffix is accepted. Raises ValueError with the offending text otherwise.
    """
    raw = text.strip()
    lower = raw.lower()
    is_hex = "0x" in lower
    # A C float suffix: after the exponent of a hex float (in the mantissa 'f' is a digit), or
    # after a decimal number.
    has_suffix = lower.endswith("f") and ("p" in lower if is_hex else not lower.endswith(("inf", "nan")))
    body = raw[:-1] if has_suffix else raw
    try:
        value = float.fromhex(body) if is_hex else float(body)
    except ValueError:
        raise ValueError(f"cannot parse {text!r} as a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"constant {text!r} is not finite")
    try:
        float_to_bits(value, fmt)
    except ValueError:
        raise ValueError(f"constant {text!r} is not exactly representable as {fmt.name}") from None
    return value
