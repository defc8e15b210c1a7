"""The Pareto archive: non-dominated by (cost, error), sorted by cost, with verified entries protected."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evo.front import NEAR_TIE, FrontEntry, ParetoFront
from evo.population import Individual
from primitives.program import X, const_of, instr, make_program
from targets.scoring import Score

SETTINGS = settings(deadline=None, max_examples=80)


def score(err: float, label: str = "select (sample, 2048 points, t)") -> Score:
    return Score(err, err / 2 if math.isfinite(err) else math.inf, 0.5, 2048, 0, 0, 0, "ulp", label)


def final(err: float) -> Score:
    return score(err, "final (exhaustive, 1065353217 points, t)")


def individual(id: int, cost: float, search_err: float) -> Individual:
    # a distinct program per id (distinct constant), so canonical hashes identify entries
    program = make_program([instr("add", X, const_of(float(id + 1)))])
    return Individual(id, program, score(search_err, "search (sample, 512 points, t)"), cost, None, "insert")


def hash_of(entry_or_ind) -> str:
    ind = entry_or_ind.individual if isinstance(entry_or_ind, FrontEntry) else entry_or_ind
    return ind.program.canonical_hash()


def may_evict(a: FrontEntry, b: FrontEntry) -> bool:
    """The documented rule: a dominates b (no costlier, no worse, strictly better in one), an
    unverified entry can never evict a verified one, and a cheaper unverified one must be better
    by the near-tie margin."""
    if b.final is not None and a.final is None:
        return False
    bar = NEAR_TIE * b.error if a.final is None and a.cost < b.cost else b.error
    return a.cost <= b.cost and a.error <= bar and (a.cost < b.cost or a.error < b.error)


def gate_of(e: FrontEntry, cost: float) -> float:
    """What a newcomer of this cost must beat to be checked against entry e."""
    return e.gate_error / NEAR_TIE if e.final is None and e.cost < cost else e.gate_error


def check_invariants(front: ParetoFront) -> None:
    entries = front.entries
    costs = [e.cost for e in entries]
    assert costs == sorted(costs)
    for e in entries:
        assert math.isfinite(e.error)
    for a in entries:
        for b in entries:
            if a is not b:
                assert not may_evict(a, b), (a.cost, a.error, b.cost, b.error)
    hashes = [hash_of(e) for e in entries]
    assert len(set(hashes)) == len(hashes)


errors = st.one_of(
    st.floats(0.0, 100.0, allow_nan=False), st.sampled_from([0.0, 1.0, 2.0, math.inf, math.nan])
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), st.integers(0, 6), errors, errors),
        st.tuples(
            st.just("signoff"), st.integers(0, 20), st.floats(0.0, 100.0, allow_nan=False), st.just(0.0)
        ),
    ),
    max_size=25,
)


@SETTINGS
@given(offers=st.lists(st.tuples(st.integers(0, 6), errors, errors), max_size=25))
def test_front_never_holds_a_dominated_point(offers):
    front = ParetoFront()
    for i, (cost, search_err, select_err) in enumerate(offers):
        ind = individual(i, cost, search_err)
        if not front.worth_checking(ind):
            assert not (search_err < math.inf) or any(
                e.cost <= cost and gate_of(e, cost) <= search_err for e in front.entries
            )
            continue
        new, changed = front.updated(ind, score(select_err))
        if changed:
            assert any(hash_of(e) == hash_of(ind) for e in new.entries)
            assert math.isfinite(select_err)
        else:
            assert new is front
        front = new
        check_invariants(front)
        # without sign-offs, entries are better than NEAR_TIE times the cheaper ones' error
        for a, b in zip(front.entries, front.entries[1:], strict=False):
            assert a.cost < b.cost and a.error > NEAR_TIE * b.error


@SETTINGS
@given(actions=steps)
def test_invariants_hold_with_sign_offs(actions):
    front = ParetoFront()
    next_id = 0
    for action, a, b, c in actions:
        verified = {hash_of(e): (e.cost, e.error) for e in front.entries if e.final is not None}
        if action == "offer":
            ind = individual(next_id, a, b)
            next_id += 1
            if front.worth_checking(ind):
                front, _ = front.updated(ind, score(c))
            # an unverified newcomer never evicts a verified entry
            assert verified.keys() <= {hash_of(e) for e in front.entries}
        elif front.entries:
            signed = hash_of(front.entries[a % len(front.entries)])
            cost = next(e.cost for e in front.entries if hash_of(e) == signed)
            verified[signed] = (cost, b)
            front = front.with_final(signed, final(b))
            # a verified entry leaves only when a verified entry that stays dominates it
            kept = {hash_of(e) for e in front.entries}
            for h, (v_cost, v_err) in verified.items():
                if h not in kept:
                    assert any(
                        e.final is not None
                        and e.cost <= v_cost
                        and e.error <= v_err
                        and (e.cost < v_cost or e.error < v_err)
                        for e in front.entries
                    )
        check_invariants(front)


def test_worth_checking_rejects_non_finite_errors():
    empty = ParetoFront()
    assert empty.worth_checking(individual(0, 1, 5.0))
    assert not empty.worth_checking(individual(1, 1, math.inf))
    assert not empty.worth_checking(individual(2, 1, math.nan))


def test_updated_rejects_non_finite_select_errors():
    empty = ParetoFront()
    for bad in (math.inf, math.nan):
        front, changed = empty.updated(individual(0, 1, 5.0), score(bad))
        assert not changed and len(front) == 0


def test_worth_checking_must_beat_every_entry_costing_no_more():
    front, _ = ParetoFront().updated(individual(0, 3, 10.0), score(10.0))
    assert not front.worth_checking(individual(1, 3, 10.0))  # ties do not get in
    assert not front.worth_checking(individual(2, 4, 11.0))  # costlier and worse
    assert front.worth_checking(individual(3, 4, 9.0))  # costlier but better
    assert front.worth_checking(individual(4, 2, 50.0))  # cheaper: nothing costs no more


def test_newcomer_dominating_on_select_evicts_unverified_entries():
    front, _ = ParetoFront().updated(individual(0, 3, 10.0), score(10.0))
    front, _ = front.updated(individual(1, 5, 4.0), score(4.0))
    front, changed = front.updated(individual(2, 3, 2.0), score(2.0))  # same cost, better
    assert changed
    assert [e.individual.id for e in front.entries] == [2]  # dominates both


def test_verified_entry_is_not_evicted_by_an_unverified_newcomer():
    front, _ = ParetoFront().updated(individual(0, 3, 10.0), score(10.0))
    front = front.with_final(hash_of(front.entries[0]), final(12.0))
    assert front.entries[0].final is not None and front.entries[0].error == 12.0
    newcomer = individual(1, 2, 1.0)
    assert front.worth_checking(newcomer)
    front, changed = front.updated(newcomer, score(1.0))
    assert changed
    assert sorted(e.individual.id for e in front.entries) == [0, 1]  # the verified one stays
    # once the newcomer is verified and still better, it replaces the verified entry
    replaced = front.with_final(hash_of(newcomer), final(1.5))
    assert [e.individual.id for e in replaced.entries] == [1]
    assert replaced.entries[0].final.max_err == 1.5
    # if its final turns out worse than the verified entry, both stay (neither dominates)
    both = front.with_final(hash_of(newcomer), final(20.0))
    assert sorted(e.individual.id for e in both.entries) == [0, 1]
    check_invariants(both)


def test_signed_off_gate_uses_the_final_error():
    # looked good on samples (search 0.5) but failed the sweep (final 100): it must not block others
    front, _ = ParetoFront().updated(individual(0, 2, 0.5), score(0.5))
    assert not front.worth_checking(individual(1, 4, 50.0))
    front = front.with_final(hash_of(front.entries[0]), final(100.0))
    assert front.entries[0].gate_error == 100.0
    assert front.worth_checking(individual(1, 4, 50.0))


def test_updated_with_a_known_final_uses_it():
    front, _ = ParetoFront().updated(individual(0, 3, 10.0), score(10.0))
    # select says 1.0 but the final (known from an earlier sign-off) says 50: dominated, rejected
    same, changed = front.updated(individual(1, 4, 1.0), score(1.0), final(50.0))
    assert not changed and same is front


def test_best_without_and_with_target():
    assert ParetoFront().best() is None
    assert ParetoFront().best(1.0) is None
    front = ParetoFront()
    for i, (cost, err) in enumerate([(1, 100.0), (3, 8.0), (5, 0.9), (8, 0.4)]):
        front, changed = front.updated(individual(i, cost, err), score(err))
        assert changed
    assert front.best().individual.id == 3  # lowest error
    assert front.best(None).individual.id == 3
    assert front.best(1.0).individual.id == 2  # cheapest within 1 ULP
    assert front.best(10.0).individual.id == 1
    assert front.best(100.0).individual.id == 0
    assert front.best(0.1).individual.id == 3  # nothing within: lowest error
    # a final score replaces the select one in best()
    front = front.with_final(hash_of(front.entries[2]), final(2.0))  # cost 5 fails 1 ULP on the sweep
    assert front.best(1.0).individual.id == 3


def test_best_breaks_error_ties_by_cost():
    a = FrontEntry(individual(0, 4, 1.0), score(1.0))
    b = FrontEntry(individual(1, 2, 1.0), score(1.0))
    assert ParetoFront((a, b)).best().individual.id == 1


@pytest.mark.parametrize("with_final", [False, True])
def test_front_round_trips_through_its_list_form(with_final):
    front = ParetoFront()
    for i, (cost, err) in enumerate([(1, 100.0), (3, 8.0), (5, 0.9)]):
        front, _ = front.updated(individual(i, cost, err), score(err))
    if with_final:
        front = front.with_final(hash_of(front.entries[1]), final(9.0))
    assert ParetoFront.from_list(front.to_list()) == front


def test_near_ties_stay_until_the_sweep_decides():
    # select errors run a few percent optimistic: a cheaper unverified entry only 4% better must
    # not evict (or keep out) a costlier one; once both are signed off the final errors decide
    front, _ = ParetoFront().updated(individual(0, 7, 0.771), score(0.771))
    assert front.worth_checking(individual(1, 6, 0.742))
    front, changed = front.updated(individual(1, 6, 0.742), score(0.742))
    assert changed and [e.individual.id for e in front.entries] == [1, 0]
    assert front.worth_checking(individual(2, 8, 0.75))  # within 5% of the 6-op entry
    assert not front.worth_checking(individual(3, 8, 0.80))
    clearly, _ = front.updated(individual(4, 5, 0.70), score(0.70))  # 9% better than 0.771
    assert [e.individual.id for e in clearly.entries] == [4]
    front = front.with_final(hash_of(front.entries[0]), final(0.791))
    front = front.with_final(hash_of(front.entries[1]), final(0.772))
    assert [e.individual.id for e in front.entries] == [1, 0]  # 0.772 beats 0.791 at one more op
    worse = front.with_final(hash_of(front.entries[1]), final(0.80))
    assert [e.individual.id for e in worse.entries] == [1]
