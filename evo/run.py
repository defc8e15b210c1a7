"""A run directory read back as typed values (no pickles: everything is rebuilt from JSON):
config, metadata, front, best program, events and how the run ended."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.config import RunConfig
from evo.errors import RunError
from evo.front import FrontEntry, ParetoFront
from evo.objective import Objective
from evo.runlog import RunReader
from evo.setting import Setting, setting_for


@dataclass(frozen=True, slots=True)
class Run:
    """One run directory (see runs/README.md)."""

    run_dir: Path
    config: RunConfig
    meta: dict[str, Any]
    front: ParetoFront
    finished: bool

    @staticmethod
    def load(run_dir: str | Path) -> Run:
        reader = RunReader(run_dir)
        try:
            front = ParetoFront.from_list(reader.front())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"the front of {run_dir} is corrupt: {exc}") from None
        return Run(Path(run_dir), reader.config, reader.meta, front, reader.finished())

    @property
    def objective(self) -> Objective:
        return Objective(self.config.target_ulp)

    @property
    def setting(self) -> Setting:
        return setting_for(self.config.mode)

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

    def events(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        return RunReader(self.run_dir).events(kind)

    def end(self) -> dict[str, Any] | None:
        """The last end event (None for a run still running or killed)."""
        last = None
        for event in self.events("end"):
            last = event
        return last


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory back (front, config, metadata; events on demand)."""
    return Run.load(run_dir)
