"""Minimax polynomials of user expressions: the float64 error matches an independent Remez in
mpmath, float coefficients fixed one at a time never lose to rounding to nearest, and the lattice
refinement of a seed never returns worse than its start."""

from __future__ import annotations

import mpmath
import numpy as np

from evo.lattice import LatticeSettings, refine
from evo.minimax import discrete_minimax, fit_form, minimax_seeds
from primitives.interp import evaluate
from primitives.ulp import inv_ulp32
from targets.dataset import Dataset
from targets.points import PointSet
from targets.registry import expression_target

FMA_OPS = ("add", "sub", "mul", "div", "fma")
LN2 = float(np.log(2.0))


def log2p1_points(n=3000):
    """log2(1 + x) on [0, 1]: floats spread evenly, plus tiny ones (the float grid near 0)."""
    x = np.concatenate([np.linspace(0.0, 1.0, n), np.geomspace(1e-12, 1e-3, 200)])
    x = np.unique(x.astype(np.float32)).astype(np.float64)
    ref = np.log1p(x) / LN2
    return x, ref, inv_ulp32(ref.astype(np.float32).astype(np.float64))


def remez_relative(degree: int, steps: int = 12) -> float:
    """Minimax relative error of x*P(x) ~ log2(1 + x) on [0, 1], deg P = ``degree``: the classical
    Remez exchange in 30-digit arithmetic, on g(x) = log2(1 + x)/x with weight x/log2(1 + x)."""
    mpmath.mp.dps = 30
    ln2 = mpmath.log(2)

    def g(x):
        return mpmath.log1p(x) / (x * ln2) if x else 1 / ln2

    def w(x):
        return 1 / g(x)

    n = degree + 2
    nodes = [(1 - mpmath.cos(mpmath.pi * i / (n - 1))) / 2 for i in range(n)]
    level = mpmath.mpf(0)
    for _ in range(steps):
        rows = [[x**j for j in range(degree + 1)] + [(-1) ** i / w(x)] for i, x in enumerate(nodes)]
        solution = mpmath.lu_solve(mpmath.matrix(rows), mpmath.matrix([g(x) for x in nodes]))
        coef, level = [solution[j] for j in range(degree + 1)], abs(solution[degree + 1])

        def error(x, coef=coef):
            return (mpmath.polyval(coef[::-1], x) - g(x)) * w(x)

        grid = [mpmath.mpf(i) / 4000 for i in range(4001)]
        values = [error(x) for x in grid]
        # one extremum per sign run of the error: the new reference of the exchange
        new, start = [], 0
        for i in range(1, len(grid) + 1):
            if i == len(grid) or mpmath.sign(values[i]) != mpmath.sign(values[start]):
                best = max(range(start, i), key=lambda k: abs(values[k]))
                new.append(grid[best])
                start = i
        if len(new) != n:
            break
        nodes = new
        peak = max(abs(v) for v in values)
        if peak - level < level * mpmath.mpf("1e-6"):
            break
    return float(level)


def test_float64_minimax_matches_an_independent_remez_within_two_percent():
    x, ref, _ = log2p1_points()
    relative = 1.0 / ref[1:]  # relative error (x = 0 is exact in x*P(x))
    x, ref = x[1:], ref[1:]
    for degree in (3, 5):
        fit = fit_form(x, ref, relative, 0.0, 1.0, False, "v", "mul_v", degree)
        assert fit is not None
        true_level = remez_relative(degree)
        dense = np.linspace(1e-9, 1.0, 200001)
        p = np.polynomial.polynomial.polyval(dense, np.array(fit.coefficients))
        continuous = float(np.max(np.abs(dense * p - np.log1p(dense) / LN2) / (np.log1p(dense) / LN2)))
        assert fit.model_error <= true_level * 1.0001  # a discrete set: never above the true minimax
        assert true_level * 0.9999 <= continuous <= true_level * 1.02


