"""A run directory read back as typed values (no pickles: everything is rebuilt from JSON): config,
metadata, front, what its events say and how the run ended. ``evo inspect``, ``evo export``,
program loading and the API all read runs through ``Run.load``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.config import RunConfig
from evo.errors import RunError
from evo.front import FrontEntry, ParetoFront
from evo.objective import Objective
from evo.runlog import CONFIG, RunReader
from evo.setting import Setting, setting_for
from primitives.jsonform import from_dict as program_from_dict
from primitives.program import Program
from targets.scoring import Score

#: what a record of the wrong shape raises while it is turned into typed values
SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def _num(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


@dataclass(frozen=True, slots=True)
class RunTarget:
    """What the run approximated, as meta.json records it (None where it records nothing)."""

    name: str | None
    expr: str | None
    domain: str | None
    anchor: str | None


@dataclass(frozen=True, slots=True)
class Improvement:
    """An ``improve`` event: a new best on the search set."""

    n_evals: int
    t: float
    max_err: float
    cost: float
    ops: int


@dataclass(frozen=True, slots=True)
class Signoff:
    """A ``signoff`` event: a front program scored on the final set."""

    hash: str
    cost: float
    final: float
    t: float
    n_evals: int
    certified: bool


@dataclass(frozen=True, slots=True)
class Polished:
    """A ``polish`` event: the end-of-run refit of one program (``evo.polish``)."""

    hash: str
    polished: str
    ops: int
    select_before: float
    select_after: float
    admitted: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class Rate:
    """A ``progress`` event's throughput."""

    n_evals: int
    t: float
    evals_per_s: float


@dataclass(frozen=True, slots=True)
class RunEnd:
    """The last ``end`` event: why the run (or its last segment) stopped."""

    reason: str
    message: str | None


@dataclass(frozen=True, slots=True)
class History:
    """What the events of a run say, read in one pass over events.jsonl."""

    n_evals: int
    seconds: float  # the last timed event (exports carry no time)
    resumes: int
    improvements: tuple[Improvement, ...]
    signoffs: tuple[Signoff, ...]
    progress: tuple[Rate, ...]
    end: RunEnd | None
    unfinished: bool  # interrupted or killed: resuming finishes it without a new budget
    polished: tuple[Polished, ...] = ()

    @property
    def rates(self) -> tuple[float, ...]:
        """The evaluation rates the progress events recorded (zeros left out)."""
        return tuple(r.evals_per_s for r in self.progress if r.evals_per_s)

    @staticmethod
    def from_events(events: Iterable[dict[str, Any]]) -> History:
        n_evals, seconds, resumes = 0, 0.0, 0
        improvements: list[Improvement] = []
        signoffs: list[Signoff] = []
        progress: list[Rate] = []
        polished: list[Polished] = []
        end, last = None, None
        for e in events:
            kind = e["kind"]
            if kind != "export":  # exports come after a run's end and change nothing
                last = e
            n_evals = max(n_evals, _count(e.get("n_evals", 0)))
            if e.get("t") is not None:
                seconds = max(seconds, _num(e["t"]))
            if kind == "resume":
                resumes += 1
            elif kind == "improve":
                improvements.append(
                    Improvement(
                        _count(e["n_evals"]),
                        _num(e["t"]),
                        _num(e["max_err"]),
                        _num(e["cost"]),
                        _count(e["ops"]),
                    )
                )
            elif kind == "signoff":
                certified = e.get("certified", False) is True
                signoffs.append(
                    Signoff(
                        _text(e["hash"]),
                        _num(e["cost"]),
                        _num(e["final"]["max_err"]),
                        _num(e["t"]),
                        _count(e["n_evals"]),
                        certified,
                    )
                )
            elif kind == "polish":
                polished.append(
                    Polished(
                        _text(e["hash"]),
                        _text(e["polished"]),
                        _count(e["ops"]),
                        _num(e["select_before"]),
                        _num(e["select_after"]),
                        e["admitted"] is True,
                        _num(e.get("polish_s")),
                    )
                )
            elif kind == "progress":
                progress.append(Rate(_count(e["n_evals"]), _num(e["t"]), _num(e["evals_per_s"])))
            elif kind == "end":
                message = e.get("message")
                end = RunEnd(_text(e["reason"]), None if message is None else str(message))
        return History(
            n_evals,
            seconds,
            resumes,
            tuple(improvements),
            tuple(signoffs),
            tuple(progress),
            end,
            _unfinished_after(last),
            tuple(polished),
        )


def _unfinished_after(last: dict[str, Any] | None) -> bool:
    return last is None or last.get("kind") != "end" or last.get("reason") == "interrupted"


def unfinished(events: Iterable[dict[str, Any]]) -> bool:
    """The run was interrupted or killed (its last event other than an export is not an end, or an
    interrupted one): resuming finishes it even without a new budget."""
    last = None
    for event in events:
        if event.get("kind") != "export":  # exports come after a run's end and change nothing
            last = event
    return _unfinished_after(last)


@dataclass(frozen=True, slots=True)
class FoundProgram:
    """A program of a run, found by ``best`` or a hash prefix: a front entry, or the last event
    naming a program that is no longer on the front."""

    program: Program
    entry: FrontEntry | None
    event: dict[str, Any] | None

    def record(self) -> dict[str, Any]:
        """As the run's files hold it (the front entry, or the event)."""
        return self.entry.to_dict() if self.entry is not None else dict(self.event or {})

    def measured(self) -> Score | None:
        """Its most trustworthy recorded score: final, else select, else search (None if none)."""
        if self.entry is not None:
            return self.entry.final or self.entry.select
        event = self.event or {}
        for key in ("final", "select", "score"):
            if event.get(key):
                try:
                    return Score.from_dict(event[key])
                except SHAPE_ERRORS:
                    return None
        return None


