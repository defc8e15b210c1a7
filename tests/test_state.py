"""The search state is a frozen value: ask, tell, sign-offs and hard points make new states and
leave every earlier one as it was, and its checkpoint form is unchanged by the freezing."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

from evo.front import ParetoFront
from evo.population import Population
from evo.rng_state import Draws, RngState
from evo.runlog import dumps
from evo.state import SearchState, driver_rng
from tests.test_search import POPULATION, FakeExecutor, fake_score, fresh_state, new_search


def test_the_state_cannot_be_changed_in_place():
    state = fresh_state()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.n_evals = 1
    assert isinstance(state.pending_seeds, tuple) and isinstance(state.hard_points, tuple)


def test_ask_and_tell_leave_every_earlier_state_as_it_was():
    search, executor = new_search(fresh_state(), eval_every=1), FakeExecutor()
    seen: list[tuple[SearchState, str]] = []
    for _ in range(4 * POPULATION):
        seen.append((search.state, dumps(search.state.to_dict())))
        executor.submit(search.ask())
        seen.append((search.state, dumps(search.state.to_dict())))
        search.tell(executor.next_result())
    assert all(dumps(state.to_dict()) == text for state, text in seen)
    assert len({text for _, text in seen}) == len(seen)  # and every step made a new value
    assert seen[0][0].n_evals == 0 and search.state.n_evals == 4 * POPULATION


def test_a_search_restarted_from_an_earlier_state_repeats_what_followed():
    search, executor = new_search(fresh_state()), FakeExecutor()
    for _ in range(2 * POPULATION):
        executor.submit(search.ask())
        search.tell(executor.next_result())
    middle = search.state

    def continue_from(state: SearchState) -> str:
        again, fake = new_search(state), FakeExecutor()
        for _ in range(3 * POPULATION):
            fake.submit(again.ask())
            again.tell(fake.next_result())
        return dumps(again.state.to_dict())

    first = continue_from(middle)
    assert continue_from(middle) == first  # the live generator of the first run did not touch it
    assert dumps(middle.to_dict()) != first


def test_record_final_and_use_search_make_new_states():
    search, executor = new_search(fresh_state()), FakeExecutor()
    for _ in range(POPULATION):
        executor.submit(search.ask())
        search.tell(executor.next_result())
    before = search.state
    program_hash = before.front.entries[0].individual.program.canonical_hash()
    search.record_final(program_hash, fake_score(3.0, "final"), during_search=True)
    assert not before.finals and search.state.finals[program_hash].max_err == 3.0
    assert before.front.entries[0].final is None
    search._score = lambda program, data: fake_score(7.0)
    grown = SimpleNamespace(digest="search-1", label="search (grown)")
    after_final = search.state
    search.use_search(grown, [0.5])
    assert after_final.hard_points == () and search.state.hard_points == (0.5,)
    assert {ind.score.max_err for ind in search.state.population} == {7.0}
    assert {ind.score.max_err for ind in after_final.population} != {7.0}


def test_the_rng_value_matches_numpy_and_draws_leave_it_alone():
    generator = np.random.Generator(np.random.PCG64(np.random.SeedSequence(5, spawn_key=(0,))))
    start = driver_rng(5)
    assert start.to_dict() == generator.bit_generator.state
    assert RngState.from_dict(json.loads(json.dumps(start.to_dict()))) == start
    draws = Draws()
    first, after = draws.draw(start, lambda g: g.integers(1000, size=4).tolist())
    assert first == generator.integers(1000, size=4).tolist() and after == RngState.of(generator)
    assert start == driver_rng(5) and after != start
    again, _ = draws.draw(start, lambda g: g.integers(1000, size=4).tolist())  # from the old value
    assert again == first


def test_the_checkpoint_form_is_unchanged():
    """The keys, their order and the RNG form are those checkpoints have always had."""
    state = SearchState(Population(4), ParetoFront(), driver_rng(1), next_id=3, n_evals=2)
    data = json.loads(dumps(state.to_dict()))
    assert list(data) == [
        "format",
        "n_evals",
        "next_id",
        "rng",
        "population",
        "front",
        "best",
        "pending_seeds",
        "certified_cost",
        "hard_points",
        "epoch",
        "epoch_best",
        "epoch_mark",
        "finals",
    ]
    assert list(data["rng"]) == ["bit_generator", "state", "has_uint32", "uinteger"]
    assert SearchState.from_dict(data, 4) == state
