"""Selection across cost: NSGA-II ranks and crowding, the nsga and niche tournaments, and the config key."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.api import evolve
from evo.config import resolve
from evo.errors import UsageError
from evo.population import Individual, Population, fitness_key
from evo.runlog import RunReader, strip_nondeterministic
from evo.selection import (
    SELECTIONS,
    crowding_distances,
    drawable_niches,
    non_dominated_ranks,
    nsga_order,
    objective_points,
)
from primitives.program import Program
from targets.scoring import Score


def member(id: int, max_err: float, cost: float) -> Individual:
    score = Score(max_err, max_err / 2, 0.25, 512, 0, 0, 0, "ulp", "search (sample, 512 points, test)")
    return Individual(id, Program.identity(), score, cost, None, "insert")


# ----------------------------------------------------------------------------- ranking
def test_ranks_of_a_hand_made_set_of_fronts():
    points = np.array(
        [
            [1.0, 9.0],
            [2.0, 5.0],
            [4.0, 1.0],  # front 0
            [3.0, 6.0],
            [5.0, 2.0],  # front 1: (3,6) is dominated by (2,5), (5,2) by (4,1)
            [6.0, 7.0],  # front 2: dominated by (3,6)
            [6.0, 7.0],  # an equal point shares the rank
            [1.0, 10.0],  # front 1: dominated by (1,9) only (equal error, costlier)
        ]
    )
    assert non_dominated_ranks(points).tolist() == [0, 0, 0, 1, 1, 2, 2, 1]


def test_ranks_of_an_empty_set_and_of_one_point():
    assert non_dominated_ranks(np.zeros((0, 2))).tolist() == []
    assert non_dominated_ranks(np.array([[3.0, 3.0]])).tolist() == [0]


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25))
def test_ranks_agree_with_the_definition(pairs):
    points = np.array(pairs, dtype=np.float64)
    ranks = non_dominated_ranks(points)

    def dominates(p, q):
        return all(p <= q) and any(p < q)

    for i, p in enumerate(points):
        dominators = [j for j, q in enumerate(points) if dominates(q, p)]
        # rank 0 exactly when nothing dominates; otherwise one more than the best dominator's rank
        expected = 0 if not dominators else 1 + max(ranks[j] for j in dominators)
        assert ranks[i] == expected


def test_crowding_distances_by_hand():
    # one front of four points, spans 3 (error) and 6 (cost); ends are infinitely crowded-free
    points = np.array([[0.0, 6.0], [1.0, 3.0], [2.0, 1.0], [3.0, 0.0], [5.0, 5.0]])
    ranks = non_dominated_ranks(points)
    assert ranks.tolist() == [0, 0, 0, 0, 1]
    distance = crowding_distances(points, ranks)
    assert math.isinf(distance[0]) and math.isinf(distance[3])
    assert distance[1] == pytest.approx((2 - 0) / 3 + (6 - 1) / 6)
    assert distance[2] == pytest.approx((3 - 1) / 3 + (3 - 0) / 6)
    assert math.isinf(distance[4])  # a front of one point


def test_crowding_ignores_an_objective_without_finite_span():
    points = np.array([[0.0, 4.0], [1.0, 4.0], [2.0, 4.0]])  # one cost: only the error spreads them
    distance = crowding_distances(points, np.zeros(3, dtype=np.int64))
    assert math.isinf(distance[0]) and math.isinf(distance[2]) and distance[1] == pytest.approx(1.0)


def test_objectives_treat_nan_as_infinite_and_clip_at_the_target():
    points = objective_points([math.nan, 8.0, 0.5, 0.0], [1, 2, 3, 4], target_error=None)
    assert math.isinf(points[0, 0]) and points[1, 0] == 3.0 and points[2, 0] == -1.0 and points[3, 0] == -40.0
    clipped = objective_points([8.0, 0.5, 0.9], [2, 6, 5], target_error=1.0)
    assert clipped[:, 0].tolist() == [3.0, 0.0, 0.0]
    # within the target only cost tells programs apart: the 5-op one dominates the 6-op one
    assert non_dominated_ranks(clipped).tolist() == [0, 1, 0]


# ----------------------------------------------------------------------------- nsga tournament
# A (cheap, bad), B (dominated by C), C, D (accurate, costly)
FRONT = [member(0, 100.0, 1.0), member(1, 50.0, 6.0), member(2, 40.0, 5.0), member(3, 1.0, 8.0)]


def test_nsga_order_of_the_example():
    ranks, crowding = nsga_order([m.error for m in FRONT], [m.cost for m in FRONT], None)
    assert ranks.tolist() == [0, 1, 0, 0]
    assert math.isinf(crowding[0]) and math.isinf(crowding[3]) and math.isfinite(crowding[2])


def test_a_cheap_program_with_a_bad_error_wins_an_nsga_tournament():
    population = Population(4, FRONT)
    # expected winner of every pair: lower rank, then larger crowding, then the fitness key
    expected = {
        frozenset({0, 1}): 0,
        frozenset({0, 2}): 0,
        frozenset({0, 3}): 3,
        frozenset({1, 2}): 2,
        frozenset({1, 3}): 3,
        frozenset({2, 3}): 3,
    }
    seen = set()
    for seed in range(40):
        pair = frozenset(int(i) for i in np.random.default_rng(seed).choice(4, size=2, replace=False))
        nsga = population.tournament(2, np.random.default_rng(seed), None, "nsga")
        error = population.tournament(2, np.random.default_rng(seed), None, "error")
        assert nsga.id == expected[pair]
        assert error.id == min(pair, key=lambda i: FRONT[i].error)
        seen.add(pair)
    assert frozenset({0, 2}) in seen  # where error selection picks C (40 ULP), nsga keeps A (cost 1)


def test_nsga_with_a_target_prefers_the_cheapest_program_within_it():
    population = Population(
        4, [member(0, 0.5, 6.0), member(1, 0.9, 5.0), member(2, 0.1, 8.0), member(3, 30.0, 2.0)]
    )
    rng = np.random.default_rng(0)
    assert population.tournament(4, rng, None, "nsga").id == 2  # no target: the most accurate end
    assert population.tournament(4, rng, 1.0, "nsga").id == 1  # target 1 ULP: the cheapest within it


# ----------------------------------------------------------------------------- niche tournament
def test_a_cheap_program_with_a_bad_error_wins_in_its_niche():
    members = [member(0, 1000.0, 1.0)] + [member(i, float(i), 8.0) for i in range(1, 10)]
    population = Population(10, members)
    rng = np.random.default_rng(3)
    winners = [population.tournament(10, rng, None, "niches").id for _ in range(200)]
    assert set(winners) == {0, 1}  # each niche's best: the only 1-op program, and the best 8-op one
    assert 60 <= winners.count(0) <= 140  # niches are drawn uniformly (two niches)
    assert all(population.tournament(10, rng, None, "error").id == 1 for _ in range(20))


def test_niches_above_the_cheapest_program_within_the_target_are_not_drawn():
    errors, costs = [5.0, 0.8, 0.2, 40.0], [6.0, 7.0, 8.0, 2.0]
    assert drawable_niches(errors, costs, None) == [2.0, 6.0, 7.0, 8.0]
    assert drawable_niches(errors, costs, 1.0) == [2.0, 6.0, 7.0]
    population = Population(4, [member(i, e, c) for i, (e, c) in enumerate(zip(errors, costs, strict=True))])
    rng = np.random.default_rng(0)
    assert {population.tournament(4, rng, 1.0, "niches").id for _ in range(100)} == {0, 1, 3}


@settings(deadline=None, max_examples=40)
@given(
    specs=st.lists(st.tuples(st.floats(0.0, 1e6), st.integers(0, 8)), min_size=1, max_size=30),
    size=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    selection=st.sampled_from(SELECTIONS),
    target=st.sampled_from([None, 1.0]),
)
def test_every_mode_is_deterministic_for_a_seed_and_returns_members(specs, size, seed, selection, target):
    population = Population(len(specs), [member(i, e, float(c)) for i, (e, c) in enumerate(specs)])
    picks_a = [
        population.tournament(size, np.random.default_rng(seed), target, selection).id for _ in range(3)
    ]
    rng_b = np.random.default_rng(seed)
    picks_b = [population.tournament(size, rng_b, target, selection).id for _ in range(3)]
    rng_c = np.random.default_rng(seed)
    picks_c = [population.tournament(size, rng_c, target, selection).id for _ in range(3)]
    assert picks_b == picks_c and picks_a[0] == picks_b[0]
    assert all(0 <= i < len(specs) for i in picks_b)
    if selection == "niches":
        # the winner is the best of its niche when the tournament covers the niche
        winner = population.tournament(len(specs), np.random.default_rng(seed), target, selection)
        niche = [m for m in population if m.cost == winner.cost]
        assert fitness_key(winner, target) == min(fitness_key(m, target) for m in niche)


def test_an_unknown_selection_is_an_error():
    with pytest.raises(ValueError, match="unknown selection"):
        Population(2, FRONT[:2]).tournament(2, np.random.default_rng(0), None, "pareto")


# ----------------------------------------------------------------------------- config and search
def test_the_selection_config_key():
    assert resolve({}).selection in SELECTIONS
    assert resolve({}, ["selection=niches"]).selection == "niches"
    with pytest.raises(UsageError, match="selection"):
        resolve({"selection": "pareto"})


@pytest.mark.parametrize("selection", ["nsga", "niches"])
def test_a_search_with_each_mode_is_deterministic(tmp_path, selection):
    base = dict(
        target="exp2",
        population_size=20,
        tournament_size=4,
        search_points=512,
        select_points=2048,
        signoff="none",
        data_seed=0,
        max_evals=250,
        seed=5,
        selection=selection,
    )
    a = evolve(base, runs_dir=str(tmp_path / "a"))
    b = evolve(base, runs_dir=str(tmp_path / "b"))

    def stripped(run_dir):
        return [strip_nondeterministic(e) for e in RunReader(run_dir).events()]

    assert stripped(a.run_dir) == stripped(b.run_dir)
    assert a.config.selection == selection
    assert len(a.front) >= 2
