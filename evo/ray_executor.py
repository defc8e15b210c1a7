"""Evaluation on Ray: long-lived worker actors, each holding the datasets and a warmed-up scorer.

Imported only when the ray backend is asked for (importing ``evo`` never imports or starts Ray).
Without an address a local Ray is started on this machine; with one (``auto`` or HOST:PORT) the
driver joins that cluster. Jobs and results are small (a child id and a parent program; the child
program and its score), about ``in_flight_per_worker`` jobs are in flight per worker, and results
are taken in completion order (``ray.wait``), so a slow child never blocks fast ones. When a worker
dies, its jobs are resubmitted once to a replacement worker and an event records it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evo.config import RunConfig
from evo.errors import UsageError
from evo.evaluate import EvalResult, Job, Lost
from targets.dataset import Dataset


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("the ray backend needs Ray: pip install -e '.[ray]'") from None
    return ray


class _Worker:
    """The body of a worker actor (wrapped with ``ray.remote`` at run time)."""

    def __init__(self, config_data: dict, search: Dataset, index: int) -> None:
        from evo.api import make_evaluator
        from evo.config import from_mapping
        from primitives.program import Program

        self.index = index
        self.evaluator = make_evaluator(from_mapping(config_data), search, worker=index)
        self.evaluator.run(Job(-1, Program.identity(self.evaluator.search.dtype), mutate=False))  # warm up numba

    def run(self, job: Job) -> EvalResult:
        return self.evaluator.run(job)

    def set_search(self, search: Dataset) -> bool:
        self.evaluator = self.evaluator.with_search(search)
        return True

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Pending:
    job: Job
    worker: int
    attempts: int


class RayExecutor:
    """Executor over Ray actors (see the module docstring for the contract)."""

    def __init__(self, config: RunConfig, problem) -> None:
        ray = _import_ray()
        self._ray = ray
        self._started_ray = False
        if not ray.is_initialized():
            address = config.ray_address
            try:
                if address is None:
                    ray.init(include_dashboard=False, log_to_driver=True, logging_level="WARNING")
                else:
                    ray.init(address=address, include_dashboard=False, logging_level="WARNING")
            except ConnectionError as exc:
                raise UsageError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
            self._started_ray = True
        available = int(ray.cluster_resources().get("CPU", 1))
        self.n_workers = config.workers or max(1, available)
        self._config_data = config.to_dict()
        self._search_ref = ray.put(problem.search)
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_Worker)
        self._actors = [self._new_actor(i) for i in range(self.n_workers)]
        ray.get([actor.pid.remote() for actor in self._actors])  # every worker is up and warm
        self.capacity = self.n_workers * config.in_flight_per_worker
        self._pending: dict[Any, _Pending] = {}
        self._load = [0] * self.n_workers
        self._next_index = self.n_workers
        self.notify: Callable[..., None] | None = None
        self.workers_lost = 0

    def _new_actor(self, index: int):
        return self._actor_class.remote(self._config_data, self._search_ref, index)

    # ------------------------------------------------------------------ executor protocol
    def submit(self, job: Job, attempts: int = 0) -> None:
        worker = min(range(self.n_workers), key=lambda i: self._load[i])
        ref = self._actors[worker].run.remote(job)
        self._pending[ref] = _Pending(job, worker, attempts)
        self._load[worker] += 1

    def next_result(self) -> EvalResult | Lost:
        ray = self._ray
        while True:
            ready, _ = ray.wait(list(self._pending), num_returns=1)
            ref = ready[0]
            pending = self._pending.pop(ref)
            self._load[pending.worker] -= 1
            try:
                return ray.get(ref)
            except ray.exceptions.RayActorError:
                lost = self._replace_worker(pending.worker)
                if pending.attempts >= 1:
                    if self.notify is not None:
                        self.notify("job_dropped", child_id=pending.job.child_id)
                    return Lost(pending.job.child_id)
                self.submit(pending.job, attempts=pending.attempts + 1)
                if self.notify is not None and lost:
                    self.notify("worker_lost", worker=pending.worker, resubmitted=pending.job.child_id)

    def _replace_worker(self, worker: int) -> bool:
        """Swap a dead actor for a fresh one (once per death); True if this call replaced it."""
        actor = self._actors[worker]
        try:
            self._ray.get(actor.pid.remote(), timeout=10)
            return False  # still alive: someone already replaced it
        except Exception:  # the actor is gone (ActorDiedError and friends)
            pass
        self.workers_lost += 1
        self._actors[worker] = self._new_actor(self._next_index)
        self._next_index += 1
        return True

    def update_search(self, search: Dataset) -> None:
        self._search_ref = self._ray.put(search)
        self._ray.get([actor.set_search.remote(self._search_ref) for actor in self._actors])

    def cancel_all(self) -> None:
        for ref in list(self._pending):
            try:
                self._ray.cancel(ref)
            except Exception:  # best effort: it may have finished already
                pass
        self._pending.clear()
        self._load = [0] * self.n_workers

    def worker_pids(self) -> list[int]:
        return self._ray.get([actor.pid.remote() for actor in self._actors])

    def describe(self) -> dict:
        return {"backend": "ray", "workers": self.n_workers}

    def close(self) -> None:
        for actor in self._actors:
            try:
                self._ray.kill(actor)
            except Exception:  # already dead
                pass
        self._actors = []
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    def __del__(self) -> None:  # a forgotten executor should not leave workers running
        if getattr(self, "_actors", None):
            try:
                self.close()
            except Exception:
                pass
        _ = time
