"""Runner-ups signed off at the end of a run: the reserve of exchange-refined seeds, admitted to the
front where their final error beats every entry costing no more."""

from __future__ import annotations

from dataclasses import replace

from evo.events import Event, Front, Signoff, summary_of
from evo.population import Individual
from evo.search import Search
from evo.state import SearchState
from primitives.jsonform import to_dict as program_to_dict
from primitives.program import Program
from targets.scoring import Score, score


def next_reserve(search: Search) -> Program | None:
    """The next runner-up of the search rules' reserve to sign off, or None (``Certifier.next_reserve``)."""
    state, rules = search.state, search.rules
    if rules.certifier.mode != "front":
        return None  # nothing to compute
    return rules.certifier.next_reserve(state.front, rules.reserve(), state.finals, rules.cost_model.cost)


def fresh_id(search: Search, new: dict) -> int:
    """An unused individual id for a program made at the end of a run (adds the state change it
    needs to ``new``, the changes to the state being made)."""
    state = search.state
    if isinstance(state, SearchState):
        new["next_id"] = state.next_id + search.id_step
        return state.next_id
    # islands hand out their own ids: one above every count and id the run holds
    return max([state.n_evals, *(e.individual.id for e in state.front.entries)]) + 1


def record_reserve(
    search: Search, program: Program, final: Score, reference_deviation=None, seconds=None
) -> list[Event]:
    """A runner-up's final score: remembered (a resumed end does not sweep it again), and the
    program admitted to the front if its final error beats every entry costing no more."""
    state, rules = search.state, search.rules
    new = {"finals": {**state.finals, program.canonical_hash(): final}}  # the state is a value: replaced
    ind_id = fresh_id(search, new)
    search_score = score(program, search.search_set)
    ind = Individual(ind_id, program, search_score, rules.cost_model.cost(program), None, "seed")
    select = rules.gate.select_score(program)
    front, admitted = state.front.updated(ind, select, final)
    summary = {**summary_of(ind), "select_err": select.max_err}
    certified = admitted and rules.certifier.certified(final)
    events: list[Event] = []
    if admitted:
        new["front"] = front
        if certified:
            new["certified_cost"] = min(state.certified_cost, ind.cost)
        entered = Front(state.n_evals, **summary, program=program_to_dict(program), front=front.summary())
        events.append(entered)
    how = {"during_search": False, "reference_deviation": reference_deviation, "signoff_s": seconds}
    events.append(Signoff(state.n_evals, **summary, final=final.to_dict(), certified=certified, **how))
    search.state = replace(state, **new)
    return events
