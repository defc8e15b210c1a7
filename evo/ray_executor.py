"""Evaluation on Ray: long-lived worker actors, each holding the datasets and a warmed-up scorer.

Imported only when the ray backend is asked for (importing ``evo`` never imports or starts Ray).
Without an address a local Ray is started on this machine; with one (``auto`` or HOST:PORT) the
driver joins that cluster. Jobs and results are small (a child id and a parent program; the child
program and its score). A Ray call costs a fraction of a millisecond, about as much as evaluating a
child, so jobs travel in batches of ``ray_batch`` per call; about ``in_flight_per_worker`` batches
are in flight per worker, and batches are taken in completion order (``ray.wait``), so a slow batch
never blocks fast ones. When a worker dies, its jobs are resubmitted once to a replacement worker
and an event records it.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import dataclass
from typing import Any

from evo.errors import UsageError
from evo.evaluate import EvalResult, Job, Lost
from evo.events import JobDropped, WorkerLost
from evo.executors import EvaluatorSpec, Notice
from targets.dataset import Dataset


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("the ray backend needs Ray: pip install -e '.[ray]'") from None
    return ray


def start_ray(options: RayOptions):
    """Ray, started here (or joined by address) unless already running; and whether this call started it."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    address = options.address
    try:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=True, logging_level="WARNING")
        else:
            ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    except ConnectionError as exc:
        raise UsageError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
    return ray, True


class _Worker:
    """The body of a worker actor (wrapped with ``ray.remote`` at run time)."""

    def __init__(self, spec: EvaluatorSpec, search: Dataset, index: int) -> None:
        from primitives.program import Program

        self.index = index
        self.evaluator = spec.build(search, worker=index)
        self.evaluator.run(
            Job(-1, Program.identity(self.evaluator.search.dtype), mutate=False)
        )  # warm up numba

    def run(self, jobs: list[Job]) -> list[EvalResult]:
        return [self.evaluator.run(job) for job in jobs]

    def set_search(self, search: Dataset) -> bool:
        self.evaluator = self.evaluator.with_search(search)
        return True

    def pid(self) -> int:
        return os.getpid()


@dataclass(frozen=True, slots=True)
class RayOptions:
    """How to reach Ray and how to use it."""

    address: str | None = None  # None: start a local Ray; "auto" or HOST:PORT: join a cluster
    workers: int | None = None  # None: one per CPU of the cluster
    in_flight_per_worker: int = 2
    batch: int = 16
    actor_cpus: float = 1.0  # CPUs reserved per actor (0 for simulated workers that only sleep)
    concurrency: int = 1  # calls an actor runs at once (threads; > 1 only for simulated workers)


@dataclass
class _Pending:
    jobs: list[Job]
    worker: int
    attempts: int


class RayExecutor:
    """Executor over Ray actors (see the module docstring for the contract)."""

    def __init__(self, spec: EvaluatorSpec, search: Dataset, options: RayOptions) -> None:
        ray, self._started_ray = start_ray(options)
        self._ray = ray
        available = int(ray.cluster_resources().get("CPU", 1))
        self.n_workers = options.workers or max(1, available)
        self._spec = spec
        self._search_ref = ray.put(search)
        self._actor_class = ray.remote(
            num_cpus=options.actor_cpus, max_restarts=0, max_concurrency=options.concurrency
        )(_Worker)
        self._actors = [self._new_actor(i) for i in range(self.n_workers)]
        ray.get([actor.pid.remote() for actor in self._actors])  # every worker is up and warm
        self.batch = options.batch
        self.capacity = self.n_workers * options.in_flight_per_worker * self.batch
        self._pending: dict[Any, _Pending] = {}
        self._buffer: list[Job] = []
        self._ready: deque[EvalResult | Lost] = deque()
        self._load = [0] * self.n_workers
        self._next_index = self.n_workers
        self._notices: list[Notice] = []
        self.workers_lost = 0

    def _new_actor(self, index: int):
        return self._actor_class.remote(self._spec, self._search_ref, index)

    # ------------------------------------------------------------------ executor protocol
    def submit(self, job: Job) -> None:
        self._buffer.append(job)
        if len(self._buffer) >= self.batch:
            self._dispatch(self._buffer, attempts=0)
            self._buffer = []

    def _dispatch(self, jobs: list[Job], attempts: int) -> None:
        worker = min(range(self.n_workers), key=lambda i: self._load[i])
        ref = self._actors[worker].run.remote(jobs)
        self._pending[ref] = _Pending(jobs, worker, attempts)
        self._load[worker] += 1

    def next_result(self) -> EvalResult | Lost:
        ray = self._ray
        while not self._ready:
            if self._buffer:  # the engine is waiting: send the partial batch now
                self._dispatch(self._buffer, attempts=0)
                self._buffer = []
            ready, _ = ray.wait(list(self._pending), num_returns=1)
            ref = ready[0]
            pending = self._pending.pop(ref)
            self._load[pending.worker] -= 1
            try:
                self._ready.extend(ray.get(ref))
            except ray.exceptions.RayActorError:
                replaced = self._replace_worker(pending.worker)
                if pending.attempts >= 1:
                    for job in pending.jobs:
                        self._notices.append((JobDropped, {"child_id": job.child_id}))
                        self._ready.append(Lost(job.child_id))
                    continue
                self._dispatch(pending.jobs, attempts=pending.attempts + 1)
                if replaced:
                    self._notices.append(
                        (
                            WorkerLost,
                            {"worker": pending.worker, "resubmitted": [j.child_id for j in pending.jobs]},
                        )
                    )
        return self._ready.popleft()

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
        self._buffer = []
        self._ready.clear()
        for ref in list(self._pending):
            with contextlib.suppress(Exception):  # best effort: it may have finished already
                self._ray.cancel(ref)
        self._pending.clear()
        self._load = [0] * self.n_workers

    def take_notices(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices

    def worker_pids(self) -> list[int]:
        return self._ray.get([actor.pid.remote() for actor in self._actors])

    def describe(self) -> dict:
        return {"backend": "ray", "workers": self.n_workers}

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):  # already dead
                self._ray.kill(actor)
        self._actors = []
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False
