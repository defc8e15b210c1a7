"""The search state: everything a checkpoint holds to continue a run exactly (JSON, never pickle)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evo.front import ParetoFront
from evo.population import Individual, Population
from primitives.floatbits import format_hex, get_format, parse_hex
from primitives.jsonform import from_dict as program_from_dict
from primitives.jsonform import to_dict as program_to_dict
from primitives.program import Program
from targets.scoring import Score

CHECKPOINT_SCHEMA = "evo.checkpoint/1"


def driver_rng(seed: int) -> np.random.Generator:
    """The driver's RNG (tournaments); saved in checkpoints."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))


@dataclass
class SearchState:
    """Everything a checkpoint must hold to continue the search exactly."""

    population: Population
    front: ParetoFront
    rng: np.random.Generator
    next_id: int = 0
    n_evals: int = 0
    best: Individual | None = None
    pending_seeds: list[Program] = field(default_factory=list)
    certified_cost: float = math.inf
    hard_points: list[float] = field(default_factory=list)
    epoch: int = 0
    epoch_best: Individual | None = None
    epoch_mark: int = 0  # n_evals when the epoch best last improved by at least 1%
    finals: dict[str, Score] = field(default_factory=dict)  # final-set scores by program hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_SCHEMA,
            "n_evals": self.n_evals,
            "next_id": self.next_id,
            "rng": self.rng.bit_generator.state,
            "population": [ind.to_dict() for ind in self.population],
            "front": self.front.to_list(),
            "best": None if self.best is None else self.best.to_dict(),
            "pending_seeds": [program_to_dict(p) for p in self.pending_seeds],
            "certified_cost": self.certified_cost,
            "hard_points": [format_hex(x) for x in self.hard_points],
            "epoch": self.epoch,
            "epoch_best": None if self.epoch_best is None else self.epoch_best.to_dict(),
            "epoch_mark": self.epoch_mark,
            "finals": {h: score.to_dict() for h, score in self.finals.items()},
        }

    @staticmethod
    def from_dict(data: dict[str, Any], capacity: int) -> SearchState:
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = data["rng"]
        certified = data.get("certified_cost", math.inf)
        return SearchState(
            population=Population(capacity, (Individual.from_dict(d) for d in data["population"])),
            front=ParetoFront.from_list(data["front"]),
            rng=rng,
            next_id=int(data["next_id"]),
            n_evals=int(data["n_evals"]),
            best=None if data.get("best") is None else Individual.from_dict(data["best"]),
            pending_seeds=[program_from_dict(p) for p in data.get("pending_seeds", [])],
            certified_cost=math.inf if certified in ("inf", None) else float(certified),
            hard_points=[parse_hex(t, get_format("float64")) for t in data.get("hard_points", [])],
            epoch=int(data.get("epoch", 0)),
            epoch_best=None if data.get("epoch_best") is None else Individual.from_dict(data["epoch_best"]),
            epoch_mark=int(data.get("epoch_mark", 0)),
            finals={h: Score.from_dict(d) for h, d in data.get("finals", {}).items()},
        )
