"""The objective: the one definition of "better" and "best" (fitness key, meaningful progress,
best of a front), used by the search, the reports and the exports alike."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

PROGRESS = 0.99  # "meaningfully better" means at least 1% lower error


class _Scored(Protocol):
    cost: float
    score: Any


def fitness_key(individual: _Scored, target_error: float | None) -> tuple:
    """Sort key, lower is better.

    Without a target: lowest max error, then lowest cost, then lowest mean error.
    With a target error E: programs within E first, ranked by cost (then error); the others by
    error. This is "reach the accuracy, then be cheap".
    """
    error = individual.score.max_err
    if math.isnan(error):
        error = math.inf
    mean = individual.score.mean_err
    if math.isnan(mean):  # a NaN in a key makes min() depend on the order it sees members in
        mean = math.inf
    if target_error is None:
        return (error, individual.cost, mean)
    if error <= target_error:
        return (0, individual.cost, error, mean)
    return (1, error, individual.cost, mean)


def entry_key(cost: float, error: float, target_error: float | None) -> tuple:
    """Rank of a front entry (or any (cost, error) pair): with a target, the cheapest within it
    first; otherwise (and for the entries outside the target) the lowest error, then cheaper."""
    error = math.inf if math.isnan(error) else error
    if target_error is not None and error <= target_error:
        return (0, cost, error)
    return (1, error, cost)


@dataclass(frozen=True, slots=True)
class Objective:
    """Minimise error, or with ``target_error`` minimise cost among programs within it."""

    target_error: float | None = None

    def key(self, individual: _Scored) -> tuple:
        return fitness_key(individual, self.target_error)

    def better(self, a: _Scored, b: _Scored | None) -> bool:
        """a is strictly better than b (anything beats nothing)."""
        return b is None or self.key(a) < self.key(b)

    def best(self, individuals: Iterable[_Scored]) -> Any:
        """The best individual (first among equals), or None."""
        return min(individuals, key=self.key, default=None)

    def meaningfully_better(self, a: _Scored, reference: _Scored | None) -> bool:
        """Better by the fitness order, with errors compared at a 1% resolution: crossing into the
        target, or becoming cheaper within it, is progress; otherwise the error must drop by 1%."""
        if reference is None:
            return True
        error_a, error_b = _finite(a.score.max_err), _finite(reference.score.max_err)
        target = self.target_error
        if target is not None:
            within_a, within_b = error_a <= target, error_b <= target
            if within_a != within_b:
                return within_a
            if within_a and a.cost != reference.cost:
                return a.cost < reference.cost
        return error_a < PROGRESS * error_b

    def best_entry(self, entries: Iterable[Any]) -> Any:
        """The best front entry by its best available error (final if signed off, else select):
        with a target, the cheapest entry within it if any; otherwise the lowest error (ties: cheaper)."""
        return min(entries, key=lambda e: entry_key(e.cost, e.error, self.target_error), default=None)


def _finite(error: float) -> float:
    return math.inf if math.isnan(error) else error
