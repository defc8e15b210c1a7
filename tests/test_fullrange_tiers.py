"""Full-range functions at each accuracy tier: the tier table, a strided sample against mpmath, the
array loop's fast path and fallback blocks, and (slow) every float32 input."""

from __future__ import annotations

import ctypes
import math

import mpmath
import numpy as np
import pytest

from codegen.fullrange import BLOCK, full_range_c
from codegen.fullrange_kernels import TIERS, tier

FUNCTIONS = ("exp2f", "expf", "log2f")
EXACT = {"exp2f": lambda v: mpmath.power(2, v), "expf": mpmath.exp, "log2f": lambda v: mpmath.log(v, 2)}
# one case per distinct kernel: the looser tiers that ship the tighter tier's kernel are the same code
CASES = sorted(
    {(f, tier(f, b).kernel.canonical_hash()): (f, b) for f in FUNCTIONS for b in reversed(TIERS)}.values()
)


def test_tier_table_is_consistent():
    for function in FUNCTIONS:
        kernels = [tier(function, b).kernel for b in TIERS]
        costs = [k.op_count() for k in kernels]
        assert costs == sorted(costs, reverse=True), (function, costs)  # a looser tier is never dearer
        assert all(k.dtype == "float32" for k in kernels)
    with pytest.raises(ValueError, match="tier"):
        tier("exp2f", 3)
    with pytest.raises(ValueError, match="unknown full-range function"):
        tier("sinf", 1)


@pytest.mark.parametrize("function,bound", CASES)
def test_tier_kernels_meet_their_bound_on_their_domain(function, bound):
    """The kernel alone, scored by evo on a sample of its reduced domain, is within the tier."""
    from evo.api import score
    from targets.registry import expression_target

    expr, domain = {
        "exp2f": ("2**x", "-1/2, 1/2"),
        "expf": ("exp(x)", "-log(2)/2, log(2)/2"),
        "log2f": ("log(x)/log(2)", "sqrt(2)/2, sqrt(2)"),
    }[function]
    result = score(tier(function, bound).kernel, expression_target(expr, domain), "search")
    assert result.max_err <= bound


def _library(function: str, bound: int):
    from codegen.exhaustive import _compile

    full = full_range_c(function, tier(function, bound).kernel)
    library = _compile(full, {"exp2f": "exp2", "expf": "exp", "log2f": "log2"}[function])
    scalar = getattr(library, full.name)
    scalar.restype, scalar.argtypes = ctypes.c_float, [ctypes.c_float]
    array = getattr(library, f"{full.name}_array")
    array.restype, array.argtypes = None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return scalar, array


def _run(array, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    array(x.ctypes.data, y.ctypes.data, x.shape[0])
    return y


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))).all())


@pytest.mark.cc
@pytest.mark.parametrize("function,bound", CASES)
def test_tier_on_a_strided_sample(function, bound):
    """Every (4099*257)th float32 and the special cases: within the tier against mpmath, specials exact."""
    from codegen.exhaustive import _expected, _special_inputs
    from primitives.ulp import ulp32

    scalar, array = _library(function, bound)
    bits = np.arange(12345, 1 << 32, 4099 * 257, dtype=np.uint64).astype(np.uint32)
    xs = [float(v) for v in bits.view(np.float32)] + [
        float(np.float32(x)) for _, x in _special_inputs(function)
    ]
    y = _run(array, np.array(xs, dtype=np.float32))
    worst = 0.0
    for x, got in zip(xs, y.tolist(), strict=True):
        want = _expected(function, x)
        if math.isnan(want) or math.isinf(want):
            assert (math.isnan(got) and math.isnan(want)) or got == want, (x, got, want)
            continue
        assert math.isfinite(got), (x, got)
        with mpmath.workprec(200):
            worst = max(worst, float(abs(mpmath.mpf(got) - EXACT[function](mpmath.mpf(x)))) / ulp32(want))
    assert 0.5 < worst <= bound  # a real approximation, within its tier
    scalar_y = np.array([scalar(v) for v in xs], dtype=np.float32)
    assert _same_bits(y, scalar_y)


@pytest.mark.cc
@pytest.mark.parametrize("function", FUNCTIONS)
def test_array_fallback_blocks_and_ragged_lengths(function):
    """A special input anywhere in a block sends the block to the complete function; results do not
    depend on where the block boundaries fall."""
    scalar, array = _library(function, 1)
    rng = np.random.default_rng(7)
    lo, hi = {"exp2f": (-30, 30), "expf": (-20, 20), "log2f": (1e-3, 1e3)}[function]
    x = rng.uniform(lo, hi, 3 * BLOCK + 17).astype(np.float32)
    special = {
        "exp2f": [np.nan, np.inf, -np.inf, 200.0, -140.0],
        "expf": [np.nan, np.inf, -np.inf, 95.0, -100.0],
        "log2f": [np.nan, np.inf, -1.0, 0.0, 1e-40],
    }[function]
    x[BLOCK + 5], x[2 * BLOCK + 1] = special[0], special[-1]
    x[-1] = special[1]
    want = np.array([scalar(float(v)) for v in x], dtype=np.float32)
    assert _same_bits(_run(array, x), want)
    for length in (1, 7, BLOCK - 1, BLOCK + 1, 2 * BLOCK + 3):
        assert _same_bits(_run(array, x[:length]), want[:length]), length
    for value in special:  # each special value alone in an otherwise ordinary block
        z = x[:BLOCK].copy()
        z[BLOCK // 2] = value
        assert _same_bits(_run(array, z), np.array([scalar(float(v)) for v in z], dtype=np.float32)), value


@pytest.mark.slow
@pytest.mark.cc
@pytest.mark.parametrize("function,bound", CASES)
def test_tier_exhaustively(function, bound):
    from codegen.exhaustive import check

    report = check(function, tier(function, bound).kernel)
    assert report.ok, report.text()
    assert report.n_special_failures == 0 and report.n_scalar_array_disagree == 0
    assert report.max_ulp <= bound
    if bound == 1:
        assert report.max_ulp < 1.0 and report.n_over_one == 0