@dataclass(frozen=True, slots=True)
class Run:
    """One run directory (see runs/README.md), validated as it is read."""

    run_dir: Path
    config: RunConfig
    meta: dict[str, Any]
    front: ParetoFront
    history: History
    has_checkpoint: bool

    @staticmethod
    def load(run_dir: str | Path) -> Run:
        """Read and check every file of a run; a damaged one is a one-line RunError."""
        reader = RunReader(run_dir)
        try:
            config, meta = reader.config, reader.meta
            front = ParetoFront.from_list(reader.front())
        except RunError:
            raise
        except SHAPE_ERRORS as exc:
            raise RunError(f"the front of {run_dir} is corrupt: {exc}") from None
        try:
            history = History.from_events(reader.events())
        except RunError:
            raise
        except SHAPE_ERRORS as exc:
            raise RunError(
                f"{run_dir} is damaged: an event of the wrong shape ({type(exc).__name__}: {str(exc)[:80]})"
            ) from None
        has_checkpoint = reader.checkpoint() is not None  # validated even after the end: resume reads it
        return Run(Path(run_dir), config, meta, front, history, has_checkpoint)

    @property
    def objective(self) -> Objective:
        return Objective(self.config.target_ulp)

    @property
    def setting(self) -> Setting:
        return setting_for(self.config.mode)

    @property
    def target(self) -> RunTarget:
        info = self.meta.get("target") or {}
        return RunTarget(info.get("name"), info.get("expr"), info.get("domain"), info.get("anchor"))

    @property
    def finished(self) -> bool:
        """An end event was written (the run, or its last segment, stopped cleanly)."""
        return self.history.end is not None

    @property
    def status(self) -> str:
        """``finished``, ``stopped`` (killed after a checkpoint: resumable) or ``incomplete``."""
        return "finished" if self.finished else ("stopped" if self.has_checkpoint else "incomplete")

    @property
    def best(self) -> FrontEntry | None:
        """The best front entry by the run's objective (the one definition of "best")."""
        return self.objective.best_entry(self.front.entries)

    def find(self, reference: str = "best") -> FrontEntry:
        """A front entry by ``best``, a canonical hash or a unique hash prefix."""
        if reference == "best":
            if self.best is None:
                raise RunError(f"{self.run_dir} has an empty front")
            return self.best
        matches = [
            e for e in self.front.entries if e.individual.program.canonical_hash().startswith(reference)
        ]
        if len(matches) != 1:
            what = "no" if not matches else f"{len(matches)}"
            raise RunError(f"{what} front programs of {self.run_dir} match {reference!r}")
        return matches[0]

    def lookup(self, which: str) -> FoundProgram:
        """A program by ``best`` (of the front) or a unique hash prefix: front entries first, then
        any program an event names (the last such event)."""
        if which == "best":
            if self.best is None:
                raise RunError(f"{self.run_dir} has no front yet")
            return FoundProgram(self.best.individual.program, self.best, None)
        events: dict[str, dict[str, Any]] = {}
        for event in self.events():
            program_hash = event.get("hash")
            if "program" in event and isinstance(program_hash, str) and program_hash.startswith(which):
                events[program_hash] = event
        entries = {
            e.individual.program.canonical_hash(): e
            for e in self.front.entries
            if e.individual.program.canonical_hash().startswith(which)
        }
        hashes = events.keys() | entries.keys()
        if not hashes:
            raise RunError(f"no program with hash {which!r} in {self.run_dir}")
        if len(hashes) > 1:
            raise RunError(f"hash prefix {which!r} is ambiguous in {self.run_dir} ({len(hashes)} programs)")
        (program_hash,) = hashes
        if program_hash in entries:
            return FoundProgram(entries[program_hash].individual.program, entries[program_hash], None)
        return FoundProgram(self._program(events[program_hash]["program"]), None, events[program_hash])

    def _program(self, data: Any) -> Program:
        try:
            return program_from_dict(data)
        except (RecursionError, *SHAPE_ERRORS) as exc:
            raise RunError(f"{self.run_dir} is damaged: an event's program ({str(exc)[:80]})") from None

    def events(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        return RunReader(self.run_dir).events(kind)

    def end(self) -> RunEnd | None:
        """How the run (or its last segment) ended; None for a run still running or killed."""
        return self.history.end


@dataclass(frozen=True, slots=True)
class DamagedRun:
    """A run directory that could not be read, and why (one line)."""

    run_dir: Path
    reason: str


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG).exists()


def scan_runs(root: str | Path) -> list[Run | DamagedRun]:
    """Every run directory directly under ``root`` in name order, read, or marked damaged."""
    root = Path(root)
    if not root.is_dir():
        raise RunError(f"{str(root)!r} is not a directory")
    found: list[Run | DamagedRun] = []
    for path in sorted(p for p in root.iterdir() if is_run_dir(p)):
        try:
            found.append(Run.load(path))
        except RunError as exc:  # listed as damaged; the other runs are still read
            found.append(DamagedRun(path, str(exc)))
    return found


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory back (config, metadata, front and what its events say)."""
    return Run.load(run_dir)
