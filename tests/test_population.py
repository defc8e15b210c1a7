"""Regularized evolution's population: FIFO ageing, tournaments and the fitness order."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.population import Individual, Population, fitness_key
from primitives.program import Program, Ref, X, const_of, instr, make_program
from targets.scoring import Score

SETTINGS = settings(deadline=None, max_examples=60)


def score(max_err: float, mean_err: float | None = None) -> Score:
    mean = max_err / 2 if mean_err is None else mean_err
    return Score(max_err, mean, 0.25, 512, 0, 0, 0, "ulp", "search (sample, 512 points, test)")


def individual(
    id: int,
    max_err: float = 1.0,
    cost: float = 1.0,
    mean_err: float | None = None,
    program: Program | None = None,
    parent: int | None = None,
    mutation: str = "insert",
) -> Individual:
    return Individual(id, program or Program.identity(), score(max_err, mean_err), cost, parent, mutation)


errors = st.one_of(
    st.floats(0.0, 1e9, allow_nan=False),
    st.sampled_from([0.0, 0.5, 1.0, math.inf, math.nan]),
)


# ----------------------------------------------------------------------------- ageing
@SETTINGS
@given(capacity=st.integers(1, 8), n=st.integers(0, 40))
def test_capacity_is_never_exceeded_and_the_oldest_retires_first(capacity, n):
    population = Population(capacity)
    added = []
    for i in range(n):
        before, retired = population, population.retiring
        population = population.add(individual(i))
        assert [m.id for m in before] == added[-capacity:]  # the add left the old value as it was
        added.append(i)
        assert len(population) <= capacity
        assert len(population) == min(i + 1, capacity)
        if i < capacity:
            assert retired is None
        else:
            # FIFO: the member that was added `capacity` additions ago leaves now
            assert retired is not None and retired.id == i - capacity
        # members are the most recent `capacity` additions, oldest first
        assert [m.id for m in population] == added[-capacity:]
        assert population.full == (i + 1 >= capacity)


def test_initial_members_beyond_capacity_keep_the_newest():
    population = Population(3, [individual(i) for i in range(5)])
    assert [m.id for m in population] == [2, 3, 4]
    assert population.retiring.id == 2
    assert [m.id for m in population.add(individual(5))] == [3, 4, 5]
    assert [m.id for m in population] == [2, 3, 4]  # adding made a new value


def test_a_population_is_a_frozen_value():
    population = Population(2, [individual(0)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        population.members = ()
    assert population == Population(2, (individual(0),))
    assert population.add(individual(1)) == Population(2, [individual(0), individual(1)])


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        Population(0)


def test_tournament_on_an_empty_population_raises():
    with pytest.raises(ValueError):
        Population(4).tournament(2, np.random.default_rng(0), None)


# ----------------------------------------------------------------------------- tournaments
member_specs = st.lists(st.tuples(errors, st.integers(0, 6)), min_size=1, max_size=10)


@SETTINGS
@given(
    specs=member_specs,
    target=st.one_of(st.none(), st.sampled_from([0.5, 1.0, 100.0])),
    seed=st.integers(0, 2**32 - 1),
)
def test_tournament_over_the_whole_population_returns_the_best(specs, target, seed):
    members = [individual(i, err, cost) for i, (err, cost) in enumerate(specs)]
    population = Population(len(members), members)
    winner = population.tournament(len(members), np.random.default_rng(seed), target)
    best_key = min(fitness_key(m, target) for m in members)
    assert fitness_key(winner, target) == best_key
    assert any(winner is m for m in members)


@SETTINGS
@given(specs=member_specs, size=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_tournament_is_deterministic_and_returns_members(specs, size, seed):
    members = [individual(i, err, cost) for i, (err, cost) in enumerate(specs)]
    population = Population(len(members), members)
    rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
    picks_a = [population.tournament(size, rng_a, None) for _ in range(8)]
    picks_b = [population.tournament(size, rng_b, None) for _ in range(8)]
    assert [p.id for p in picks_a] == [p.id for p in picks_b]
    for pick in picks_a:
        assert any(pick is m for m in members)


def test_tournament_of_size_one_samples_every_member():
    members = [individual(i, float(i)) for i in range(5)]
    population = Population(5, members)
    rng = np.random.default_rng(1)
    seen = {population.tournament(1, rng, None).id for _ in range(200)}
    assert seen == set(range(5))  # a size-1 tournament is a uniform draw; 200 draws see all 5


def test_tournament_size_larger_than_population_is_clamped():
    population = Population(10, [individual(0, 5.0), individual(1, 2.0), individual(2, 9.0)])
    assert population.tournament(10, np.random.default_rng(0), None).id == 1


# ----------------------------------------------------------------------------- fitness order
def test_fitness_without_target_orders_error_then_cost_then_mean():
    accurate_but_costly = individual(0, max_err=1.0, cost=10)
    cheap_but_worse = individual(1, max_err=2.0, cost=1)
    assert fitness_key(accurate_but_costly, None) < fitness_key(cheap_but_worse, None)
    same_error_cheaper = individual(2, max_err=1.0, cost=3)
    assert fitness_key(same_error_cheaper, None) < fitness_key(accurate_but_costly, None)
    lower_mean = individual(3, max_err=1.0, cost=3, mean_err=0.1)
    higher_mean = individual(4, max_err=1.0, cost=3, mean_err=0.2)
    assert fitness_key(lower_mean, None) < fitness_key(higher_mean, None)


def test_fitness_with_target_puts_feasible_first_then_cost():
    target = 5.0
    feasible_costly = individual(0, max_err=4.0, cost=10)
    infeasible_cheap = individual(1, max_err=6.0, cost=1)
    assert fitness_key(feasible_costly, target) < fitness_key(infeasible_cheap, target)
    # within the target, cheaper wins even with more error
    feasible_cheap_sloppy = individual(2, max_err=4.9, cost=2)
    feasible_costly_tight = individual(3, max_err=0.5, cost=3)
    assert fitness_key(feasible_cheap_sloppy, target) < fitness_key(feasible_costly_tight, target)
    # exactly at the target counts as within it
    at_target = individual(4, max_err=5.0, cost=9)
    assert fitness_key(at_target, target) < fitness_key(infeasible_cheap, target)
    # outside the target, lower error wins whatever the cost
    closer = individual(5, max_err=5.5, cost=20)
    assert fitness_key(closer, target) < fitness_key(infeasible_cheap, target)


@pytest.mark.parametrize("target", [None, 1.0, 1e12])
def test_nan_error_ranks_last(target):
    nan = individual(0, max_err=math.nan, cost=0)
    others = [individual(1, 0.0, 50), individual(2, 1e30, 0), individual(3, 3.0, 2)]
    for other in others:
        assert fitness_key(other, target) < fitness_key(nan, target)
    # the key is comparable (no NaN in it), so sorting is well defined
    assert not any(isinstance(k, float) and math.isnan(k) for k in fitness_key(nan, target)[:2])


@SETTINGS
@given(
    specs=st.lists(st.tuples(errors, st.integers(0, 6)), min_size=2, max_size=8),
    target=st.one_of(st.none(), st.floats(0.0, 1e6, allow_nan=False)),
)
def test_fitness_key_is_a_consistent_order(specs, target):
    members = [individual(i, err, cost) for i, (err, cost) in enumerate(specs)]
    ordered = sorted(members, key=lambda m: fitness_key(m, target))
    for a, b in zip(ordered, ordered[1:], strict=False):
        ea = math.inf if math.isnan(a.error) else a.error
        eb = math.inf if math.isnan(b.error) else b.error
        if target is None:
            assert (ea, a.cost) <= (eb, b.cost)
        else:
            fa, fb = ea <= target, eb <= target
            assert fa or not fb  # no infeasible member before a feasible one
            if fa and fb:
                assert a.cost <= b.cost
            if not fa and not fb:
                assert ea <= eb


# ----------------------------------------------------------------------------- serialisation
def test_individual_round_trip():
    program = make_program([instr("fma", X, const_of(0.5), const_of(1.0)), instr("mul", X, Ref(1))])
    ind = Individual(7, program, score(3.25, 1.5), 2.0, 4, "change_op")
    data = ind.to_dict()
    assert data["id"] == 7 and data["parent"] == 4 and data["mutation"] == "change_op"
    assert data["hash"] == program.canonical_hash() and data["ops"] == program.op_count() == 2
    assert Individual.from_dict(data) == ind
    # and through JSON text, as checkpoints store it
    assert Individual.from_dict(json.loads(json.dumps(data))) == ind


def test_seed_individual_round_trip_with_infinite_error():
    ind = Individual(
        0, Program.identity(), Score(math.inf, math.inf, 0.0, 512, 3, 0, 512, "ulp", "s"), 0.0, None, "seed"
    )
    back = Individual.from_dict(json.loads(json.dumps(ind.to_dict())))
    assert back == ind
    assert back.parent is None and back.error == math.inf
