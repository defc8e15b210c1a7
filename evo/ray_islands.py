"""Islands on Ray: each actor hosts whole islands (a search and its evaluator) and runs their
batches; the driver only sends requests and takes batches (in completion order).

Every batch returns its island's state as JSON text, which the driver keeps as the island's
snapshot: when an actor dies, a new one is built from the snapshots of the islands it hosted, its
lost requests are run again (same state, same immigrants, so the same results), and an
``island_restored`` event says so. Final-set sweeps (sign-offs, hard-point mining) run as tasks on
the cluster, not on the driver. Imported only when the ray backend runs islands.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
from dataclasses import replace
from typing import Any

from evo.events import IslandRestored
from evo.islands import Batch, IslandFactory, IslandRecord, Request
from evo.ray_executor import RayOptions, start_ray


def _call(function, *args):
    return function(*args)


class _IslandHost:
    """The body of an island actor (wrapped with ``ray.remote`` at run time)."""

    def __init__(self, factory: IslandFactory) -> None:
        self.factory = factory
        self.islands: dict[int, Any] = {}

    def add(self, index: int, snapshot: str) -> int:
        self.islands[index] = self.factory.build(index, json.loads(snapshot))
        return os.getpid()

    def run(self, request: Request) -> Batch:
        return self.islands[request.island].run(request)

    def pid(self) -> int:
        return os.getpid()


class RayIslands:
    """Island actors on Ray (see the module docstring)."""

    local = False

    def __init__(self, options: RayOptions, spec: Any = None) -> None:
        ray, self._started_ray = start_ray(options)
        self._ray = ray
        self.n_workers = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._sweep_task = ray.remote(num_cpus=0, max_retries=1)(_call)
        self._host_class = ray.remote(
            num_cpus=options.actor_cpus, max_restarts=0, max_concurrency=options.concurrency
        )(_IslandHost)
        self._hosts: list[Any] = []
        self._host_of: dict[int, int] = {}
        self._pending: dict[Any, Request] = {}
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._generation = 0
        self._notices: list = []
        self._records: dict[int, IslandRecord] = {}
        self._factory: IslandFactory | None = None
        self.islands_restored = 0
        self._spec = spec  # an evaluator spec in place of the run's (simulated workers)

    def start(self, factory: IslandFactory, records: list[IslandRecord]) -> None:
        """One host per worker, the islands dealt out in turn; returns once all are built."""
        if self._spec is not None:
            factory = replace(factory, spec=self._spec)
        self._factory = factory
        self._records = {r.index: r for r in records}
        count = min(self.n_workers, len(records))
        self._hosts = [self._host_class.remote(factory) for _ in range(count)]
        self._host_of = {r.index: r.index % count for r in records}
        self._ray.get(
            [self._hosts[self._host_of[r.index]].add.remote(r.index, r.snapshot_text()) for r in records]
        )

    def submit(self, request: Request) -> None:
        ref = self._hosts[self._host_of[request.island]].run.remote(request)
        self._pending[ref] = request
        # completions arrive on a queue (Ray's callback thread), so taking one costs the same
        # whatever the number of islands (ray.wait over every pending batch would not)
        generation = self._generation
        ref.future().add_done_callback(lambda future: self._done.put((generation, ref, future)))

    def next_batch(self) -> Batch:
        ray = self._ray
        while True:
            generation, ref, future = self._done.get()
            if generation != self._generation:
                continue  # a batch cancelled at a stop
            request = self._pending.pop(ref)
            try:
                return future.result()
            except ray.exceptions.RayActorError:
                self._restore(self._host_of[request.island])
                island_evals = self._records[request.island].n_evals
                self._notices.append(
                    (IslandRestored, {"island": request.island, "island_evals": island_evals})
                )
                self.submit(request)

    def _restore(self, host: int) -> None:
        """Replace a dead host (once per death) and rebuild its islands from their snapshots."""
        try:
            self._ray.get(self._hosts[host].pid.remote(), timeout=10)
            return  # alive: already replaced for an earlier lost request
        except Exception:  # the actor is gone (ActorDiedError and friends)
            pass
        self.islands_restored += 1
        actor = self._host_class.remote(self._factory)
        self._hosts[host] = actor
        mine = [index for index, h in self._host_of.items() if h == host]
        self._ray.get([actor.add.remote(index, self._records[index].snapshot_text()) for index in mine])

    def sweep(self, function, *args):
        """A final-set sweep (sign-off, mining) as a task on the cluster: the driver only waits
        (asynchronous islands keep running). It takes no CPU reservation, so it never waits for
        the island actors to give theirs up."""
        return self._ray.get(self._sweep_task.remote(function, *args))

    def cancel_all(self) -> None:
        self._generation += 1
        for ref in list(self._pending):
            with contextlib.suppress(Exception):  # best effort: it may have finished already
                self._ray.cancel(ref)
        self._pending.clear()

    def take_notices(self) -> list:
        notices, self._notices = self._notices, []
        return notices

    def host_pids(self) -> list[int]:
        return self._ray.get([host.pid.remote() for host in self._hosts])

    def describe(self) -> dict:
        return {"backend": "ray", "workers": self.n_workers}

    def update_search(self, search) -> None:
        """Islands take hard points with their requests; nothing to push."""

    def close(self) -> None:
        for host in self._hosts:
            with contextlib.suppress(Exception):  # already dead
                self._ray.kill(host)
        self._hosts = []
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False
