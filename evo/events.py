"""The run's event kinds: one frozen dataclass per kind, each field marked deterministic or not.

``NONDETERMINISTIC_FIELDS`` is derived from these classes (plus the envelope's ``t``): two serial
runs with one seed write identical events once those fields are removed (runs/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


def timing(default: Any = None) -> Any:
    """A field that depends on timing, caching or placement (not part of the determinism contract)."""
    return field(default=default, metadata={"deterministic": False})


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event kind; ``record()`` gives the fields written to events.jsonl."""

    kind: ClassVar[str] = ""

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Start(Event):
    kind: ClassVar[str] = "start"
    seed: int
    target: str
    expr: str | None
    domain: str
    mode: str
    search: str
    select: str
    backend: str
    workers: int


@dataclass(frozen=True, slots=True)
class Resume(Event):
    kind: ClassVar[str] = "resume"
    n_evals: int
    max_evals: int | None
    max_seconds: float | None
    backend: str
    workers: int


@dataclass(frozen=True, slots=True)
class Improve(Event):
    """A new best on the search set (by the run's objective)."""

    kind: ClassVar[str] = "improve"
    n_evals: int
    id: int
    parent: int | None
    mutation: str
    hash: str
    cost: float
    ops: int
    max_err: float
    mean_err: float
    program: dict


@dataclass(frozen=True, slots=True)
class Front(Event):
    """A child entered the front; ``front`` lists it whole as [cost, select error, hash]."""

    kind: ClassVar[str] = "front"
    n_evals: int
    id: int
    hash: str
    cost: float
    ops: int
    max_err: float
    mean_err: float
    select_err: float
    program: dict
    front: list


@dataclass(frozen=True, slots=True)
class Signoff(Event):
    """A front program scored on the final set (exhaustive where feasible)."""

    kind: ClassVar[str] = "signoff"
    n_evals: int
    id: int
    hash: str
    cost: float
    ops: int
    max_err: float
    mean_err: float
    select_err: float
    final: dict
    certified: bool
    during_search: bool
    reference_deviation: float | None = None
    signoff_s: float | None = timing()


@dataclass(frozen=True, slots=True)
class Harden(Event):
    """Hard-point mining added the best program's worst points to the search set."""

    kind: ClassVar[str] = "harden"
    n_evals: int
    added: int
    hard_points: int
    source: str
    worst_err: float | None
    search: str
    best_err: float | None


@dataclass(frozen=True, slots=True)
class Restart(Event):
    kind: ClassVar[str] = "restart"
    n_evals: int
    epoch: int
    stagnant_for: int
    epoch_best: dict | None


@dataclass(frozen=True, slots=True)
class Progress(Event):
    kind: ClassVar[str] = "progress"
    n_evals: int
    best_err: float | None
    best_cost: float | None
    front_size: int
    population_median_err: float | None
    population_finite: int
    front: list
    evals_per_s: float | None = timing()
    cache_hits: int | None = timing()
    eval_ms: float | None = timing()
    driver_ms: float | None = timing()


@dataclass(frozen=True, slots=True)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    n_evals: int
    id: int
    parent: int | None
    mutation: str
    hash: str
    cost: float
    ops: int
    max_err: float
    mean_err: float
    fit_evals: int
    eval_ms: float | None = timing()
    cached: bool | None = timing()
    worker: int | None = timing()
    escalate_ms: float | None = timing()


@dataclass(frozen=True, slots=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    n_evals: int


@dataclass(frozen=True, slots=True)
class WorkerLost(Event):
    """A worker died; its jobs were resubmitted once to a replacement."""

    kind: ClassVar[str] = "worker_lost"
    n_evals: int
    worker: int | None = timing()
    resubmitted: list | None = timing()


@dataclass(frozen=True, slots=True)
class JobDropped(Event):
    """A job failed twice; its child id stays unused."""

    kind: ClassVar[str] = "job_dropped"
    n_evals: int
    child_id: int | None = timing()


@dataclass(frozen=True, slots=True)
class Migration(Event):
    """Islands sent their best programs to others: ``moves`` lists [from, to, [hashes]]."""

    kind: ClassVar[str] = "migration"
    n_evals: int
    round: int
    moves: list


@dataclass(frozen=True, slots=True)
class IslandRestored(Event):
    """An island's worker died; the island was rebuilt from its last snapshot and its batch rerun."""

    kind: ClassVar[str] = "island_restored"
    n_evals: int
    island: int | None = timing()
    island_evals: int | None = timing()


@dataclass(frozen=True, slots=True)
class Polish(Event):
    """The end-of-run polish refitted one program (``hash``) into ``polished`` (the same hash when
    no better constants were found); ``admitted``: the polished program entered the front."""

    kind: ClassVar[str] = "polish"
    n_evals: int
    id: int
    hash: str
    polished: str
    cost: float
    ops: int
    search_before: float
    search_after: float
    select_before: float
    select_after: float
    admitted: bool
    polish_s: float | None = timing()


@dataclass(frozen=True, slots=True)
class End(Event):
    """Last line of a run segment."""

    kind: ClassVar[str] = "end"
    reason: str
    n_evals: int
    best: dict | None
    front: list
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Export(Event):
    """Written by ``evo export`` (after the run)."""

    kind: ClassVar[str] = "export"
    lang: str
    file: str
    hash: str
    verified: list


def summary_of(individual: Any) -> dict[str, Any]:
    """The fields every event about one program carries (an ``Individual``)."""
    program, score = individual.program, individual.score
    return {
        "id": individual.id,
        "hash": program.canonical_hash(),
        "cost": individual.cost,
        "ops": program.op_count(),
        "max_err": score.max_err,
        "mean_err": score.mean_err,
    }


KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        Start,
        Resume,
        Improve,
        Front,
        Signoff,
        Harden,
        Restart,
        Progress,
        Eval,
        Checkpoint,
        WorkerLost,
        JobDropped,
        Migration,
        IslandRestored,
        Polish,
        End,
        Export,
    )
}
ENVELOPE_NONDETERMINISTIC = frozenset({"t"})  # written by the run writer around every event
NONDETERMINISTIC_FIELDS = ENVELOPE_NONDETERMINISTIC | frozenset(
    f.name for cls in KINDS.values() for f in fields(cls) if not f.metadata.get("deterministic", True)
)


def strip_nondeterministic(record: dict[str, Any]) -> dict[str, Any]:
    """An event without its timing/caching fields (what the determinism contract compares)."""
    return {k: v for k, v in record.items() if k not in NONDETERMINISTIC_FIELDS}
