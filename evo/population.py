"""Regularized evolution's state: individuals, the aging population, tournaments and fitness keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evo.objective import fitness_key  # noqa: F401 (re-exported: the objective owns "better")
from evo.selection import SELECTIONS, drawable_niches, nsga_order
from primitives.jsonform import from_dict as program_from_dict
from primitives.jsonform import to_dict as program_to_dict
from primitives.program import Program
from targets.scoring import Score


@dataclass(frozen=True, slots=True)
class Individual:
    """An evaluated program and where it came from.

    Attributes:
        id: child id (unique within a run, in order of creation).
        program: the program as evaluated (constants after fitting).
        score: its search-set score.
        cost: weighted op count under the run's cost weights.
        parent: parent id (None for seeds).
        mutation: how it was made ("seed", "insert", ...).
    """

    id: int
    program: Program
    score: Score
    cost: float
    parent: int | None
    mutation: str

    @property
    def error(self) -> float:
        return self.score.max_err

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent,
            "mutation": self.mutation,
            "cost": self.cost,
            "hash": self.program.canonical_hash(),
            "ops": self.program.op_count(),
            "score": self.score.to_dict(),
            "program": program_to_dict(self.program),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Individual:
        return Individual(
            int(data["id"]),
            program_from_dict(data["program"]),
            Score.from_dict(data["score"]),
            float(data["cost"]),
            None if data["parent"] is None else int(data["parent"]),
            str(data["mutation"]),
        )


@dataclass(frozen=True, slots=True)
class Population:
    """A fixed-capacity FIFO of individuals, as a value: adding to a full population retires the
    oldest, and every change returns a new population.

    Attributes:
        capacity: the most members it holds.
        members: oldest first (given more than ``capacity``, the newest are kept).
    """

    capacity: int
    members: tuple[Individual, ...] = ()

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("population capacity must be positive")
        members = tuple(self.members)
        object.__setattr__(self, "members", members[-self.capacity :])

    def add(self, individual: Individual) -> Population:
        """With ``individual`` appended (and the oldest retired when full): one tuple of at most
        ``capacity`` members is built, so adding is linear in the capacity, never worse."""
        kept = self.members[1:] if self.full else self.members
        return replace(self, members=(*kept, individual))

    @property
    def retiring(self) -> Individual | None:
        """The member the next ``add`` retires (the oldest, once the population is full)."""
        return self.members[0] if self.full else None

    def tournament(
        self, size: int, rng: np.random.Generator, target_error: float | None, selection: str = "error"
    ) -> Individual:
        """A parent by ``selection`` (see ``evo.selection``; runs pass their config's, default ``niches``).

        ``error`` is the best of ``size`` members drawn without replacement (ties: first drawn);
        ``nsga`` draws the same members and ranks them by NSGA-II order over the population;
        ``niches`` draws a cost niche, then the best of ``size`` of its members.
        """
        if not self.members:
            raise ValueError("tournament on an empty population")
        if selection == "niches":
            return self._niche_tournament(size, rng, target_error)
        size = min(size, len(self.members))
        picks = [int(i) for i in rng.choice(len(self.members), size=size, replace=False)]
        if selection == "error":
            contenders = [self.members[i] for i in picks]
            return min(contenders, key=lambda ind: fitness_key(ind, target_error))
        if selection == "nsga":
            errors = [ind.score.max_err for ind in self.members]
            ranks, crowding = nsga_order(errors, [ind.cost for ind in self.members], target_error)

            def order(i: int) -> tuple:
                return (ranks[i], -crowding[i], fitness_key(self.members[i], target_error))

            return self.members[min(picks, key=order)]
        raise ValueError(f"unknown selection {selection!r} (known: {', '.join(SELECTIONS)})")

    def _niche_tournament(self, size: int, rng: np.random.Generator, target: float | None) -> Individual:
        errors = [ind.score.max_err for ind in self.members]
        costs = [ind.cost for ind in self.members]
        niches = drawable_niches(errors, costs, target)
        niche = niches[int(rng.integers(len(niches)))]
        members = [ind for ind in self.members if ind.cost == niche]
        picks = rng.choice(len(members), size=min(size, len(members)), replace=False)
        return min((members[int(i)] for i in picks), key=lambda ind: fitness_key(ind, target))

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[Individual]:
        return iter(self.members)

    @property
    def full(self) -> bool:
        return len(self.members) == self.capacity
