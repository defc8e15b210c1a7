"""Regularized evolution's state: individuals, the aging population, tournaments and fitness keys."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


class Population:
    """A fixed-capacity FIFO of individuals: adding to a full population retires the oldest."""

    def __init__(self, capacity: int, members: Iterable[Individual] = ()) -> None:
        if capacity < 1:
            raise ValueError("population capacity must be positive")
        self.capacity = capacity
        self._members: deque[Individual] = deque(members, maxlen=capacity)

    def add(self, individual: Individual) -> Individual | None:
        """Append ``individual``; returns the retired (oldest) member, if any."""
        retired = self._members[0] if len(self._members) == self.capacity else None
        self._members.append(individual)
        return retired

    def tournament(
        self, size: int, rng: np.random.Generator, target_error: float | None, selection: str = "error"
    ) -> Individual:
        """A parent by ``selection`` (see ``evo.selection``; runs pass their config's, default ``niches``).

        ``error`` is the best of ``size`` members drawn without replacement (ties: first drawn);
        ``nsga`` draws the same members and ranks them by NSGA-II order over the population;
        ``niches`` draws a cost niche, then the best of ``size`` of its members.
        """
        if not self._members:
            raise ValueError("tournament on an empty population")
        if selection == "niches":
            return self._niche_tournament(size, rng, target_error)
        size = min(size, len(self._members))
        picks = [int(i) for i in rng.choice(len(self._members), size=size, replace=False)]
        if selection == "error":
            contenders = [self._members[i] for i in picks]
            return min(contenders, key=lambda ind: fitness_key(ind, target_error))
        if selection == "nsga":
            errors = [ind.score.max_err for ind in self._members]
            ranks, crowding = nsga_order(errors, [ind.cost for ind in self._members], target_error)

            def order(i: int) -> tuple:
                return (ranks[i], -crowding[i], fitness_key(self._members[i], target_error))

            return self._members[min(picks, key=order)]
        raise ValueError(f"unknown selection {selection!r} (known: {', '.join(SELECTIONS)})")

    def _niche_tournament(self, size: int, rng: np.random.Generator, target: float | None) -> Individual:
        errors = [ind.score.max_err for ind in self._members]
        costs = [ind.cost for ind in self._members]
        niches = drawable_niches(errors, costs, target)
        niche = niches[int(rng.integers(len(niches)))]
        members = [ind for ind in self._members if ind.cost == niche]
        picks = rng.choice(len(members), size=min(size, len(members)), replace=False)
        return min((members[int(i)] for i in picks), key=lambda ind: fitness_key(ind, target))

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Individual]:
        return iter(self._members)

    @property
    def full(self) -> bool:
        return len(self._members) == self.capacity
