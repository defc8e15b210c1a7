"""Reciprocal classical seeds A + K*w/Q(u), Q monic: valid programs of the stated op count, and on
e^x one op fewer than any polynomial under 1 ULP, with a float64 fit error below the truncated
Bernoulli series x/(e^x - 1) = 1 - x/2 + x^2/12 - x^4/720 (scored against mpmath)."""

from __future__ import annotations

import math

import mpmath
import numpy as np

from evo.classical import classical_seeds
from primitives.interp import evaluate
from primitives.textform import parse_text, to_text
from primitives.ulp import inv_ulp32

FMA_OPS = ("add", "sub", "mul", "div", "fma")
HALF_LN2 = math.log(2.0) / 2


def exp_points(n: int = 3000):
    x = np.unique(np.linspace(-HALF_LN2, HALF_LN2, n).astype(np.float32)).astype(np.float64)
    ref = np.array([float(mpmath.exp(mpmath.mpf(float(t)))) for t in x])
    return x, ref, inv_ulp32(ref.astype(np.float32).astype(np.float64))


def max_ulp(y: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> float:
    return float(np.max(np.abs(y.astype(np.float64) - ref) * scale))


def expected_ops(seed) -> int:
    """A + K*w/Q(u): v, u, w as needed, Q's Horner steps, the div and the final fma."""
    n = seed.denominator
    q_ops = n - 1 if seed.skip else n
    return int(seed.shift) + int(seed.variable == "v2") + int(seed.numerator == "v*u") + q_ops + 2


def reciprocal(seeds):
    return [s for s in seeds if s.outer == "reciprocal"]


def test_reciprocal_seeds_are_valid_pole_free_programs_of_their_op_count():
    for function, lo, hi in ((np.exp2, -0.5, 0.5), (np.tanh, 0.0, 1.0), (np.log2, 1.0, 2.0)):
        x = np.unique(np.linspace(lo, hi, 2000).astype(np.float32)).astype(np.float64)
        ref = function(x)
        seeds = reciprocal(classical_seeds(x, ref, inv_ulp32(ref), FMA_OPS, 8, per_cost=50))
        assert seeds and any(s.skip for s in seeds) and any(not s.skip for s in seeds)
        dense = np.unique(np.linspace(lo, hi, 100_001).astype(np.float32))
        for s in seeds:
            program = s.program
            assert program.op_count() == expected_ops(s) <= 8 and program.is_pruned()
            histogram = program.op_histogram()
            assert histogram.get("div") == 1 and set(histogram) <= set(FMA_OPS)
            assert parse_text(to_text(program)) == program
            with np.errstate(all="ignore"):
                assert np.all(np.isfinite(evaluate(program, dense)))  # Q keeps its sign: no pole


def test_exp_in_five_ops_under_one_ulp_where_polynomials_need_six():
    x, ref, scale = exp_points()
    seeds = classical_seeds(x, ref, scale, FMA_OPS, 5, per_cost=50)
    five = [s for s in seeds if s.program.op_count() == 5]
    best = min(reciprocal(five), key=lambda s: s.error)
    assert best.variable == "v" and best.skip and best.denominator == 4 and best.numerator == "v"
    assert best.program.op_histogram() == {"fma": 4, "div": 1}
    # the truncated Bernoulli series in the same form, with exact coefficients, bounds the fit
    bernoulli = 1.0 + x / (1.0 - x / 2 + x**2 / 12 - x**4 / 720)
    bound = max_ulp(bernoulli, ref, scale)
    assert 0.05 < bound < 0.5 and best.model_error < bound / 10
    y32 = evaluate(best.program, x.astype(np.float32))
    assert max_ulp(y32, ref, scale) < 1.0  # rounding included, float32 constants
    polynomials = [s for s in five if s.denominator == 0]
    assert polynomials and min(s.error for s in polynomials) > 1.5  # degree 5: 2.3 ULP
