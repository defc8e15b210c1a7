"""The fpminimax fallbacks of the reserve: a float32 run with classical seeding ends with a front
no worse than the shipped classical polynomials of a built-in (their exhaustive errors as the
estimate), or the minimax polynomials of a user expression (their final-set errors), at every
op count the run allows."""

from __future__ import annotations

import numpy as np
import pytest

from evo.api import evolve
from evo.assemble import _anchor_fallbacks, ordered_reserve, reserve_seeds
from evo.config import resolve
from evo.front import FrontEntry, ParetoFront
from evo.minimax import minimax_seeds
from evo.policies import Certifier
from evo.population import Individual
from evo.problem import build_problem
from primitives.program import Instr, Program, Ref, const_of
from targets.baselines import baselines
from targets.dataset import refine_dataset
from targets.scoring import Score, score

# log2 on [1, 2] with the exchange off: measured before the fallbacks, the run ended at 4789.3 ULP
# at 6 ops against the shipped 6-op fpminimax polynomial's 952.79
LOG2 = dict(
    target="log2",
    max_ops=6,
    seed=1,
    max_evals=60,
    population_size=20,
    search_points=512,
    select_points=2048,
    seed_lattice_budget=300,
    seed_exchange_rounds=0,
)

USER = dict(
    expr="log(1+exp(x))",
    domain="1,1.002",
    max_ops=4,
    search_points=256,
    select_points=512,
    seed_lattice_budget=50,
    seed_exchange_rounds=1,
    max_evals=1,
)
SHIPPED_6 = 952.7910571247339  # log2 on [1, 2], t + t*q(t) of degree 5 with fma, every float
ALL_OPS = ("add", "sub", "mul", "div", "fma")


def _doubled(factor: float) -> Program:
    return Program((Instr("mul", (Ref(0), const_of(factor))),), Ref(1))


def _plus(first: float, second: float) -> Program:
    body = (Instr("mul", (Ref(0), const_of(first))), Instr("add", (Ref(1), const_of(second))))
    return Program(body, Ref(2))


def test_the_reserve_of_log2_is_every_shipped_polynomial_with_its_exhaustive_error():
    """No classical refinement, no exchange: the reserve is exactly the shipped polynomials."""
    config = resolve({**LOG2, "seed_lattice_budget": 0, "max_evals": 1})
    problem = build_problem(config)
    reserve = reserve_seeds(config, problem)
    shipped = {
        b.program: b.max_ulp_exhaustive
        for b in baselines("log2_1_2")
        if b.program.op_count() <= 6 and np.isfinite(b.max_ulp_exhaustive)
    }
    assert dict(reserve) == shipped and len(reserve) == len(shipped)
    assert min(e for p, e in reserve if p.op_count() == 6) == SHIPPED_6
    assert [(p.op_count(), e) for p, e in reserve] == sorted((p.op_count(), e) for p, e in reserve)
    assert reserve == ordered_reserve(_anchor_fallbacks(problem.target, config.ops, 6))
    no_fma = reserve_seeds(resolve({**LOG2, "ops": "add,sub,mul", "seed_lattice_budget": 0}), problem)
    assert no_fma and all("fma" not in p.op_histogram() for p, _ in no_fma)
    moved = resolve({**LOG2, "domain": "1,1.5", "seed_lattice_budget": 0})
    off_domain = reserve_seeds(moved, build_problem(moved))  # shipped ones measured elsewhere
    assert off_domain and not {p for p, _ in off_domain} & set(shipped)  # the minimax ones instead


def test_the_reserve_keeps_one_entry_per_program_with_its_larger_estimate_in_op_count_order():
    a, b, c = _doubled(2.0), _doubled(3.0), _plus(2.0, 1.0)
    twin = Program((Instr("mul", (const_of(2.0), Ref(0))),), Ref(1))  # a, operands swapped
    assert twin.canonical_hash() == a.canonical_hash()
    ordered = ordered_reserve([(c, 0.5), (a, 2.0), (b, 1.0), (twin, 3.0), (a, 2.5)])
    assert [e for _, e in ordered] == [1.0, 3.0, 0.5]
    assert [p for p, _ in ordered][0] == b and [p for p, _ in ordered][2] == c
    assert ordered_reserve([]) == ()


def _score(error: float) -> Score:
    return Score(error, error, 0.0, 1, 0, 0, 0, "ulp", "test")


def test_a_fallback_is_signed_off_only_where_it_beats_the_front():
    program, cheaper = _plus(2.0, 1.0), _doubled(2.0)
    ind = Individual(0, _doubled(5.0), _score(1.0), 2.0, None, "seed")
    front = ParetoFront((FrontEntry(ind, _score(900.0), _score(SHIPPED_6)),))
    cost = {program: 2.0, cheaper: 1.0}.get
    certifier = Certifier(None, "front")
    assert certifier.next_reserve(front, ((program, SHIPPED_6),), {}, cost) is None  # a tie: no sweep
    assert certifier.next_reserve(front, ((program, SHIPPED_6 * 0.999),), {}, cost) is program
    # nothing on the front costs as little: the cheaper one is signed off whatever its estimate
    assert certifier.next_reserve(front, ((program, 1e9), (cheaper, 1e9)), {}, cost) is cheaper


def test_a_user_expression_falls_back_on_its_minimax_polynomials_with_their_final_errors():
    config = resolve(USER)
    problem = build_problem(config)
    final = problem.final()
    reserve = dict(reserve_seeds(config, problem))
    dense = refine_dataset(problem.target, problem.search, problem.select, seed=0, n=4 * problem.search.size)
    fitted = minimax_seeds(dense.x, dense.ref_hi + dense.ref_lo, dense.inv_scale, config.ops, 4)
    assert {s.program.op_count() for s in fitted} >= {2, 3, 4}
    for seed in fitted:
        assert seed.program in reserve
        assert reserve[seed.program] == pytest.approx(score(seed.program, final).max_err, rel=1e-12)
    # without the exchange the final set is not read before the sign-off: the dense-set errors
    off = resolve({**USER, "seed_exchange_rounds": 0})
    dense_only = dict(reserve_seeds(off, problem))
    for seed in fitted:
        assert dense_only[seed.program] == seed.error <= score(seed.program, final).max_err


@pytest.mark.slow
def test_a_log2_run_ends_no_worse_than_the_shipped_six_op_polynomial(tmp_path):
    result = evolve(**LOG2, runs_dir=str(tmp_path))
    entries = [e for e in result.front.entries if e.individual.program.op_count() <= 6]
    assert entries and all(e.final is not None for e in entries)
    assert min(e.final.max_err for e in entries) <= 952.7910571247339 * (1 + 1e-9)
