"""Rounding-aware classical seeds: the rounding budget bounds what float arithmetic adds to the float64
model, moving constants among floats lowers the worst case, and on 2^x over [0, 1] the reciprocal
1 + x*(K/Q(x)) fitted leaving room for its roundings is a 5-op program under 1.45 ULP (the plain
fit 1.61, the degree-5 polynomial 1.81 on the same points)."""

from __future__ import annotations

import numpy as np

from evo.classical import classical_seeds
from evo.config import resolve
from evo.lattice import LatticeSettings, refine
from evo.problem import build_problem
from evo.roundingbudget import budgeted_error, model_and_budget, rounding_budget, settled_constants
from primitives.interp import evaluate
from primitives.textform import parse_text
from primitives.ulp import inv_ulp32
from targets.dataset import refine_dataset

FMA_OPS = ("add", "sub", "mul", "div", "fma")

# 2^x ~ 1 + x*(K/Q(x)), Q monic of degree 4 without x^3: a plain minimax fit, constants to nearest
PLAIN = """
t1 = fma(x, x, -0x1.00a1f2p+7)
t2 = fma(t1, x, 0x1.15bf42p+10)
t3 = fma(t2, x, -0x1.90b5fap+11)
t4 = div(-0x1.15c078p+11, t3)
t5 = fma(t4, x, 0x1p+0)
return t5
"""


def exp2_points(n: int = 2000):
    x = np.unique(np.linspace(0.0, 1.0, n).astype(np.float32)).astype(np.float64)
    ref = np.exp2(x)
    return x, ref, inv_ulp32(ref.astype(np.float32).astype(np.float64))


def dense_exp2():
    """2^20 floats spread over [0, 1] and every float of [3/4, 1], where the roundings are largest."""
    top = np.arange(
        np.float32(0.75).view(np.uint32), np.float32(1.0).view(np.uint32) + 1, dtype=np.uint32
    ).view(np.float32)
    x = np.union1d(np.linspace(0.0, 1.0, 1 << 20).astype(np.float32), top)
    ref = np.exp2(x.astype(np.float64))
    return x, ref, inv_ulp32(ref.astype(np.float32).astype(np.float64))


def max_ulp(program, x, ref, scale) -> float:
    return float(np.max(np.abs(evaluate(program, x).astype(np.float64) - ref) * scale))


def test_the_budget_bounds_the_float32_evaluation_against_the_float64_model():
    program = parse_text(PLAIN)
    x, ref, scale = dense_exp2()
    model, budget = model_and_budget(program, x.astype(np.float64), scale)
    gap = np.abs(evaluate(program, x).astype(np.float64) - model) * scale
    assert np.all(gap <= budget * (1 + 1e-6) + 1e-9)  # first order: the second is ~2^-24 smaller
    assert gap.max() > 0.8 * budget.max()  # and on a million floats the roundings come close to it
    # the last op rounds by half an ulp of the output: the budget is at least 1/2 ULP everywhere
    assert np.all(budget >= 0.5 - 1e-12)


def test_a_quotient_high_in_its_binade_costs_less():
    """Near x = 1, K/Q is just below 1 (half an ulp is 2^-25 of it) and x/Q near -2^-11.1 (mantissa
    1.84: 2^-24/1.84 relative): the same function, the first rounds less."""
    kq = parse_text(PLAIN)
    wq = parse_text(
        PLAIN.replace("div(-0x1.15c078p+11, t3)", "div(x, t3)").replace(
            "fma(t4, x,", "fma(t4, -0x1.15c078p+11,"
        )
    )
    x, ref, scale = exp2_points()
    x32, near_one = x.astype(np.float32), x > 0.9
    assert np.all(np.abs(evaluate(kq, x32) - evaluate(wq, x32)) * scale < 2.0)
    ours, theirs = rounding_budget(kq, x, scale)[near_one], rounding_budget(wq, x, scale)[near_one]
    assert np.all(ours < theirs) and ours.max() < theirs.max() - 0.02


def test_settling_the_constants_lowers_the_worst_case_and_keeps_the_structure():
    program = parse_text(PLAIN)
    x, ref, scale = exp2_points()
    start = budgeted_error(program, x, ref, scale)
    settled, error = settled_constants(program, x, ref, scale, budget=300)
    assert error == budgeted_error(settled, x, ref, scale) < start
    assert settled.with_constants([0] * 5) == program.with_constants([0] * 5)
    assert settled.constants() != program.constants()


def test_exp2_five_ops_rounding_aware_reciprocal_under_1_45_ulp():
    x, ref, scale = exp2_points()
    seeds = [s for s in classical_seeds(x, ref, scale, FMA_OPS, 5) if s.program.op_count() == 5]
    dense = dense_exp2()
    best = min(seeds, key=lambda s: max_ulp(s.program, *dense))
    assert best.outer == "reciprocal" and best.rounding_aware and best.order == "k/Q"
    assert best.program.op_histogram() == {"fma": 4, "div": 1}
    assert max_ulp(best.program, *dense) <= 1.45
    assert max_ulp(parse_text(PLAIN), *dense) > 1.55  # the plain fit, same form and order


def test_refining_the_settled_five_op_seed_never_ends_above_its_dense_error():
    """The lattice refinement on a sample, unguarded, lowers the sample's max error by moving the
    settled constants where the floats between the points pay for it; with the budgeted-bound
    guard no move raises max(|model - f| + rho), and the dense error stays at most the start's."""
    problem = build_problem(
        resolve(dict(target="exp2", search_points=2048, select_points=2048, max_ops=5, seed=1))
    )
    s = problem.search
    seeds = [
        sd.program
        for sd in classical_seeds(s.x, s.ref_hi + s.ref_lo, s.inv_scale, FMA_OPS, 5)
        if sd.program.op_count() == 5 and sd.rounding_aware
    ]
    assert seeds
    data = refine_dataset(problem.target, s, problem.select, n=4 * 2048)
    check = dense_exp2()
    unguarded_worse = False
    for program in seeds:
        start = max_ulp(program, *check)
        guarded = refine(program, data, LatticeSettings(budget=3000))
        assert max_ulp(guarded.program, *check) <= start
        loose = refine(program, data, LatticeSettings(budget=3000, bound_guard=False))
        assert loose.max_err < loose.start_err  # the sample alone says the move helps
        unguarded_worse |= max_ulp(loose.program, *check) > start
    assert unguarded_worse  # and without the guard it is worse on the dense floats
