"""The search state: everything a checkpoint holds to continue a run exactly (JSON, never pickle)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evo.front import ParetoFront
from evo.population import Individual, Population
from evo.rng_state import RngState
from primitives.floatbits import format_hex, get_format, parse_hex
from primitives.jsonform import from_dict as program_from_dict
from primitives.jsonform import to_dict as program_to_dict
from primitives.program import Program
from targets.scoring import Score

CHECKPOINT_SCHEMA = "evo.checkpoint/1"


def driver_rng(seed: int) -> RngState:
    """The start of the driver's RNG (tournaments); saved in checkpoints."""
    return RngState.of(np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,)))))


@dataclass(frozen=True)
class SearchState:
    """Everything a checkpoint must hold to continue the search exactly, as one frozen value: a
    search moves on by making a new state (``dataclasses.replace``), never by changing one.
    ``finals`` is a dict for lookups, but is never changed either (a new dict replaces it)."""

    population: Population
    front: ParetoFront
    rng: RngState
    next_id: int = 0
    n_evals: int = 0
    best: Individual | None = None
    pending_seeds: tuple[Program, ...] = ()
    certified_cost: float = math.inf
    hard_points: tuple[float, ...] = ()
    epoch: int = 0
    epoch_best: Individual | None = None
    epoch_mark: int = 0  # n_evals when the epoch best last improved by at least 1%
    finals: dict[str, Score] = field(default_factory=dict)  # final-set scores by program hash

    def __post_init__(self) -> None:
        for name in ("pending_seeds", "hard_points"):  # lists given by callers become tuples
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def population_errors(self) -> list[float]:
        return [ind.score.max_err for ind in self.population]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_SCHEMA,
            "n_evals": self.n_evals,
            "next_id": self.next_id,
            "rng": self.rng.to_dict(),
            "population": [ind.to_dict() for ind in self.population],
            "front": self.front.to_list(),
            "best": None if self.best is None else self.best.to_dict(),
            "pending_seeds": [program_to_dict(p) for p in self.pending_seeds],
            "certified_cost": self.certified_cost if math.isfinite(self.certified_cost) else "inf",
            "hard_points": [format_hex(x) for x in self.hard_points],
            "epoch": self.epoch,
            "epoch_best": None if self.epoch_best is None else self.epoch_best.to_dict(),
            "epoch_mark": self.epoch_mark,
            "finals": {h: score.to_dict() for h, score in self.finals.items()},
        }

    @staticmethod
    def from_dict(data: dict[str, Any], capacity: int) -> SearchState:
        """Rebuild the state from a checkpoint, refusing (ValueError, one line) any that breaks an
        invariant: format version, counters, the RNG state, unique ids below ``next_id``, and
        programs that match their recorded hashes."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        if data.get("format") != CHECKPOINT_SCHEMA:
            raise ValueError(
                f"unknown format {str(data.get('format'))[:40]!r} (expected {CHECKPOINT_SCHEMA!r})"
            )
        try:
            state = SearchState._build(data, capacity)
        except (
            KeyError,
            TypeError,
            ValueError,
            OverflowError,
            AttributeError,
            IndexError,
            RecursionError,
        ) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError((f"missing {text}" if isinstance(exc, KeyError) else text)[:200]) from None
        state.check()
        return state

    @staticmethod
    def _build(data: dict[str, Any], capacity: int) -> SearchState:
        for key in ("n_evals", "next_id", "epoch", "epoch_mark"):
            if not _is_count(data.get(key, 0)):
                raise ValueError(f"{key!r} is not a non-negative integer")
        rng = RngState.from_dict(_checked_rng_state(data["rng"]))
        population = data["population"]
        if not isinstance(population, list) or len(population) > capacity:
            raise ValueError(f"the population is not a list of at most {capacity} individuals")
        certified = data.get("certified_cost", math.inf)
        if certified not in ("inf", None) and (
            not isinstance(certified, int | float) or isinstance(certified, bool)
        ):
            raise ValueError("'certified_cost' is not a number")
        finals = data.get("finals", {})
        if not isinstance(finals, dict):
            raise ValueError("'finals' is not an object")
        return SearchState(
            population=Population(capacity, (_individual(d) for d in population)),
            front=ParetoFront.from_list(_checked_front(data["front"])),
            rng=rng,
            next_id=int(data["next_id"]),
            n_evals=int(data["n_evals"]),
            best=None if data.get("best") is None else _individual(data["best"]),
            pending_seeds=tuple(program_from_dict(p) for p in data.get("pending_seeds", [])),
            certified_cost=math.inf if certified in ("inf", None) else float(certified),
            hard_points=tuple(parse_hex(t, get_format("float64")) for t in data.get("hard_points", [])),
            epoch=int(data.get("epoch", 0)),
            epoch_best=None if data.get("epoch_best") is None else _individual(data["epoch_best"]),
            epoch_mark=int(data.get("epoch_mark", 0)),
            finals={str(h): Score.from_dict(d) for h, d in finals.items()},
        )

    def check(self) -> None:
        """The invariants between counters and ids (ValueError naming the first one broken)."""
        if self.next_id < self.n_evals:
            raise ValueError(
                f"'next_id' {self.next_id} is below 'n_evals' {self.n_evals} (every evaluation takes an id)"
            )
        if self.epoch_mark > self.n_evals:
            raise ValueError(f"'epoch_mark' {self.epoch_mark} is beyond 'n_evals' {self.n_evals}")
        ids = [ind.id for ind in self.population]
        if len(set(ids)) != len(ids):
            raise ValueError("the population repeats an id")
        front_ids = [e.individual.id for e in self.front.entries]
        if len(set(front_ids)) != len(front_ids):
            raise ValueError("the front repeats an id")
        others = [x.id for x in (self.best, self.epoch_best) if x is not None]
        highest = max([*ids, *front_ids, *others], default=-1)
        if highest >= self.next_id:
            raise ValueError(
                f"'next_id' {self.next_id} is not above every id in use ({highest}): new ids would repeat"
            )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _checked_rng_state(state: Any) -> dict[str, Any]:
    """A numpy PCG64 ``bit_generator.state`` with every field in range (numpy itself accepts some
    bad values and fails later, or fails with an obscure error)."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError("'rng' is not a PCG64 state")
    inner = state.get("state")
    if not isinstance(inner, dict) or not all(
        _is_count(inner.get(k)) and inner[k] < 2**128 for k in ("state", "inc")
    ):
        raise ValueError("'rng' state/inc are not 128-bit unsigned integers")
    if inner["inc"] % 2 != 1:
        raise ValueError("'rng' inc is not odd")
    if state.get("has_uint32") not in (0, 1) or not (
        _is_count(state.get("uinteger")) and state["uinteger"] < 2**32
    ):
        raise ValueError("'rng' has_uint32/uinteger are out of range")
    return state


def _checked_hash(data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not an object")
    if "hash" in data and program_from_dict(data["program"]).canonical_hash() != data["hash"]:
        raise ValueError(f"{where}: the program does not match its hash {str(data['hash'])[:12]}")
    return data


def _individual(data: Any) -> Individual:
    _checked_hash(data, f"individual {data.get('id') if isinstance(data, dict) else '?'}")
    if not _is_count(data.get("id")):
        raise ValueError("an individual's id is not a non-negative integer")
    return Individual.from_dict(data)


def _checked_front(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise ValueError("'front' is not a list")
    for index, item in enumerate(items):
        _checked_hash(item, f"front entry {index}")
        if not _is_count(item.get("id")):
            raise ValueError(f"front entry {index}: id is not a non-negative integer")
    return items
