"""Islands on Ray: each actor hosts whole islands (a search and its evaluator) and runs their
batches; the driver only sends requests and takes batches (in completion order).

Every ``SNAPSHOT_EVERY``-th batch of an island returns its state as JSON text, which the driver
keeps as the island's snapshot, with the requests whose batches came back since. An island's
search is deterministic given its state and its requests, so when an actor dies, a new one
rebuilds each island it hosted from its snapshot by running those requests again, then runs the
lost requests again (same state, same immigrants, so the same results), and an
``island_restored`` event says so. A checkpoint holds the same: each island's last snapshot and
the requests filed since (the state is tens of KB: carried with every batch, it was a large part
of what a batch costs the driver). Final-set sweeps (sign-offs, hard-point mining) run as tasks on
the cluster, not on the driver. Imported only when the ray backend runs islands.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from evo.events import IslandRestored
from evo.islands import Batch, IslandFactory, IslandRecord, Request, state_text
from evo.ray_executor import RayOptions, start_ray

SNAPSHOT_EVERY = 8  # batches per island between state snapshots (a restore replays fewer)
# a collect waits this share of the first done batch's time for more (its islands still running):
# each call costs the driver about a millisecond, and the batches of islands on one host end close
# together; an island done early waits at most this share of its batch
COLLECT_LINGER = 0.02


def _call(function, *args):
    return function(*args)


class _IslandHost:
    """The body of an island actor (wrapped with ``ray.remote`` at run time): ``start`` runs
    requests on the host's own threads and returns at once; ``collect`` waits for the first batch
    done and returns every batch done by then. The driver keeps one ``collect`` pending per host,
    so what it waits on does not grow with the islands (each pending call costs the driver CPU
    while it waits)."""

    def __init__(self, factory: IslandFactory, threads: int) -> None:
        self.factory = factory
        self.islands: dict[int, Any] = {}
        self._threads = ThreadPoolExecutor(max_workers=threads)
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy = 0  # requests started and not yet done

    def add(self, index: int, snapshot: str, replay: tuple[Request, ...] = ()) -> int:
        self.islands[index] = self.factory.build(index, json.loads(snapshot), replay)
        return os.getpid()

    def start(self, requests: list[Request]) -> None:
        with self._lock:
            self._busy += len(requests)
        for request in requests:
            self._threads.submit(self._run, request)

    def _run(self, request: Request) -> None:
        started = time.monotonic()
        try:
            item = self.islands[request.island].run(request)
        except BaseException as exc:  # handed to the driver by collect
            item = exc
        self._done.put((item, time.monotonic() - started))
        with self._lock:  # after the put: with none busy, every batch done is in the queue
            self._busy -= 1

    def step(self, requests: list[Request]) -> list[Batch]:
        """``start`` then ``collect`` in one call (one round trip per batch taken)."""
        self.start(requests)
        return self.collect()

    def collect(self) -> list[Batch]:
        """The first batch done, and every other done by then or within ``COLLECT_LINGER`` of its time."""
        first, seconds = self._done.get()
        done = [first]
        deadline = time.monotonic() + COLLECT_LINGER * seconds
        with contextlib.suppress(queue.Empty):
            while True:
                wait = deadline - time.monotonic()
                with self._lock:
                    running = self._busy
                if running and wait > 0:
                    done.append(self._done.get(timeout=wait)[0])
                else:
                    done.append(self._done.get_nowait()[0])
        for item in done:
            if isinstance(item, BaseException):
                raise item
        return done

    def state_text(self, index: int) -> str:
        return state_text(self.islands[index].state)

    def pid(self) -> int:
        return os.getpid()


class RayIslands:
    """Island actors on Ray (see the module docstring)."""

    local = False
    snapshot_every = SNAPSHOT_EVERY

    def __init__(self, options: RayOptions, spec: Any = None) -> None:
        ray, self._started_ray = start_ray(options)
        self._ray = ray
        self.n_workers = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._threads = options.concurrency
        self._sweep_task = ray.remote(num_cpus=0, max_retries=1)(_call)
        # threaded actors: a pending collect must not block start, add or pid
        self._host_class = ray.remote(num_cpus=options.actor_cpus, max_restarts=0, max_concurrency=4)(
            _IslandHost
        )
        self._hosts: list[Any] = []
        self._host_of: dict[int, int] = {}
        self._running: list[dict[int, Request]] = []  # per host: requests sent, by island
        self._unsent: list[list[Request]] = []  # per host: requests to send with the next start
        self._collecting: set[int] = set()  # hosts with a collect pending
        self._ready: collections.deque[Batch] = collections.deque()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._generation = 0
        self._notices: list = []
        self._evals: dict[int, int] = {}  # each island's count, as its last batch left it
        self._latest: dict[int, str] = {}  # each island's newest snapshot
        self._since: dict[int, list[Request]] = {}  # the requests whose batches came back since
        self._factory: IslandFactory | None = None
        self.islands_restored = 0
        self._spec = spec  # an evaluator spec in place of the run's (simulated workers)

    def start(self, factory: IslandFactory, records: tuple[IslandRecord, ...]) -> tuple[IslandRecord, ...]:
        """One host per worker, the islands dealt out in turn; returns once all are built, with
        the records as the driver holds them from now on (their states as text: the islands live
        in the workers)."""
        if self._spec is not None:
            factory = replace(factory, spec=self._spec)
        self._factory = factory
        records = tuple(replace(r, snapshot=r.snapshot_text()) for r in records)
        self._evals = {r.index: r.n_evals for r in records}
        count = min(self.n_workers, len(records))
        self._hosts = [self._host_class.remote(factory, self._threads) for _ in range(count)]
        self._running = [{} for _ in range(count)]
        self._unsent = [[] for _ in range(count)]
        self._host_of = {r.index: r.index % count for r in records}
        self._latest = {r.index: r.snapshot for r in records}
        self._since = {r.index: list(r.replay) for r in records}
        calls = []
        for r in records:
            host = self._hosts[self._host_of[r.index]]
            calls.append(host.add.remote(r.index, self._latest[r.index], tuple(r.replay)))
        self._ray.get(calls)
        return records

    def submit(self, request: Request) -> None:
        host = self._host_of[request.island]
        self._running[host][request.island] = request
        self._unsent[host].append(request)

    def _send(self) -> None:
        """Start what was submitted and keep a collect pending on every busy host: one call per
        host and round trip (``step``), or ``start`` alone where a collect is already pending."""
        for host, unsent in enumerate(self._unsent):
            requests = list(unsent)
            unsent.clear()
            if host in self._collecting:
                if requests:
                    self._hosts[host].start.remote(requests)
            elif self._running[host]:
                self._collecting.add(host)
                ref = self._hosts[host].step.remote(requests)
                # completions arrive on a queue (Ray's callback thread)
                ref.future().add_done_callback(
                    lambda future, host=host, generation=self._generation: self._done.put(
                        (generation, host, future)
                    )
                )

    def next_batch(self) -> Batch:
        ray = self._ray
        while not self._ready:
            self._send()
            generation, host, future = self._done.get()
            if generation != self._generation:
                continue  # collected before a stop
            self._collecting.discard(host)
            try:
                batches = future.result()
            except ray.exceptions.RayActorError:
                self._restore(host)
                for request in self._running[host].values():
                    island_evals = self._evals[request.island]
                    self._notices.append(
                        (IslandRestored, {"island": request.island, "island_evals": island_evals})
                    )
                    self._unsent[host].append(request)
                continue
            for batch in batches:
                request = self._running[host].pop(batch.island)
                self._evals[batch.island] = batch.n_evals
                if batch.snapshot is not None:
                    self._latest[batch.island], self._since[batch.island] = batch.snapshot, []
                else:
                    self._since[batch.island].append(request)
                self._ready.append(batch)
        return self._ready.popleft()

    def collected(self) -> int:
        """Batches collected and not yet taken (``next_batch`` returns them without waiting)."""
        return len(self._ready)

    def _restore(self, host: int) -> None:
        """Replace a dead host and rebuild its islands from their snapshots and the requests
        since (its lost requests are then run again: same state, same immigrants, so the same
        results)."""
        self.islands_restored += 1
        actor = self._host_class.remote(self._factory, self._threads)
        self._hosts[host] = actor
        mine = [index for index, h in self._host_of.items() if h == host]
        self._ray.get([actor.add.remote(i, self._latest[i], tuple(self._since[i])) for i in mine])

    def refresh(self, records: tuple[IslandRecord, ...]) -> tuple[IslandRecord, ...]:
        """The records with the current state of every island with requests to replay (all idle
        and filed: the end of a segment), so the last checkpoints hold plain states."""
        behind = [r for r in records if r.replay]
        calls = [self._hosts[self._host_of[r.index]].state_text.remote(r.index) for r in behind]
        out = list(records)
        for record, text in zip(behind, self._ray.get(calls), strict=True):
            out[record.index] = replace(record, snapshot=text, replay=())
            self._latest[record.index], self._since[record.index] = text, []
        return tuple(out)

    def sweep(self, function, *args):
        """A final-set sweep (sign-off, mining) as a task on the cluster: the driver only waits
        (asynchronous islands keep running). It takes no CPU reservation, so it never waits for
        the island actors to give theirs up."""
        return self._ray.get(self._sweep_task.remote(function, *args))

    def cancel_all(self) -> None:
        """Drop what is in flight (a stop): batches still running are never filed."""
        self._generation += 1
        for host in range(len(self._hosts)):
            self._running[host].clear()
            self._unsent[host].clear()
        self._collecting.clear()
        self._ready.clear()

    def take_notices(self) -> list:
        notices, self._notices = self._notices, []
        return notices

    def warm_up(self, snapshot: str, evals: int, index: int = -1) -> None:
        """Run a throwaway island (``index``, of none of the run's) from ``snapshot`` for ``evals``
        evaluations on every host and wait for all (numba's kernels load in each worker process),
        so that what is timed next is the islands' work alone. Call after ``start``."""
        ray = self._ray
        ray.get([host.add.remote(index, snapshot) for host in self._hosts])
        ray.get([host.step.remote([Request(index, evals)]) for host in self._hosts])

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
