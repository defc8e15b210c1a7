"""Islands on Ray: each actor hosts whole islands (a search and its evaluator) and runs their
batches; the driver takes batches in completion order.

Asynchronous migration is pipelined: a host starts each island's next batch itself as soon as one
ends (each to the island's next migration count), within the evaluations the driver has granted
it, with the immigrants and hard points the driver has posted to it. The driver keeps one
long-poll (``poll``) pending per host: it carries the driver's news (grants, immigrants, hard
points) and returns every batch done since, each with the request its host made, so the driver
files, migrates and checkpoints as before, with far fewer than one call per batch. The grants
bound how far an island runs ahead of what the driver has filed. Synchronous migration is not
pipelined: the driver sends every request (``step``, ``start``) and the rounds run in lockstep, so
such a run does not depend on timing.

Every ``SNAPSHOT_EVERY``-th batch of an island returns its state as JSON text, which the driver
keeps as the island's snapshot, with the requests whose batches came back since. An island's
search is deterministic given its state and its requests, so when an actor dies, a new one
rebuilds each island it hosted from its snapshot by running those requests again, then runs on
(the lost requests again, or, pipelined, new ones with the immigrants not yet taken by a batch
that came back), and an ``island_restored`` event says so. A checkpoint holds the same: each
island's last snapshot and the requests filed since (the state is tens of KB: carried with every
batch, it was a large part of what a batch costs the driver). Final-set sweeps (sign-offs,
hard-point mining) run as tasks on the cluster, not on the driver. Imported only when the ray
backend runs islands.
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
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True, slots=True)
class Pipeline:
    """How a host makes its islands' requests: each batch ends at the next ``migrate_every`` count
    (the island then reports ``migrants`` emigrants), and every ``snapshot_every``-th returns the state."""

    migrate_every: int
    migrants: int
    snapshot_every: int


@dataclass
class News:
    """What the driver has for one host since its last poll."""

    grants: dict[int, int] = field(default_factory=dict)  # island -> the count it may run to
    mail: dict[int, list] = field(default_factory=dict)  # island -> immigrants
    hard_points: tuple[float, ...] = ()  # the run's hard points, when the host has fewer

    def __bool__(self) -> bool:
        return bool(self.grants or self.mail or self.hard_points)


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
        # pipelined runs (all under the lock): what each island may do next
        self._plan: Pipeline | None = None
        self._allowed: dict[int, int] = {}  # island -> the count it may run to
        self._mail: dict[int, list] = {}  # island -> immigrants for its next batch
        self._hard: tuple[float, ...] = ()
        self._behind: dict[int, int] = {}  # island -> batches since its last snapshot
        self._active: set[int] = set()  # islands with a batch running

    def add(self, index: int, snapshot: str, replay: tuple[Request, ...] = ()) -> int:
        island = self.factory.build(index, json.loads(snapshot), replay)
        with self._lock:
            self.islands[index] = island
            self._allowed[index] = island.state.n_evals
            self._behind[index] = len(replay)
            self._mail.pop(index, None)
        return os.getpid()

    def poll(self, plan: Pipeline, news: News) -> list[Batch]:
        """Take the driver's news, start every idle island that may run on, and return what is
        done (as ``collect``), or nothing at once when no island runs. Each island, once its batch
        ends, starts its next one itself while its grant lasts."""
        with self._lock:
            self._plan = plan
            for index, upto in news.grants.items():
                self._allowed[index] = max(self._allowed[index], upto)
            for index, arrived in news.mail.items():
                self._mail.setdefault(index, []).extend(arrived)
            if len(news.hard_points) > len(self._hard):
                self._hard = tuple(news.hard_points)
            for index in self.islands:
                self._advance(index)
            if not self._busy and self._done.empty():
                return []
        return self.collect()

    def halt(self) -> None:
        """Start no more batches (a stop): those running end and are never collected."""
        with self._lock:
            for index in self._allowed:
                self._allowed[index] = 0

    def _advance(self, index: int) -> None:
        """Start the island's next batch if it is idle and granted more (under the lock)."""
        request = None if index in self._active else self._next_request(index)
        if request is not None:
            self._active.add(index)
            self._busy += 1
            self._threads.submit(self._run, request, True)

    def _next_request(self, index: int) -> Request | None:
        plan, island = self._plan, self.islands[index]
        n = island.state.n_evals
        if plan is None or self._allowed[index] <= n:
            return None
        mark = (n // plan.migrate_every + 1) * plan.migrate_every
        snapshot = bool(plan.snapshot_every) and self._behind[index] + 1 >= plan.snapshot_every
        self._behind[index] = 0 if snapshot else self._behind[index] + 1
        hard = self._hard if len(self._hard) > len(island.state.hard_points) else ()
        immigrants = tuple(self._mail.pop(index, ()))
        count = min(mark, self._allowed[index]) - n
        return Request(index, count, immigrants, hard, mark, plan.migrants, snapshot)

    def start(self, requests: list[Request]) -> None:
        with self._lock:
            self._busy += len(requests)
        for request in requests:
            self._threads.submit(self._run, request)

    def _run(self, request: Request, pipelined: bool = False) -> None:
        started = time.monotonic()
        try:
            item = self.islands[request.island].run(request)
            if pipelined:  # the driver files the request its host made
                item = replace(item, request=request)
        except BaseException as exc:  # handed to the driver by collect
            item = exc
            pipelined = False  # the island stops here
        with self._lock:  # together: with none busy, every batch done is in the queue, and
            # with some busy, a batch is still to come (a poll waits for it)
            self._done.put((item, time.monotonic() - started))
            self._busy -= 1
            self._active.discard(request.island)
            if pipelined:  # queued behind the other islands' batches (one thread runs many)
                self._advance(request.island)

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
        # pipelined runs: what the hosts were told, and the news for each host's next poll
        self._plan: Pipeline | None = None
        self._granted: dict[int, int] = {}  # island -> the count it may run to
        self._posted: dict[int, list] = {}  # island -> immigrants posted and not yet taken by a batch back
        self._hard_sent: list[int] = []  # per host: hard points it has
        self._hard: tuple[float, ...] = ()
        self._news: list[News] = []
        self.actor_calls = 0  # calls that run or collect batches (not the start of islands)
        self.batches = 0  # batches taken

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
        self._news = [News() for _ in range(count)]
        self._hard_sent = [0] * count
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

    # ------------------------------------------------------------------ pipelined
    def begin(self, migrate_every: int, migrants: int) -> None:
        """Pipelined runs from here: the hosts make the requests, within what ``grant`` allows."""
        self._plan = Pipeline(migrate_every, migrants, self.snapshot_every)
        self._granted = dict(self._evals)
        self._posted = {i: [] for i in self._evals}

    def grant(self, island: int, upto: int) -> None:
        """Let the island run on to its count ``upto``."""
        self._granted[island] = upto
        self._news[self._host_of[island]].grants[island] = upto

    def post(self, island: int, inbox: list) -> None:
        """The island's immigrants not yet taken by a batch back (its host has those posted before)."""
        posted = self._posted[island]
        fresh = inbox[len(posted) :]
        if fresh:
            posted.extend(fresh)
            self._news[self._host_of[island]].mail.setdefault(island, []).extend(fresh)

    def post_hard(self, hard_points) -> None:
        self._hard = tuple(hard_points)

    def running(self) -> bool:
        """Some island has been granted evaluations whose batches have not come back."""
        return any(self._granted[i] > n for i, n in self._evals.items())

    def _poll(self, host: int) -> Any:
        news, self._news[host] = self._news[host], News()
        if self._hard_sent[host] < len(self._hard):
            news.hard_points, self._hard_sent[host] = self._hard, len(self._hard)
        if not news and not any(
            self._granted[i] > self._evals[i] for i, h in self._host_of.items() if h == host
        ):
            return None  # nothing to say, and all its islands' batches are back
        return self._hosts[host].poll.remote(self._plan, news)

    # ------------------------------------------------------------------ calls
    def _send(self) -> None:
        """Keep one call pending on every host with work: pipelined, a ``poll`` with the host's
        news; otherwise, a ``start`` of what was submitted, with a collect (``step``) if none is
        pending."""
        for host, unsent in enumerate(self._unsent):
            requests = list(unsent)
            unsent.clear()
            ref = None
            if host in self._collecting:
                if requests:
                    self.actor_calls += 1
                    self._hosts[host].start.remote(requests)
            elif self._plan is not None:
                ref = self._poll(host)
            elif self._running[host]:
                ref = self._hosts[host].step.remote(requests)
            if ref is not None:
                self.actor_calls += 1
                self._collecting.add(host)
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
                self._replace(host)
                continue
            for batch in batches:
                request = self._running[host].pop(batch.island, None) or batch.request
                self._evals[batch.island] = batch.n_evals
                if batch.request is not None:
                    del self._posted[batch.island][: len(batch.request.immigrants)]
                if batch.snapshot is not None:
                    self._latest[batch.island], self._since[batch.island] = batch.snapshot, []
                else:
                    self._since[batch.island].append(request)
                self._ready.append(batch)
        self.batches += 1
        return self._ready.popleft()

    def _replace(self, host: int) -> None:
        """A dead host: its islands rebuilt on a new one, then what was lost is run again (the
        requests it was sent, or, pipelined, its grants and the immigrants not yet taken)."""
        self._restore(host)
        mine = [i for i, h in self._host_of.items() if h == host]
        if self._plan is not None:
            lost = [i for i in mine if self._granted[i] > self._evals[i]]
            news = self._news[host]
            for i in mine:
                news.grants[i] = self._granted[i]
                if self._posted[i]:
                    news.mail[i] = list(self._posted[i])
            self._hard_sent[host] = 0
        else:
            lost = list(self._running[host])
            self._unsent[host].extend(self._running[host].values())
        for island in lost:
            island_evals = self._evals[island]
            self._notices.append((IslandRestored, {"island": island, "island_evals": island_evals}))

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
        if self._plan is not None:
            for host in self._hosts:
                host.halt.remote()
            self._plan = None
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
