"""Compensated seeds without fma (``evo.compensated``): exact heads, error-free transformations whose
constants the fit and the mutations keep, and 2^x on [0, 1] under 1 ULP with add, sub and mul."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from evo.compensated import compensated_seeds, frozen_edges, frozen_slots
from evo.config import DEFAULT_MUTATION_WEIGHTS
from evo.evaluate import Evaluator, Job
from evo.fit import FitSettings
from evo.mutate import SearchSpace, perturb_const, redraw_const, refit
from primitives.floatbits import FLOAT32, bits_to_float
from primitives.interp import evaluate
from primitives.oracle import oracle_evaluate, same_float
from primitives.program import Const, Program, Ref
from primitives.textform import parse_text
from targets import get_target
from targets.dataset import build_dataset
from targets.scoring import score

NO_FMA = ("add", "sub", "mul")

# Veltkamp's split of a (4097 = 2^12 + 1) and Dekker's product error of a*a
VELTKAMP = """
t1 = mul(0x1.001p+12, x)
t2 = sub(t1, x)
t3 = sub(t1, t2)
t4 = sub(x, t3)
t5 = mul(x, x)
t6 = mul(t3, t3)
t7 = sub(t6, t5)
t8 = mul(t3, t4)
t9 = add(t7, t8)
t10 = add(t9, t8)
t11 = mul(t4, t4)
t12 = add(t10, t11)
return t12
"""


@pytest.fixture(scope="module")
def exp2_sets():
    target = get_target("exp2")
    return build_dataset(target, "search", "float32"), build_dataset(target, "select", "float32")


@pytest.fixture(scope="module")
def seeds(exp2_sets):
    search, _ = exp2_sets
    return compensated_seeds(search.x, search.ref_hi + search.ref_lo, search.inv_scale, NO_FMA, 16)


def _best(seeds, select, count):
    at = [p for p in seeds if p.op_count() == count]
    assert at, f"no compensated seed of {count} ops"
    return min(at, key=lambda p: score(p, select).max_err)


def _sample() -> list[float]:
    """Floats of [0, 1] where roundings are hardest: both ends, binade edges, a stratified spread."""
    rng = np.random.default_rng(5)
    edges = [np.float32(2.0**-k) for k in range(0, 30)]
    near = [np.nextafter(e, np.float32(0)) for e in edges] + [np.nextafter(e, np.float32(2)) for e in edges]
    spread = rng.random(600).astype(np.float32)
    values = np.concatenate([[0.0, 1.0], edges, near, spread]).astype(np.float32)
    return [float(v) for v in values if 0.0 <= v <= 1.0]


def test_seeds_use_only_the_allowed_ops_and_the_op_bound(seeds):
    assert seeds
    for program in seeds:
        assert set(program.op_histogram()) <= set(NO_FMA)
        assert program.op_count() <= 16


def test_no_compensated_seeds_with_fma_or_in_real_mode(exp2_sets):
    search, _ = exp2_sets
    args = (search.x, search.ref_hi + search.ref_lo, search.inv_scale)
    assert compensated_seeds(*args, ("add", "sub", "mul", "fma"), 16) == []
    assert compensated_seeds(*args, NO_FMA, 16, dtype="float64") == []


def test_exp2_without_fma_under_one_ulp_at_13_and_16_ops(seeds, exp2_sets):
    _, select = exp2_sets
    exact_head = _best(seeds, select, 13)  # (T + x) + c0: no error-free transformation
    fast2sum = _best(seeds, select, 16)
    assert score(exact_head, select).max_err < 1.0
    assert score(fast2sum, select).max_err < 0.75  # one rounding of consequence
    assert frozen_slots(fast2sum), "the 16-op seed is the Fast2Sum form"


def test_the_fast2sum_seed_matches_the_oracle_and_its_error_term_is_exact(seeds, exp2_sets):
    _, select = exp2_sets
    program = _best(seeds, select, 16)
    xs = _sample()
    fast = evaluate(program, np.array(xs, dtype=np.float32))
    exact = oracle_evaluate(program, xs, FLOAT32)
    assert all(same_float(g, w, FLOAT32) for g, w in zip(fast.tolist(), exact, strict=True))
    # s = a + x and e = (c0 - s) + x: s + e equals c0 + x exactly (rationals), for every sample x
    add_s = next(i for i, ins in enumerate(program.body) if ins.op == "add" and Ref(0) in ins.args)
    s_prog = program.with_output(Ref(add_s + 1)).pruned()
    sub_t = next(i for i, ins in enumerate(program.body) if ins.op == "sub" and Ref(add_s + 1) in ins.args)
    e_index = next(i for i, ins in enumerate(program.body) if ins.op == "add" and Ref(sub_t + 1) in ins.args)
    e_prog = program.with_output(Ref(e_index + 1)).pruned()
    c0 = program.body[sub_t].args[0]
    assert isinstance(c0, Const)
    c0_value = Fraction(bits_to_float(c0.bits, FLOAT32))
    s_values, e_values = oracle_evaluate(s_prog, xs, FLOAT32), oracle_evaluate(e_prog, xs, FLOAT32)
    for x, s, e in zip(xs, s_values, e_values, strict=True):
        assert Fraction(s) + Fraction(e) == c0_value + Fraction(x)


def test_frozen_edges_find_fast2sum_veltkamp_and_a_broken_pattern_frees_them(seeds, exp2_sets):
    _, select = exp2_sets
    fast2sum = _best(seeds, select, 16)
    edges = frozen_edges(fast2sum)
    assert len(edges) == 1
    ((i, position),) = edges
    assert fast2sum.body[i].op == "add" and fast2sum.body[i].args[1 - position] == Ref(0)
    veltkamp = parse_text(VELTKAMP)
    assert frozen_edges(veltkamp) == {(0, 0)}
    # h = c - (c - x) becomes c - (c + x): no split, nothing frozen
    broken = parse_text(VELTKAMP.replace("t2 = sub(t1, x)", "t2 = add(t1, x)"))
    assert frozen_edges(broken) == frozenset()
    split = parse_text("t1 = add(x, 0x1p+11)\nt2 = sub(t1, 0x1p+11)\nt3 = sub(x, t2)\nreturn t3\n")
    assert frozen_edges(split) == {(0, 1), (1, 1)}


def test_constant_mutations_never_move_a_frozen_constant(seeds, exp2_sets):
    _, select = exp2_sets
    program = _best(seeds, select, 16)
    (slot,) = frozen_slots(program)
    frozen_bits = program.constants()[slot]
    space = SearchSpace(NO_FMA, 16, DEFAULT_MUTATION_WEIGHTS)
    rng = np.random.default_rng(0)
    for _ in range(200):
        for move in (perturb_const, redraw_const, refit):
            child = move(program, rng, space)
            assert child is not None and child.constants()[slot] == frozen_bits


def test_the_fit_keeps_the_splitter_and_the_fast2sum_addend(seeds, exp2_sets):
    search, select = exp2_sets
    program = _best(seeds, select, 16)
    (slot,) = frozen_slots(program)
    # detune every other constant by 1%: the fit must bring the error back without moving the addend
    values = [v if k == slot else v * 1.01 for k, v in enumerate(program.constant_values())]
    detuned = program.with_constants([int(np.float32(v).view(np.uint32)) for v in values])
    evaluator = Evaluator(
        search, FitSettings(), space=SearchSpace(NO_FMA, 16, DEFAULT_MUTATION_WEIGHTS), cache_size=0
    )
    result = evaluator.run(Job(0, detuned, mutate=False))
    assert result.program.constants()[slot] == program.constants()[slot]
    assert score(result.program, select).max_err < score(detuned, select).max_err / 100
    veltkamp = parse_text(VELTKAMP)
    fitted = evaluator.run(Job(1, veltkamp, mutate=False)).program
    assert fitted.constant_values()[0] == 4097.0


def test_a_fit_that_moves_the_addend_is_overruled(seeds, exp2_sets, monkeypatch):
    """The thorough fit moves the Fast2Sum addend (1 -> 0.72 was seen): the evaluator restores it."""
    import evo.evaluate as evaluate_module

    search, select = exp2_sets
    program = _best(seeds, select, 16)
    (slot,) = frozen_slots(program)
    real_fit = evaluate_module.fit_constants

    def moving_fit(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        moved = result.constants.copy()
        moved[slot] = 0.72
        return dataclasses.replace(result, constants=moved)

    monkeypatch.setattr(evaluate_module, "fit_constants", moving_fit)
    evaluator = Evaluator(
        search, FitSettings(), space=SearchSpace(NO_FMA, 16, DEFAULT_MUTATION_WEIGHTS), cache_size=0
    )
    fitted, _, _ = evaluator._fit_program(program)
    assert fitted is not None
    assert fitted.constants()[slot] == program.constants()[slot]


def test_children_by_constant_moves_keep_the_fast2sum_addend(seeds, exp2_sets):
    search, select = exp2_sets
    program = _best(seeds, select, 16)
    (slot,) = frozen_slots(program)
    space = SearchSpace(NO_FMA, 16, DEFAULT_MUTATION_WEIGHTS)
    evaluator = Evaluator(search, FitSettings(), space=space, seed=3)
    addend = program.constant_values()[slot]
    constant_moves = 0
    for child_id in range(60):
        result = evaluator.run(Job(child_id, program, mutate=True))
        if result.mutation in ("perturb_const", "redraw_const", "refit"):  # the structure is the parent's
            constant_moves += 1
            assert frozen_slots(result.program) == (slot,)
            assert result.program.constant_values()[slot] == addend
    assert constant_moves > 0


def test_the_seed_family_is_part_of_the_classical_population(exp2_sets):
    from evo.assemble import population_seeds
    from evo.config import RunConfig
    from evo.problem import build_problem

    config = RunConfig(target="exp2", ops=NO_FMA, max_ops=16, max_evals=10, seed=1, seed_lattice_budget=0)
    seeds = population_seeds(config, build_problem(config))
    assert any(frozen_slots(p) for p in seeds)
    assert all(isinstance(p, Program) and set(p.op_histogram()) <= set(NO_FMA) for p in seeds)
