"""The error metric: ULP error (float32 setting) and relative error (real-number setting).

Definition (the same as the classical-anchor measurements this project compares with):

    ULP error(x) = |y - f(x)| / ulp32(RN32(f(x)))
    ulp32(v)     = 2^(max(floor(log2 |v|), -126) - 23),   ulp32(0) = 2^-149

where y is the program's float32 output, f(x) the exact value of the target and RN32 rounding to
the nearest float32 (ties to even). ulp32(v) is the gap from |v| to the next float32 of larger
magnitude: a result that rounds up to a power of two is measured in the ULP above it, zero and
subnormal results in the smallest subnormal step 2^-149. A correctly rounded result has error
<= 0.5; "< 1 ULP" means faithful rounding. A NaN or infinite output has infinite error.

In the real-number setting (float64 programs) the error is relative: |y - f(x)| / |f(x)|; where
f(x) = 0 any nonzero output gets an enormous error (|y| times the largest float64), so only an
exact zero scores zero there.

f(x) is carried as a float64 pair (hi + lo, about 106 bits), so the subtraction y - f(x) is
evaluated as (y - hi) - lo and its rounding error is far below 1e-9 ULP.

This module is the only place that defines the metric; the scoring kernels call
``error_of`` and the datasets get their per-point scales from ``inv_ulp32`` / ``inv_rel_scale``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

ULP32_MIN_EXPONENT = -149  # ulp32 of zero and of every subnormal


def ulp32(value: float) -> float:
    """ulp32(v) = 2^(max(floor(log2|v|), -126) - 23) of a finite float32 value; 2^-149 for 0."""
    v = float(np.float32(value))
    if v != float(value):
        raise ValueError(f"ulp32 needs a float32 value, got {value!r}")
    if not math.isfinite(v):
        raise ValueError(f"ulp32 of a non-finite value {value!r}")
    if v == 0.0:
        return 2.0**ULP32_MIN_EXPONENT
    return 2.0 ** (max(math.frexp(abs(v))[1] - 1, -126) - 23)


def ulp32_array(values: np.ndarray) -> np.ndarray:
    """Vectorised ``ulp32`` of a float32 array (float64 result, exact powers of two)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    biased = ((bits >> 23) & 0xFF).astype(np.int64)
    if np.any(biased == 0xFF):
        raise ValueError("ulp32 of a non-finite value")
    return np.ldexp(1.0, np.maximum(biased, 1) - 150)


def inv_ulp32(rounded_ref: np.ndarray) -> np.ndarray:
    """Per-point scale 1/ulp32(RN32(f(x))) for the ULP error, from the rounded references."""
    return 1.0 / ulp32_array(rounded_ref)


def inv_rel_scale(ref_hi: np.ndarray) -> np.ndarray:
    """Per-point scale 1/|f(x)| for the relative error (see the module docstring for zero)."""
    mag = np.abs(np.asarray(ref_hi, dtype=np.float64))
    with np.errstate(divide="ignore", over="ignore"):
        scale = 1.0 / mag
    return np.where(np.isinf(scale), np.finfo(np.float64).max, scale)


@njit(inline="always", error_model="numpy", nogil=True, cache=True)
def error_of(y: float, ref_hi: float, ref_lo: float, inv_scale: float) -> float:
    """The error of one output: |(y - hi) - lo| * inv_scale (NaN for a NaN output)."""
    return abs((np.float64(y) - ref_hi) - ref_lo) * inv_scale


def ulp_error(y: float, ref_hi: float, ref_lo: float = 0.0, rounded_ref: float | None = None) -> float:
    """Scalar ULP error of a float32 output against f(x) = ref_hi + ref_lo (for tests and reports)."""
    if not math.isfinite(y):
        return math.inf
    if rounded_ref is None:  # round the whole pair once (rounding hi alone can cross a binade)
        from fractions import Fraction

        from primitives.rounding import round_fraction

        rounded_ref = round_fraction(Fraction(ref_hi) + Fraction(ref_lo))
    return abs((float(y) - ref_hi) - ref_lo) / ulp32(rounded_ref)
