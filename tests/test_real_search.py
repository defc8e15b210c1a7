"""Real-mode search power: the continued-fraction mutations build the forms they promise, real mode
turns them on (float32 keeps its mix), broad fit starts reach another basin, and the fit settings
are the config's."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from evo.assemble import fit_settings
from evo.config import resolve
from evo.evaluate import Evaluator, Job
from evo.fit import FitSettings, fit_constants
from evo.mutate import MUTATIONS, SearchSpace
from primitives.encode import encode
from primitives.floatbits import FLOAT64, bits_to_float, float_to_bits
from primitives.oracle import oracle_evaluate
from primitives.program import Instr, Program, Ref, X
from primitives.textform import parse_text
from targets.dataset import build_dataset
from targets.registry import get_target

REAL_OPS = ("add", "sub", "mul", "div")
XS = [0.25, 0.5, 0.75, 1.0]


def space(**weights: float) -> SearchSpace:
    return SearchSpace(REAL_OPS, 10, tuple(weights.items()), "float64", output_insert_rate=1.0)


def values(program: Program) -> list[float]:
    return oracle_evaluate(program, XS, FLOAT64)


def constants(program: Program) -> list[float]:
    return [bits_to_float(b, FLOAT64) for b in program.constants()]


def c64(v: float):
    from primitives.program import Const

    return Const(float_to_bits(v, FLOAT64))


LINEAR = Program((Instr("mul", (c64(1.5), X)), Instr("add", (Ref(1), c64(0.25)))), Ref(2), "float64")


@pytest.mark.parametrize("seed", range(4))
def test_reciprocal_puts_t_plus_c_over_r_on_the_output(seed):
    child = MUTATIONS["reciprocal"](LINEAR, np.random.default_rng(seed), space(reciprocal=1.0))
    assert child.op_count() == 4 and child.op_histogram() == {"mul": 1, "add": 2, "div": 1}
    c = bits_to_float(child.body[2].args[0].bits, FLOAT64)
    t = [1.5 * x + 0.25 for x in XS]
    uses_x = child.body[2].args[1] == X
    expected = [ti + c / (x if uses_x else ti) for ti, x in zip(t, XS, strict=True)]
    np.testing.assert_allclose(values(child), expected, rtol=1e-14)


def test_reciprocal_of_the_identity_is_x_plus_c_over_x():
    identity = Program.identity("float64")
    child = MUTATIONS["reciprocal"](identity, np.random.default_rng(0), space(reciprocal=1.0))
    (c,) = constants(child)
    np.testing.assert_allclose(values(child), [x + c / x for x in XS], rtol=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_fraction_is_one_more_continued_fraction_level(seed):
    child = MUTATIONS["fraction"](LINEAR, np.random.default_rng(seed), space(fraction=1.0))
    assert child.op_count() == 4
    shift, scale = constants(child)[2], constants(child)[3]
    expected = [scale / (1.5 * x + 0.25 + shift) for x in XS]
    np.testing.assert_allclose(values(child), expected, rtol=1e-14)


def test_square_squares_a_value_and_needs_mul():
    child = MUTATIONS["square"](LINEAR, np.random.default_rng(0), space(square=1.0))
    np.testing.assert_allclose(values(child), [(1.5 * x + 0.25) ** 2 for x in XS], rtol=1e-15)
    no_mul = SearchSpace(("add", "div"), 10, (("square", 1.0),), "float64")
    assert MUTATIONS["square"](LINEAR, np.random.default_rng(0), no_mul) is None


def test_new_kinds_are_off_in_float32_and_on_in_real_mode():
    f32, real = resolve({}).weights, resolve({"mode": "real"}).weights
    real_only = ("reciprocal", "fraction", "square", "level")
    for kind in real_only:
        assert f32[kind] == 0 and real[kind] > 0
    assert {k: w for k, w in real.items() if k not in real_only} == {
        k: w for k, w in f32.items() if k not in real_only
    }
    assert resolve({"mode": "real", "mutation_weights": {"insert": 1.0}}).weights == {"insert": 1.0}


def test_fit_settings_are_the_configs_keys():
    config = resolve({"fit_iterations": 17, "fit_points": 123, "polish_budget": 45, "polish_below": 3.5})
    settings = fit_settings(config)
    got = (settings.iterations, settings.fit_points, settings.polish_budget, settings.polish_below)
    assert got == (17, 123, 45, 3.5)
    assert settings.patience == FitSettings().patience and settings.explore_starts == 0
    assert fit_settings(resolve({"mode": "real"})).explore_starts > 0
    assert fit_settings(resolve({"mode": "real", "fit_explore_starts": 0})).explore_starts == 0


def _paper(name: str) -> Program:
    text = resources.files("targets").joinpath("data/paper_exp2.json").read_text()
    return parse_text(json.loads(text)["programs"][name]["program"])


def test_broad_starts_leave_a_wrong_basin():
    """f3 = c1/(x + c3) - c2 from all-positive constants: the pole sits left of [0, 1] and the fit
    stays there (0.34); broad starts move it right of the domain, where the minimax lives (~9e-4)."""
    search = build_dataset(get_target("exp2"), "search", "float64")
    fit = Evaluator(search, FitSettings())._fit
    start = _paper("f3").with_constants([float_to_bits(1.0, FLOAT64)] * 3)
    free = encode(start, share_constants=False)
    c0 = np.asarray(free.consts, np.float64)
    stuck = fit_constants(free, c0, fit, FitSettings(explore_starts=0), explore=True)
    moved = fit_constants(free, c0, fit, FitSettings(explore_starts=12), explore=True)
    again = fit_constants(free, c0, fit, FitSettings(explore_starts=12), explore=True)
    assert stuck.max_error > 0.1
    assert moved.max_error < 2e-3
    assert np.array_equal(moved.constants, again.constants)  # seeded by the start: deterministic
    assert fit_constants(free, c0, fit, FitSettings(explore_starts=12), explore=False).max_error > 0.1


def test_structural_children_explore_and_constant_moves_do_not():
    search = build_dataset(get_target("exp2"), "search", "float64")
    settings = FitSettings(explore_starts=12)
    evaluator = Evaluator(search, settings, space=space(insert=1.0), seed=3)
    start = _paper("f3").with_constants([float_to_bits(1.0, FLOAT64)] * 3)
    seeded = evaluator.run(Job(1, start, False))  # a seed is a new structure
    assert seeded.score.max_err < 2e-3
    plain = Evaluator(search, FitSettings(explore_starts=0)).run(Job(1, start, False))
    assert plain.score.max_err > 0.1 and plain.fit_evals < seeded.fit_evals
