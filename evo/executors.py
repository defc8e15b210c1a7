"""Where evaluations run: the executor seam (submit a job, take the next finished result).

The engine owns the population and only ever talks to an executor through ``submit`` and
``next_result``; results may come back in any order. ``SerialExecutor`` evaluates in the calling
process, in submission order (the deterministic default). The Ray executor lives in
``evo.ray_executor`` and is imported only when asked for.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from evo.evaluate import EvalResult, Evaluator, Job
from targets.dataset import Dataset


class Executor(Protocol):
    """Anything that can evaluate jobs: ``capacity`` jobs may be in flight at once."""

    capacity: int

    def submit(self, job: Job) -> None: ...

    def next_result(self) -> EvalResult: ...

    def close(self) -> None: ...

    def describe(self) -> dict: ...

    def update_search(self, search: Dataset) -> None:
        """Score later jobs on ``search`` (the search set grew: hard points were mined)."""
        ...

    def cancel_all(self) -> None:
        """Forget every job in flight (their results will never be asked for)."""
        ...


class SerialExecutor:
    """Evaluates each job in this process when its result is asked for."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
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
