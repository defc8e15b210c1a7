"""The search's policies, each a small frozen value: the select gate, the hard-point miner, the
restart on stagnation and the certifier. They decide; the search and the loop act."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evo.front import ParetoFront
from evo.objective import Objective
from evo.population import Individual
from primitives.cycles import CostModel
from primitives.program import Program
from targets.dataset import Dataset, Sweep
from targets.scoring import Score, worst_points


@dataclass(frozen=True, slots=True)
class SelectGate:
    """The overfitting guard: a child that beats the front on the search set is re-scored on the
    select set (points the search never optimises against) before it may enter the front."""

    select_score: Callable[[Program], Score]

    def admit(
        self, front: ParetoFront, ind: Individual, finals: dict[str, Score]
    ) -> tuple[ParetoFront, Score] | None:
        """The new front and the child's select score if it entered, else None."""
        if not front.worth_checking(ind):
            return None
        select = self.select_score(ind.program)
        known = finals.get(ind.program.canonical_hash())  # signed off before: no second sweep
        updated, changed = front.updated(ind, select, known)
        return (updated, select) if changed else None


@dataclass(frozen=True, slots=True)
class HardPointMiner:
    """Every ``every`` evaluations, the best program's worst points on a strided exhaustive sweep
    join the search set, so selection sees the tail a sample misses. A mined point is never a
    point of the search set already, nor of the select set (which must stay unseen by the search)."""

    every: int
    points: int
    below: float
    max_points: int

    def due(self, n_evals: int) -> bool:
        return bool(self.every) and n_evals % self.every == 0

    def eligible(self, best: Individual | None, n_hard: int) -> bool:
        return best is not None and n_hard < self.max_points and best.score.max_err <= self.below

    def mine(
        self, program: Program, data: Dataset | Sweep, search: Dataset, select: Dataset, n_hard: int
    ) -> tuple[list[float], float | None]:
        """Fresh hard points (worst first, at most the room left) and the worst error seen."""
        xs, errors = worst_points(program, data, self.points)
        return self.fresh(xs, search, select, n_hard), float(errors[0]) if len(errors) else None

    def fresh(self, xs: np.ndarray, search: Dataset, select: Dataset, n_hard: int) -> list[float]:
        xs = np.asarray(xs)
        keep = ~np.isin(xs, search.x) & ~np.isin(xs, select.x)
        return [float(x) for x in xs[keep]][: max(0, self.max_points - n_hard)]


@dataclass(frozen=True, slots=True)
class StagnationRestart:
    """Restart the population (keeping the front, the best and the hard points) when the best of
    the current epoch has not improved meaningfully for ``after`` evaluations: regularized evolution
    can commit early to a structure family that cannot reach the goal, and a fresh start from
    f(x) = x, now with a tail-aware search set, is cheaper than waiting. 0 disables it."""

    after: int
    objective: Objective

    def progressed(self, ind: Individual, epoch_best: Individual | None) -> bool:
        return self.objective.meaningfully_better(ind, epoch_best)

    def due(self, n_evals: int, epoch_mark: int, seeding: bool) -> bool:
        """Stagnant for long enough (never while the seeds of an epoch are still being evaluated)."""
        return bool(self.after) and n_evals - epoch_mark >= self.after and not seeding


@dataclass(frozen=True, slots=True)
class Certifier:
    """Which front programs are scored on the final set, and what counts as certified.

    During the search (with a target error), a front entry whose select error is within the target
    and that is cheaper than anything certified is signed off at once. At the end, ``mode`` says
    what is signed off: the whole front, the best entry, or nothing (``none`` also turns off the
    sign-offs during the search)."""

    target_error: float | None
    mode: str  # "front", "best" or "none"

    def during_search(self, select: Score, cost: float, certified_cost: float) -> bool:
        if self.mode == "none" or self.target_error is None:
            return False
        return select.max_err <= self.target_error and cost < certified_cost

    def due_now(self, front: ParetoFront, certified_cost: float) -> list[str]:
        """Hashes of the front to sign off now: unscored, within the target on the select set and
        cheaper than anything certified."""
        return [
            e.individual.program.canonical_hash()
            for e in front.entries
            if e.final is None and self.during_search(e.select, e.cost, certified_cost)
        ]

    def certified(self, final: Score) -> bool:
        return self.target_error is not None and final.max_err <= self.target_error

    def at_end(self, front: ParetoFront, objective: Objective) -> list[str]:
        """Hashes still to sign off at the end, cheapest first (entries signed off are skipped)."""
        if self.mode == "none":
            return []
        entries = list(front.entries)
        if self.mode == "best":
            best = objective.best_entry(entries)
            entries = [] if best is None else [best]
        return [e.individual.program.canonical_hash() for e in entries if e.final is None]

    def next_reserve(
        self,
        front: ParetoFront,
        reserve: tuple[tuple[Program, float], ...],
        finals: dict[str, Score],
        cost_of: Callable[[Program], float],
    ) -> Program | None:
        """At the end, after the front: the first runner-up of the reserve (exchange-refined seeds
        and classical fallbacks, each with an estimated final error that is a lower bound of its
        final error) that is not signed off yet and may beat every front entry costing no more.
        Signing it off, and admitting it if it is better, makes the front's best at each cost the
        best certified program, not the best on the select set (only with ``mode`` front). An
        estimate equal to the front's error cannot beat it (the front keeps the first of equals),
        so it costs no sweep."""
        if self.mode != "front":
            return None
        for program, estimate in reserve:
            if program.canonical_hash() in finals:
                continue
            cost = cost_of(program)
            errors = [e.error for e in front.entries if e.cost <= cost]
            if not errors or estimate < min(errors):
                return program
        return None

    @staticmethod
    def stops(certified_cost: float) -> bool:
        return certified_cost < math.inf


@dataclass(frozen=True, slots=True)
class SearchRules:
    """What a search does, independent of where it runs: its tournament, costs, objective and policies."""

    tournament_size: int
    cost_model: CostModel  # the run's cost of a program (ops, latency or throughput)
    objective: Objective
    gate: SelectGate
    miner: HardPointMiner
    restart: StagnationRestart
    certifier: Certifier
    restart_seeds: tuple[Program, ...]
    eval_every: int = 0  # report every eval_every-th evaluation as an event (0: none)
    # runner-ups signed off at the end (Certifier.next_reserve), computed when first asked for
    reserve: Callable[[], tuple[tuple[Program, float], ...]] = tuple
    selection: str = "error"  # tournament mode (evo.selection)
