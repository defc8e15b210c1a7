"""The objective: one definition of better, meaningful progress and best of a front."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

import evo.population
from evo.front import FrontEntry, ParetoFront
from evo.objective import Objective, fitness_key
from evo.population import Individual
from primitives.program import X, const_of, instr, make_program
from targets.scoring import Score


def ind(id: int, cost: float, err: float, mean: float | None = None) -> Individual:
    program = make_program([instr("add", X, const_of(float(id + 1)))])
    score = Score(err, err / 2 if mean is None else mean, 0.5, 512, 0, 0, 0, "ulp", "search")
    return Individual(id, program, score, cost, None, "insert")


def test_population_reexports_the_one_fitness_key():
    assert evo.population.fitness_key is fitness_key


def test_fitness_order_without_and_with_a_target():
    plain = Objective()
    assert plain.better(ind(0, 5, 1.0), ind(1, 1, 2.0))  # error first
    assert plain.better(ind(0, 1, 1.0), ind(1, 5, 1.0))  # then cost
    assert not plain.better(ind(0, 5, 2.0), ind(1, 5, 2.0))  # equal: not better
    target = Objective(1.0)
    assert target.better(ind(0, 2, 0.9), ind(1, 9, 0.1))  # within target: cheaper wins
    assert target.better(ind(0, 9, 0.99), ind(1, 1, 1.5))  # within beats outside
    assert target.better(ind(0, 9, 1.2), ind(1, 1, 1.5))  # outside: lower error
    nan = ind(0, 1, math.nan)
    assert plain.better(ind(1, 9, 1e30), nan) and not plain.better(nan, ind(1, 9, 1e30))
    assert plain.better(ind(0, 1, 1.0), None)


def test_meaningfully_better_is_a_one_percent_resolution():
    plain = Objective()
    assert plain.meaningfully_better(ind(0, 5, 0.989), ind(1, 5, 1.0))
    assert not plain.meaningfully_better(ind(0, 5, 0.995), ind(1, 5, 1.0))  # better, but not by 1%
    assert plain.meaningfully_better(ind(0, 5, 1.0), None)
    assert not plain.meaningfully_better(ind(0, 5, math.inf), ind(1, 5, math.inf))
    target = Objective(1.0)
    assert target.meaningfully_better(ind(0, 9, 0.999), ind(1, 1, 1.001))  # crossing into the target
    assert not target.meaningfully_better(ind(0, 1, 1.001), ind(1, 9, 0.999))  # leaving it
    assert target.meaningfully_better(ind(0, 4, 0.9), ind(1, 5, 0.5))  # cheaper within the target
    assert not target.meaningfully_better(ind(0, 5, 0.995), ind(1, 5, 1.0))


def _front(points) -> ParetoFront:
    entries = []
    for i, (cost, err) in enumerate(points):
        entries.append(FrontEntry(ind(i, cost, err), Score(err, err, 0.5, 2048, 0, 0, 0, "ulp", "select")))
    return ParetoFront(tuple(entries))


def test_best_entry():
    front = _front([(1, 100.0), (3, 5.0), (6, 0.9), (9, 0.4)])
    assert Objective().best_entry(front.entries).cost == 9
    assert Objective(1.0).best_entry(front.entries).cost == 6  # the cheapest within the target
    assert Objective(0.1).best_entry(front.entries).cost == 9  # none within: the lowest error
    assert Objective().best_entry(()) is None


@settings(deadline=None, max_examples=60)
@given(
    st.lists(st.tuples(st.integers(1, 12), st.floats(0.01, 1e4)), min_size=1, max_size=8),
    st.one_of(st.none(), st.floats(0.01, 1e4)),
)
def test_front_best_is_the_objective(points, target):
    front = _front(points)
    best = front.best(target)
    assert best is Objective(target).best_entry(front.entries)
    # and it is minimal under the definition spelled out directly
    within = [e for e in front.entries if target is not None and e.error <= target]
    if within:
        assert (best.cost, best.error) == min((e.cost, e.error) for e in within)
    else:
        assert (best.error, best.cost) == min((e.error, e.cost) for e in front.entries)
