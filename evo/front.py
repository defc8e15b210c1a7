"""The Pareto archive: the best (select-set) error at each cost, non-dominated, as an immutable value.

A child enters in two steps. ``worth_checking`` is the cheap gate on search-set errors (it must beat
every entry that costs no more). Only then is it re-scored on the select set, and ``updated`` admits
it if its select error beats every entry that costs no more, dropping entries it dominates. This is
the overfitting guard: the front is ranked by points the search never optimised against.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

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


@dataclass(frozen=True, slots=True)
class ParetoFront:
    """Entries sorted by increasing cost and strictly decreasing select error."""

    entries: tuple[FrontEntry, ...] = ()

    def worth_checking(self, individual: Individual) -> bool:
        """True if the individual's search error beats every entry costing no more (and is finite)."""
        error = individual.score.max_err
        if not error < float("inf"):
            return False
        return all(error < e.individual.score.max_err for e in self.entries if e.cost <= individual.cost)

    def updated(self, individual: Individual, select: Score) -> tuple[ParetoFront, bool]:
        """The front with ``individual`` admitted if it is non-dominated on the select set."""
        error = select.max_err
        if not error < float("inf"):
            return self, False
        if any(e.select.max_err <= error for e in self.entries if e.cost <= individual.cost):
            return self, False
        kept = [e for e in self.entries if not (e.cost >= individual.cost and e.select.max_err >= error)]
        kept.append(FrontEntry(individual, select))
        kept.sort(key=lambda e: (e.cost, e.select.max_err))
        return ParetoFront(tuple(kept)), True

    def with_final(self, program_hash: str, final: Score) -> ParetoFront:
        return ParetoFront(
            tuple(replace(e, final=final) if e.individual.program.canonical_hash() == program_hash else e for e in self.entries)
        )

    def best(self, target_error: float | None = None) -> FrontEntry | None:
        """Lowest error (ties: cheaper); with a target, the cheapest entry within it if any."""
        if not self.entries:
            return None
        if target_error is not None:
            within = [e for e in self.entries if e.error <= target_error]
            if within:
                return min(within, key=lambda e: (e.cost, e.error))
        return min(self.entries, key=lambda e: (e.error, e.cost))

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries]

    @staticmethod
    def from_list(items: list[dict[str, Any]]) -> ParetoFront:
        return ParetoFront(tuple(FrontEntry.from_dict(d) for d in items))

    def __len__(self) -> int:
        return len(self.entries)
