"""Classical seeding: minimax polynomials of every op count, fitted on the target's points, in the
allowed ops, deterministic, and as good as the classical polynomial of the same op count."""

from __future__ import annotations

import numpy as np
import pytest

from evo.assemble import population_seeds
from evo.classical import classical_seeds
from evo.config import resolve
from evo.errors import UsageError
from evo.problem import build_problem
from primitives.interp import evaluate
from primitives.program import Program
from primitives.ulp import inv_ulp32

FMA_OPS = ("add", "sub", "mul", "div", "fma")


def points(function, lo, hi, n=2000):
    x = np.unique(np.linspace(lo, hi, n).astype(np.float32)).astype(np.float64)
    ref = function(x)
    return x, ref, inv_ulp32(ref.astype(np.float32).astype(np.float64))


def max_ulp(program: Program, x, ref, scale) -> float:
    y = evaluate(program, x.astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(y - ref) * scale))


def test_every_op_count_gets_a_seed_in_the_allowed_ops_within_the_bound():
    x, ref, scale = points(np.exp2, 0.0, 1.0)
    seeds = classical_seeds(x, ref, scale, FMA_OPS, 8)
    assert sorted({s.program.op_count() for s in seeds}) == list(range(1, 9))
    for s in seeds:
        assert set(s.program.op_histogram()) <= set(FMA_OPS)
    plain = classical_seeds(x, ref, scale, ("add", "sub", "mul"), 12)
    assert plain and all("fma" not in s.program.op_histogram() for s in plain)
    assert max(s.program.op_count() for s in plain) <= 12


def test_seeds_are_minimax_quality_in_float32():
    """exp2 on [0, 1]: degree 6 Horner in float32 within 1 ULP (Sollya's: 0.891), degree 5 near 2."""
    x, ref, scale = points(np.exp2, 0.0, 1.0)
    seeds = classical_seeds(x, ref, scale, FMA_OPS, 6)
    best = {}
    for s in seeds:
        k = s.program.op_count()
        best[k] = min(best.get(k, np.inf), max_ulp(s.program, x, ref, scale))
    assert best[6] < 1.2 and best[5] < 3.0 and best[4] < 60
    assert best[4] > best[5] > best[6]


def test_odd_functions_get_odd_forms_and_zero_at_the_left_end_a_shift():
    x, ref, scale = points(np.sin, -0.78, 0.78)
    best5 = min(
        (s for s in classical_seeds(x, ref, scale, FMA_OPS, 7) if s.program.op_count() == 5),
        key=lambda s: s.model_error,
    )
    assert best5.variable == "v2" and best5.model_error < 0.1  # x + x^3 q(x^2), degree 7 in x
    x, ref, scale = points(np.log2, 1.0, 2.0)
    best10 = min(
        (s for s in classical_seeds(x, ref, scale, FMA_OPS, 10) if s.program.op_count() == 10),
        key=lambda s: s.model_error,
    )
    assert best10.shift and best10.outer in ("mul_v", "v_plus_vr", "v_plus_v3r")
    assert max_ulp(best10.program, x, ref, scale) < 3.0  # fpminimax t*q(t), 10 ops: 2.12


def test_seeding_is_deterministic():
    x, ref, scale = points(np.tanh, 0.0, 1.0)
    a = [s.program for s in classical_seeds(x, ref, scale, FMA_OPS, 9)]
    b = [s.program for s in classical_seeds(x, ref, scale, FMA_OPS, 9)]
    assert a == b and len(a) >= 9


SMALL = dict(
    target="exp2",
    population_size=40,
    tournament_size=4,
    search_points=512,
    select_points=2048,
    max_evals=10,
    seed=1,
)


def test_population_seeds_classical_then_identity():
    config = resolve({**SMALL, "seed_from": "classical", "max_ops": 6})
    seeds = population_seeds(config, build_problem(config))
    assert len(seeds) == config.population_size
    classical = [s for s in seeds if s != Program.identity()]
    assert {s.op_count() for s in classical} == set(range(1, 7))
    assert seeds[len(classical) :] == [Program.identity()] * (len(seeds) - len(classical))