def test_discrete_minimax_equioscillates_and_pins_fixed_coefficients():
    x = np.linspace(-1.0, 1.0, 501)
    basis = np.vander(x, 3, increasing=True)
    solved = discrete_minimax(basis, np.abs(x), np.ones_like(x))
    assert solved is not None
    coef, err = solved
    assert abs(err - 0.125) < 1e-9  # |x| by a quadratic on [-1, 1]: x^2 + 1/8, error 1/8
    assert np.allclose(coef, [0.125, 0.0, 1.0], atol=1e-8)
    pinned = discrete_minimax(basis, np.abs(x), np.ones_like(x), fixed={0: 0.0})
    assert pinned is not None and pinned[0][0] == 0.0 and pinned[1] > err


def test_float_coefficients_fixed_one_at_a_time_never_lose_and_sometimes_win():
    x, ref, scale = log2p1_points(1000)
    seeds = minimax_seeds(x, ref, scale, FMA_OPS, 10)
    assert {s.program.op_count() for s in seeds} >= set(range(3, 11))
    for s in seeds:
        y = evaluate(s.program, x.astype(np.float32)).astype(np.float64)
        assert abs(float(np.max(np.abs(y - ref) * scale)) - s.error) < 1e-6 * max(1.0, s.error)
        assert s.error <= s.naive_error
    # near float rounding, rounding every coefficient to nearest costs: fixing them one at a time wins
    assert any(s.error < 0.95 * s.naive_error for s in seeds if s.program.op_count() >= 9)


def log2p1_dataset(n: int, kind: str) -> Dataset:
    """log2(1 + x) on n floats of [0, 1] with float64 references (log1p: exact to far below a ULP)."""
    target = expression_target("log(1+x)/log(2)", "0,1", "log2p1")
    x = np.unique(np.linspace(0.0, 1.0, n).astype(np.float32))
    hi = np.log1p(x.astype(np.float64)) / LN2
    rounded = hi.astype(np.float32)
    arrays = (x, hi, np.zeros_like(hi), inv_ulp32(rounded.astype(np.float64)), rounded)
    for a in arrays:
        a.setflags(write=False)
    points = PointSet(kind, "float32", x, 0, int(np.float32(1.0).view(np.int32)), False, f"test-{kind}-{n}")
    return Dataset(target, points, "ulp", *arrays[:4], arrays[4])


def test_lattice_refinement_of_a_minimax_seed_is_never_worse_than_its_start():
    data = log2p1_dataset(1500, "refine")
    ref = data.ref_hi + data.ref_lo
    seeds = minimax_seeds(data.x.astype(np.float64), ref, data.inv_scale, FMA_OPS, 9)
    for s in [s for s in seeds if s.program.op_count() in (7, 9)]:
        refined = refine(s.program, data, LatticeSettings(budget=400))
        assert refined.max_err <= refined.start_err
        assert abs(refined.start_err - s.error) < 1e-6 * s.error  # the same points, the same error


def test_merged_seeds_put_the_better_kind_first_at_each_op_count():
    from evo.classical import classical_seeds
    from evo.minimax import with_minimax_seeds

    data = log2p1_dataset(800, "search")
    ref = data.ref_hi + data.ref_lo
    classical = classical_seeds(data.x, ref, data.inv_scale, FMA_OPS, 9)
    merged = with_minimax_seeds(classical, data, FMA_OPS, 9, "float32")
    counts = [p.op_count() for p in merged]
    assert counts == sorted(counts) and len(merged) > len(classical)
    minimax = minimax_seeds(data.x, ref, data.inv_scale, FMA_OPS, 9)

    def error(program):
        y = evaluate(program, data.x).astype(np.float64)
        return float(np.max(np.abs(y - ref) * data.inv_scale))

    for count in set(counts):
        first = next(p for p in merged if p.op_count() == count)
        best = min(s.error for s in [*classical, *minimax] if s.program.op_count() == count)
        assert abs(error(first) - best) <= 1e-9 * max(1.0, best)
