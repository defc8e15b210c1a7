"""The search: regularized evolution as a pure ask/tell object (no file I/O, no clock).

``ask`` hands out the next job: a pending seed, or a tournament winner for a worker to mutate
(each child's mutation has its own RNG stream from the run seed and the child id). ``tell`` files
a result: the child joins the population and the oldest member retires; a new best, a front entry
(through the select gate) and a restart on stagnation come back as events. Sweeps of the final set
(sign-offs, hard-point mining) are the loop's work: the search says when they are due, and takes
their results with ``record_final`` and ``use_search``. All the state is one frozen
``SearchState`` value (``state.to_dict()`` is the checkpoint): each call replaces ``state`` with
a new value and leaves the old one as it was.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from evo.evaluate import EvalResult, Job, niche_bests
from evo.events import Eval, Event, Front, Improve, Restart, Signoff, summary_of
from evo.policies import SearchRules
from evo.population import Individual, Population
from evo.rng_state import Draws
from evo.state import SearchState
from primitives.jsonform import to_dict as program_to_dict
from targets.dataset import Dataset
from targets.scoring import Score


class Search:
    """One population's search; see the module docstring."""

    def __init__(
        self, rules: SearchRules, state: SearchState, search_set: Dataset, score, id_step: int = 1
    ) -> None:
        self.rules = rules
        self.id_step = id_step  # islands interleave their child ids, so ids stay unique in a run
        self.state = state
        self.search_set = search_set
        self._score = score  # Program, Dataset -> Score (pure)
        self._parents: dict[int, int | None] = {}  # child id -> parent id, for jobs handed out
        self._draws = Draws()  # tournaments draw from the state's RNG value through one generator

    @property
    def in_flight(self) -> int:
        return len(self._parents)

    def can_ask(self) -> bool:
        """False while every seed is in flight (no population to run a tournament on yet)."""
        return bool(self.state.pending_seeds) or len(self.state.population) > 0

    def ask(self) -> Job:
        state, rules = self.state, self.rules
        child_id, next_id = state.next_id, state.next_id + self.id_step
        if state.pending_seeds:
            self.state = replace(state, next_id=next_id, pending_seeds=state.pending_seeds[1:])
            self._parents[child_id] = None
            return Job(child_id, state.pending_seeds[0], mutate=False)
        size, target = rules.tournament_size, rules.objective.target_error
        pick = partial(state.population.tournament, size, target_error=target, selection=rules.selection)
        parent, rng = self._draws.draw(state.rng, pick)
        self.state = replace(state, next_id=next_id, rng=rng)
        self._parents[child_id] = parent.id
        return Job(child_id, parent.program, mutate=True, niche=niche_bests(state.front))

    def forget(self, child_id: int) -> None:
        """A job that will never be told (lost, or cancelled at a stop)."""
        self._parents.pop(child_id, None)

    def forget_all(self) -> None:
        self._parents.clear()

    def tell(self, result: EvalResult) -> list[Event]:
        """File one result (in the order results are handed over); returns what happened."""
        state, rules = self.state, self.rules
        parent = self._parents.pop(result.child_id, None)
        # a result scored on a search set that has since grown (hard points) is re-scored: it is cheap
        stale = result.search_digest != self.search_set.digest
        child_score = self._score(result.program, self.search_set) if stale else result.score
        cost = rules.cost_model.cost(result.program)
        ind = Individual(result.child_id, result.program, child_score, cost, parent, result.mutation)
        n, events, made = state.n_evals + 1, [], {"parent": parent, "mutation": ind.mutation}
        new = {"n_evals": n, "population": state.population.add(ind)}
        if rules.eval_every and n % rules.eval_every == 0:
            timing = result.timing()
            events.append(Eval(n, **made, **summary_of(ind), fit_evals=result.fit_evals, **timing))
        if rules.objective.better(ind, state.best):
            new["best"] = ind
            events.append(Improve(n, **made, **summary_of(ind), program=program_to_dict(ind.program)))
        admitted = rules.gate.admit(state.front, ind, state.finals)
        if admitted is not None:
            new["front"], select = admitted
            summary = {**summary_of(ind), "select_err": select.max_err}
            front = new["front"].summary()
            events.append(Front(n, **summary, program=program_to_dict(ind.program), front=front))
        events.extend(self._track_stagnation(ind, new))
        self.state = replace(state, **new)
        return events

    def _track_stagnation(self, ind: Individual, new: dict) -> list[Event]:
        """Adds to ``new`` (the changes ``tell`` makes) the epoch's progress or a restart."""
        state, policy, n = self.state, self.rules.restart, new["n_evals"]
        if policy.progressed(ind, state.epoch_best):
            new.update(epoch_best=ind, epoch_mark=n)
            return []
        if not policy.due(n, state.epoch_mark, seeding=bool(state.pending_seeds)):
            return []
        best = None if state.epoch_best is None else summary_of(state.epoch_best)
        event = Restart(n, epoch=state.epoch + 1, stagnant_for=n - state.epoch_mark, epoch_best=best)
        new.update(epoch=state.epoch + 1, epoch_best=None, epoch_mark=n)
        new.update(population=Population(state.population.capacity), pending_seeds=self.rules.restart_seeds)
        return [event]

    # ------------------------------------------------------------------ results of the loop's sweeps
    def due_signoffs(self) -> list[str]:
        """Front programs to sign off now (derived from the state, so a resumed run redoes any that
        an interrupt cut short)."""
        return self.rules.certifier.due_now(self.state.front, self.state.certified_cost)

    def entry(self, program_hash: str):
        return self.state.front.entry(program_hash)

    def record_final(
        self, program_hash: str, final: Score, during_search: bool, reference_deviation=None, seconds=None
    ) -> list[Event]:
        """A front program's final-set score: remembered, written into the front, maybe certified."""
        state, entry = self.state, self.entry(program_hash)
        if entry is None:
            return []
        certified = self.rules.certifier.certified(final)
        cost = min(state.certified_cost, entry.cost) if certified else state.certified_cost
        front, finals = state.front.with_final(program_hash, final), {**state.finals, program_hash: final}
        self.state = replace(state, front=front, finals=finals, certified_cost=cost)
        how = dict(during_search=during_search, reference_deviation=reference_deviation, signoff_s=seconds)
        summary = {**summary_of(entry.individual), "select_err": entry.select.max_err}
        return [Signoff(state.n_evals, **summary, final=final.to_dict(), certified=certified, **how)]

    def use_search(self, search_set: Dataset, added: list[float]) -> None:
        """Switch to a grown search set (hard points): the population and the best are re-scored."""
        state = self.state
        self.search_set = search_set
        members = [replace(ind, score=self._score(ind.program, search_set)) for ind in state.population]
        candidates = list(members)
        if state.best is not None:
            candidates.append(replace(state.best, score=self._score(state.best.program, search_set)))
        population = Population(state.population.capacity, members)
        best = self.rules.objective.best(candidates)
        self.state = replace(
            state, hard_points=(*state.hard_points, *added), population=population, best=best
        )
