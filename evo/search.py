"""The search: regularized evolution as a pure ask/tell object (no file I/O, no clock).

``ask`` hands out the next job: a pending seed, or a tournament winner for a worker to mutate
(each child's mutation has its own RNG stream from the run seed and the child id). ``tell`` files
a result: the child joins the population and the oldest member retires; a new best, a front entry
(through the select gate) and a restart on stagnation come back as events. Sweeps of the final set
(sign-offs, hard-point mining) are the loop's work: the search says when they are due, and takes
their results with ``record_final`` and ``use_search``. All the state is one ``SearchState`` value
(``state.to_dict()`` is the checkpoint).
"""

from __future__ import annotations

from dataclasses import replace

from evo.evaluate import EvalResult, Job, niche_bests
from evo.events import Eval, Event, Front, Improve, Restart, Signoff, summary_of
from evo.policies import SearchRules
from evo.population import Individual, Population
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

    @property
    def in_flight(self) -> int:
        return len(self._parents)

    def can_ask(self) -> bool:
        """False while every seed is in flight (no population to run a tournament on yet)."""
        return bool(self.state.pending_seeds) or len(self.state.population) > 0

    def ask(self) -> Job:
        state = self.state
        child_id = state.next_id
        state.next_id += self.id_step
        if state.pending_seeds:
            self._parents[child_id] = None
            return Job(child_id, state.pending_seeds.pop(0), mutate=False)
        rules = self.rules
        parent = state.population.tournament(
            rules.tournament_size, state.rng, rules.objective.target_error, rules.selection
        )
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
        state.n_evals += 1
        state.population = state.population.add(ind)
        n, events, made = state.n_evals, [], {"parent": parent, "mutation": ind.mutation}
        if rules.eval_every and n % rules.eval_every == 0:
            timing = result.timing()
            events.append(Eval(n, **made, **summary_of(ind), fit_evals=result.fit_evals, **timing))
        if rules.objective.better(ind, state.best):
            state.best = ind
            events.append(Improve(n, **made, **summary_of(ind), program=program_to_dict(ind.program)))
        admitted = rules.gate.admit(state.front, ind, state.finals)
        if admitted is not None:
            state.front, select = admitted
            summary = {**summary_of(ind), "select_err": select.max_err}
            events.append(
                Front(n, **summary, program=program_to_dict(ind.program), front=state.front.summary())
            )
        events.extend(self._track_stagnation(ind))
        return events

    def _track_stagnation(self, ind: Individual) -> list[Event]:
        state, policy = self.state, self.rules.restart
        if policy.progressed(ind, state.epoch_best):
            state.epoch_best, state.epoch_mark = ind, state.n_evals
            return []
        if not policy.due(state.n_evals, state.epoch_mark, seeding=bool(state.pending_seeds)):
            return []
        best = None if state.epoch_best is None else summary_of(state.epoch_best)
        stagnant = state.n_evals - state.epoch_mark
        event = Restart(state.n_evals, epoch=state.epoch + 1, stagnant_for=stagnant, epoch_best=best)
        state.epoch, state.epoch_best, state.epoch_mark = state.epoch + 1, None, state.n_evals
        state.population = Population(state.population.capacity)
        state.pending_seeds = list(self.rules.restart_seeds)
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
        state.finals[program_hash] = final
        state.front = state.front.with_final(program_hash, final)
        certified = self.rules.certifier.certified(final)
        if certified:
            state.certified_cost = min(state.certified_cost, entry.cost)
        how = {
            "during_search": during_search,
            "reference_deviation": reference_deviation,
            "signoff_s": seconds,
        }
        summary = {**summary_of(entry.individual), "select_err": entry.select.max_err}
        return [Signoff(state.n_evals, **summary, final=final.to_dict(), certified=certified, **how)]

    def use_search(self, search_set: Dataset, added: list[float]) -> None:
        """Switch to a grown search set (hard points): the population and the best are re-scored."""
        state = self.state
        state.hard_points.extend(added)
        self.search_set = search_set
        members = [replace(ind, score=self._score(ind.program, search_set)) for ind in state.population]
        state.population = Population(state.population.capacity, members)
        candidates = list(members)
        if state.best is not None:
            candidates.append(replace(state.best, score=self._score(state.best.program, search_set)))
        state.best = self.rules.objective.best(candidates)
