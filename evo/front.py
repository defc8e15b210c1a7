"""The Pareto archive: the best (select-set) error at each cost, non-dominated, as an immutable value.

A child enters in two steps. ``worth_checking`` is the cheap gate on search-set errors (it must beat
every entry that costs no more). Only then is it re-scored on the select set, and ``updated`` admits
it if its select error beats every entry that costs no more, dropping entries it dominates. This is
the overfitting guard: the front is ranked by points the search never optimised against. Entries
signed off on the final set are compared by their final error, the most trustworthy figure.

Near ties wait for the sweep: select errors run a few percent optimistic against every float (the
fit and the lattice refinement chase the sampled tail), so a cheaper entry known only from samples
keeps out a costlier one only if it is clearly better (``NEAR_TIE``). Otherwise both stay until
their final scores decide (measured: exp2 on [-1/2, 1/2], a 6-op entry at 0.742 on the select set
is 0.791 on every float and had evicted a 7-op entry at 0.771 that is 0.772).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from evo.objective import Objective
from evo.population import Individual
from targets.scoring import Score


@dataclass(frozen=True, slots=True)
class FrontEntry:
    """An individual on the front, with its select-set score and, after sign-off, its final score."""

    individual: Individual
    select: Score
    final: Score | None = None

    @property
    def cost(self) -> float:
        return self.individual.cost

    @property
    def error(self) -> float:
        """The best available estimate: final if signed off, else select."""
        return (self.final or self.select).max_err

    @property
    def gate_error(self) -> float:
        """What a newcomer's search error must beat: final if signed off, else the search error."""
        return self.final.max_err if self.final is not None else self.individual.score.max_err

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.individual.to_dict(),
            "select": self.select.to_dict(),
            "final": None if self.final is None else self.final.to_dict(),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> FrontEntry:
        return FrontEntry(
            Individual.from_dict(data),
            Score.from_dict(data["select"]),
            None if data.get("final") is None else Score.from_dict(data["final"]),
        )


NEAR_TIE = 0.95  # a cheaper unverified entry must be at least 5% better to keep a costlier one out


def _covers(a: FrontEntry, error: float, cost: float) -> bool:
    """a (no costlier) is at least as good as a program of this error and cost; a strictly cheaper
    entry known only from samples must be clearly better (see ``NEAR_TIE``)."""
    if a.final is None and a.cost < cost:
        return a.error <= NEAR_TIE * error
    return a.error <= error


def _dominates(a: FrontEntry, b: FrontEntry) -> bool:
    """a is no costlier and no worse than b (strictly better in one), and may evict it: an entry
    known only from samples cannot evict one verified on the final set."""
    if b.final is not None and a.final is None:
        return False
    no_worse = a.cost <= b.cost and _covers(a, b.error, b.cost)
    return no_worse and (a.cost < b.cost or a.error < b.error)


def _non_dominated(entries: list[FrontEntry]) -> list[FrontEntry]:
    kept = [e for e in entries if not any(_dominates(other, e) for other in entries if other is not e)]
    return sorted(kept, key=lambda e: (e.cost, e.error))


@dataclass(frozen=True, slots=True)
class ParetoFront:
    """Entries sorted by cost; non-dominated in (cost, error) except that verified entries stay
    until another verified entry dominates them (see ``updated``)."""

    entries: tuple[FrontEntry, ...] = ()

    def worth_checking(self, individual: Individual) -> bool:
        """True if the individual's search error beats every entry costing no more (and is finite).

        An entry already signed off is judged by its final error: a program that looked good on the
        samples but failed the sweep must not block a better one.
        """
        error, cost = individual.score.max_err, individual.cost
        if not error < float("inf"):
            return False
        return all(
            error < (e.gate_error / NEAR_TIE if e.final is None and e.cost < cost else e.gate_error)
            for e in self.entries
            if e.cost <= cost
        )

    def updated(
        self, individual: Individual, select: Score, final: Score | None = None
    ) -> tuple[ParetoFront, bool]:
        """The front with ``individual`` admitted if it is non-dominated (by its select error, or its
        final error when that is already known)."""
        error = (final or select).max_err
        if not error < float("inf"):
            return self, False
        if any(_covers(e, error, individual.cost) for e in self.entries if e.cost <= individual.cost):
            return self, False
        return ParetoFront(
            tuple(_non_dominated([*self.entries, FrontEntry(individual, select, final)]))
        ), True

    def with_final(self, program_hash: str, final: Score) -> ParetoFront:
        """The front with one entry's final score recorded, then re-pruned by the best estimates."""
        entries = [
            replace(e, final=final) if e.individual.program.canonical_hash() == program_hash else e
            for e in self.entries
        ]
        return ParetoFront(tuple(_non_dominated(entries)))

    def entry(self, program_hash: str) -> FrontEntry | None:
        """The entry of the program with this canonical hash, if it is on the front."""
        return next((e for e in self.entries if e.individual.program.canonical_hash() == program_hash), None)

    def best(self, target_error: float | None = None) -> FrontEntry | None:
        """The best entry by the objective with ``target_error`` (see ``Objective.best_entry``)."""
        return Objective(target_error).best_entry(self.entries)

    def summary(self) -> list[list]:
        """[cost, select error, hash] per entry (as front events list it)."""
        return [[e.cost, e.select.max_err, e.individual.program.canonical_hash()] for e in self.entries]

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries]

    @staticmethod
    def from_list(items: list[dict[str, Any]]) -> ParetoFront:
        return ParetoFront(tuple(FrontEntry.from_dict(d) for d in items))

    def __len__(self) -> int:
        return len(self.entries)
