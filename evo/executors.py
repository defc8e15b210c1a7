"""Where evaluations run: the executor seam (submit a job, take the next finished result).

The engine only ever talks to an executor through ``submit`` and ``next_result``; results may come
back in any order. Workers are built from an ``EvaluatorSpec``, a frozen, picklable value (never
the config). ``SerialExecutor`` evaluates in the calling process, in submission order (the
deterministic default). The Ray executor lives in ``evo.ray_executor`` and is imported only when
asked for.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from evo.evaluate import EvalResult, Evaluator, Job, Lost
from evo.fit import FitSettings
from evo.mutate import SearchSpace
from targets.dataset import Dataset


@dataclass(frozen=True, slots=True)
class EvaluatorSpec:
    """Everything a worker needs besides the search set: how to mutate, fit and cache."""

    fit: FitSettings
    fit_enabled: bool
    space: SearchSpace
    seed: int
    cache_size: int

    def build(self, search: Dataset, worker: int = 0) -> Evaluator:
        return Evaluator(search, self.fit, self.fit_enabled, self.space, self.seed, self.cache_size, worker)


Notice = tuple[type, dict[str, Any]]  # an event kind and its fields (the engine adds n_evals)


class Executor(Protocol):
    """Anything that can evaluate jobs: ``capacity`` jobs may be in flight at once."""

    capacity: int

    def submit(self, job: Job) -> None: ...

    def next_result(self) -> EvalResult | Lost: ...

    def close(self) -> None: ...

    def describe(self) -> dict: ...

    def update_search(self, search: Dataset) -> None:
        """Score later jobs on ``search`` (the search set grew: hard points were mined)."""
        ...

    def cancel_all(self) -> None:
        """Forget every job in flight (their results will never be asked for)."""
        ...

    def take_notices(self) -> list[Notice]:
        """What happened to the workers since the last call (lost workers, dropped jobs)."""
        ...


class SerialExecutor:
    """Evaluates each job in this process when its result is asked for."""

    def __init__(self, spec: EvaluatorSpec, search: Dataset) -> None:
        self.evaluator = spec.build(search)
        self.capacity = 1
        self._queue: deque[Job] = deque()

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def next_result(self) -> EvalResult:
        return self.evaluator.run(self._queue.popleft())

    def close(self) -> None:
        self._queue.clear()

    def describe(self) -> dict:
        return {"backend": "serial", "workers": 1}

    def update_search(self, search: Dataset) -> None:
        self.evaluator = self.evaluator.with_search(search)

    def cancel_all(self) -> None:
        self._queue.clear()

    def take_notices(self) -> list[Notice]:
        return []
