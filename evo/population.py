"""Regularized evolution's state: individuals, the aging population, tournaments and fitness keys."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.objective import fitness_key  # noqa: F401 (re-exported: the objective owns "better")
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

    def tournament(self, size: int, rng: np.random.Generator, target_error: float | None) -> Individual:
        """The best of ``size`` members drawn without replacement (ties: first drawn)."""
        if not self._members:
            raise ValueError("tournament on an empty population")
        size = min(size, len(self._members))
        picks = rng.choice(len(self._members), size=size, replace=False)
        contenders = [self._members[int(i)] for i in picks]
        return min(contenders, key=lambda ind: fitness_key(ind, target_error))

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Individual]:
        return iter(self._members)

    @property
    def full(self) -> bool:
        return len(self._members) == self.capacity