def test_real_mode_classical_seeds_are_float64_programs():
    config = resolve(
        {**SMALL, "seed_from": "classical", "max_ops": 5, "mode": "real", "ops": ["add", "sub", "mul", "div"]}
    )
    seeds = population_seeds(config, build_problem(config))
    assert all(s.dtype == "float64" for s in seeds)
    assert any(s.op_count() == 4 for s in seeds)  # degree-2 Horner without fma: two mul-add steps


def test_seed_from_is_checked():
    with pytest.raises(UsageError, match="seed_from"):
        resolve({**SMALL, "seed_from": "horner"})


def test_seeds_of_two_targets_on_the_same_points_differ():
    """The seeds are remembered per search set by its points *and* references (exp2 and erf on
    [0, 1] share their points)."""
    seeds = {}
    for target in ("exp2", "erf"):
        config = resolve({**SMALL, "target": target, "seed_from": "classical", "max_ops": 5})
        problem = build_problem(config)
        seeds[target] = population_seeds(config, problem)
    assert (
        build_problem(resolve({**SMALL, "target": "erf"})).search.digest
        == build_problem(resolve({**SMALL, "target": "exp2"})).search.digest
    )
    assert seeds["exp2"] != seeds["erf"]


def tanh_points():
    return points(np.tanh, 0.0, 1.0, n=4000)


def test_rationals_beat_polynomials_on_tanh_at_the_same_op_count():
    """tanh has poles at +-i*pi/2, near [0, 1]: at 7 ops x + x*P(x^2)/Q(x^2) (degrees 1/3 or 3/1)
    is under 1 ULP as a float32 program where the best polynomial of 7 ops is near 8 ULP."""
    x, ref, scale = tanh_points()
    seeds = [s for s in classical_seeds(x, ref, scale, FMA_OPS, 7, per_cost=50) if s.program.op_count() == 7]
    rational = [s for s in seeds if s.denominator > 0]
    polynomial = [s for s in seeds if s.denominator == 0]
    assert rational and polynomial
    best_rational = min(s.model_error for s in rational)
    best_polynomial = min(s.model_error for s in polynomial)
    assert best_rational < best_polynomial / 50
    assert min(max_ulp(s.program, x, ref, scale) for s in rational) < 1.0
    assert min(max_ulp(s.program, x, ref, scale) for s in polynomial) > 5.0
    kept = classical_seeds(x, ref, scale, FMA_OPS, 7)  # per_cost=2: the rationals win at 7 ops
    assert any(s.denominator > 0 for s in kept if s.program.op_count() == 7)


def test_rational_seeds_are_valid_pole_free_programs_in_the_allowed_ops():
    from primitives.textform import parse_text, to_text

    x, ref, scale = points(np.log2, 1.0, 2.0)
    seeds = [s for s in classical_seeds(x, ref, scale, FMA_OPS, 9, per_cost=50) if s.denominator > 0]
    assert seeds and {s.program.op_count() for s in seeds} >= {4, 5, 6, 7, 8, 9}
    dense = np.unique(np.linspace(1.0, 2.0, 200_001).astype(np.float32))
    for s in seeds:
        program = s.program
        assert program.op_count() <= 9 and program.is_pruned()
        assert program.op_histogram().get("div") == 1 and set(program.op_histogram()) <= set(FMA_OPS)
        assert parse_text(to_text(program)) == program
        with np.errstate(all="ignore"):
            assert np.all(np.isfinite(evaluate(program, dense)))  # Q keeps its sign: no pole
    best9 = min((s for s in seeds if s.program.op_count() == 9), key=lambda s: s.error)
    assert best9.shift and best9.error < 1.5  # t + t*P(t)/Q(t), t = x - 1 exact (polynomials: ~3.6)


def test_no_rationals_without_div():
    x, ref, scale = tanh_points()
    seeds = classical_seeds(x, ref, scale, ("add", "sub", "mul", "fma"), 8, per_cost=50)
    assert seeds and all(s.denominator == 0 and "div" not in s.program.op_histogram() for s in seeds)
