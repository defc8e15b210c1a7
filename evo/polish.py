"""End-of-run polish: the thorough refit of ``evo fit`` for the best programs of the front's highest
op counts, each admitted to the front only where it beats it on the select set.

The per-child and escalated fits of a search stop short in the curved valleys of continued-fraction
forms (2^x on [0, 1] at 10 ops: 2e-14 to 7e-14 within a run, 4e-15 after ``evo fit``). Before the
run ends, the engine refits (``evo.fitcmd.refit``: long Levenberg-Marquardt phases, restarts,
CMA-ES, the valley search and walk) the ``programs`` best distinct structures of each of the
``counts`` highest op counts on the front: the front's own entry first, then the best members of
the population with that op count. They are taken one per op count at a time, highest op count
first, so a deadline cuts the least useful refits. A refit keeps its structure; the result replaces
the front's entry of that cost only if its select error is lower (the front's rule: it must beat
every entry costing no more), and an entry already signed off stays until the polished program's
own sign-off beats it on the final set. Everything but the deadline is a function of the state and
the seed: without ``max_seconds`` a run polishes deterministically. A polished program is never
refitted again (so a resumed end does not polish twice).

Real mode polishes by default (``end_polish_share`` 0.1: the search stops at 90% of
``max_seconds``, the polish starts no refit after it; one refit may run over, ~10-20 s at 10 ops);
float32 runs do not (their ordinal polish and lattice refinement already work on the rounded
constants).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from evo.events import Event, Front, Improve, Polish, summary_of
from evo.fitcmd import refit
from evo.population import Individual
from evo.reserve import fresh_id
from evo.search import Search
from primitives.jsonform import to_dict as program_to_dict
from primitives.program import Program
from targets.scoring import score

REAL_SHARE = 0.1  # of max_seconds, in real mode (float32: 0, off)
POLISHED = "polish"  # the ``mutation`` of a polished program


@dataclass(frozen=True, slots=True)
class PolishPlan:
    """What the end-of-run polish refits and until when."""

    share: float = 0.0  # of max_seconds kept for the polish (0: no polish)
    programs: int = 2  # distinct structures per op count
    counts: int = 4  # the front's highest op counts
    restarts: int = 12  # as ``evo fit``
    use_cma: bool = True
    seed: int = 0
    deadline: float | None = None  # run seconds after which no refit starts (None: no clock)

    @property
    def enabled(self) -> bool:
        return self.share > 0 and self.programs > 0 and self.counts > 0


def plan_for(config) -> PolishPlan:
    """The polish a ``RunConfig`` asks for (``end_polish_*``; the share defaults by mode)."""
    share = config.end_polish_share
    if share is None:
        share = REAL_SHARE if config.mode == "real" else 0.0
    return PolishPlan(
        share=share,
        programs=config.end_polish_programs,
        counts=config.end_polish_counts,
        seed=config.seed or 0,
        deadline=config.max_seconds,
    )


def search_seconds(max_seconds: float | None, plan: PolishPlan) -> float | None:
    """When the search stops: ``max_seconds`` less the polish's share."""
    if max_seconds is None or not plan.enabled:
        return max_seconds
    return max_seconds * (1.0 - plan.share)


def structure_key(program: Program) -> str:
    """The program's hash with every constant zeroed: programs that differ only in constants share it."""
    pruned = program.pruned()
    return pruned.with_constants([0] * len(pruned.constants())).canonical_hash()


def members_of(state) -> list[Individual]:
    """The population of a single search, or of every island (an island run's driver state)."""
    population = state.population
    return list(population() if callable(population) else population)


def candidates(front, members: list[Individual], plan: PolishPlan) -> list[Individual]:
    """What the polish refits, in order: per op count (the ``plan.counts`` highest on the front) up
    to ``plan.programs`` distinct structures, the front's entries (best select error first), then
    the population's best (by search error, then id); interleaved one per op count at a time,
    highest op count first."""
    counts = sorted({e.individual.program.op_count() for e in front.entries}, reverse=True)[: plan.counts]
    per_count: list[list[Individual]] = []
    for ops in counts:
        entries = sorted(
            (e for e in front.entries if e.individual.program.op_count() == ops),
            key=lambda e: (e.select.max_err, e.individual.id),
        )
        others = sorted(
            (m for m in members if m.program.op_count() == ops and m.score.max_err < float("inf")),
            key=lambda m: (m.score.max_err, m.id),
        )
        chosen, seen = [], set()
        for ind in [e.individual for e in entries] + others:
            key = structure_key(ind.program)
            if ind.mutation == POLISHED:  # already polished (a resumed end): not refitted again
                seen.add(key)
            elif key not in seen and len(chosen) < plan.programs:
                seen.add(key)
                chosen.append(ind)
        per_count.append(chosen)
    return [group[i] for i in range(plan.programs) for group in per_count if i < len(group)]


def polish_one(search: Search, ind: Individual, plan: PolishPlan) -> list[Event]:
    """Refit ``ind`` on the search set and admit the result to the front if its select error beats
    the unpolished program's and the front's (``ParetoFront.updated``); returns the events, the
    ``Polish`` event first (its ``polish_s`` left for the caller, who has the clock)."""
    state, rules = search.state, search.rules
    before_hash = ind.program.canonical_hash()
    entry = state.front.entry(before_hash)
    select_before = entry.select if entry is not None else rules.gate.select_score(ind.program)
    search_before = score(ind.program, search.search_set)
    fitted = refit(ind.program, search.search_set, plan.restarts, plan.use_cma, plan.seed)
    after_hash = fitted.canonical_hash()
    search_after, select_after, admitted = search_before, select_before, False
    events: list[Event] = []
    if after_hash != before_hash:
        search_after = score(fitted, search.search_set)
        select_after = rules.gate.select_score(fitted)
    if after_hash != before_hash and select_after.max_err < select_before.max_err:
        new: dict = {}
        polished = Individual(fresh_id(search, new), fitted, search_after, ind.cost, ind.id, POLISHED)
        front, admitted = state.front.updated(polished, select_after, state.finals.get(after_hash))
        if admitted:
            new["front"] = front
            summary = {**summary_of(polished), "select_err": select_after.max_err}
            events.append(
                Front(state.n_evals, **summary, program=program_to_dict(fitted), front=front.summary())
            )
            if rules.objective.better(polished, state.best):
                new["best"] = polished
                made = {"parent": ind.id, "mutation": POLISHED}
                events.append(
                    Improve(state.n_evals, **made, **summary_of(polished), program=program_to_dict(fitted))
                )
            search.state = replace(state, **new)
    events.insert(
        0,
        Polish(
            state.n_evals,
            id=ind.id,
            hash=before_hash,
            polished=after_hash,
            cost=ind.cost,
            ops=ind.program.op_count(),
            search_before=search_before.max_err,
            search_after=search_after.max_err,
            select_before=select_before.max_err,
            select_after=select_after.max_err,
            admitted=admitted,
        ),
    )
    return events
